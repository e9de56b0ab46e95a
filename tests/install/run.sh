#!/usr/bin/env bash
# Install suite: scripts/install.sh installs libjina_net like a C library, and everything builds from
# the installed tree with pkg-config only (no path into this repository on any compiler command line).
#
#  1. DESTDIR install (PREFIX=/usr/local): exactly the expected files, symlinks and modes under
#     $DESTDIR/usr/local (the library, headers, jina_net.pc, the protos in share/jina_net/proto, the
#     echo worker bin/jina-net-echo), a jina_net.pc that knows nothing of DESTDIR and names protodir,
#     bindir and echo; jina-net-echo --help documents its output lines.
#  2. soname: the installed library's DT_SONAME is scripts/soname.sh's (libjina_net.so.0.2 for 0.2.x),
#     and jina_net_version() of the installed library agrees with Cargo.toml; cargo's target/debug/libjina_net.so
#     has none (the other suites link it with -ljina_net and run it from target/).
#  3. exports: `nm -D --defined-only` of the installed library and of cargo's cdylib list exactly the
#     functions include/jina_net.h declares (no other symbol, none missing).
#  4. prefix install (PREFIX=<temp>): pkg-config --modversion/--cflags/--libs.
#  5. the demo gateway (examples/demo_gateway.c, copied out of the tree alone) compiled and linked with
#     `pkg-config --cflags --libs jina_net` only; its header comes from the prefix, it needs
#     the soname, the loader resolves that in the prefix, and it runs to "demo finished" with the
#     installed jina-net-echo found on PATH.
#  6. the same demo linked statically (pkg-config --static): no libjina_net.so needed; it runs.
#  7. the request examples against the installed jina-net-echo, started as a user would (its PID,
#     SERVER and READY lines read from its stdout): examples/echo_client.c (the C request builder) and
#     examples/cpp/echo_client.cpp with C++ classes protoc generates from the installed protos
#     (`pkg-config --variable=protodir jina_net`), built with pkg-config only.
#  8. the C++ wrapper's test program (bindings/cpp/test_jina_net.cpp, copied out) against the installed
#     jina_net.hpp + the installed shared library; it runs.
#  9. the Go binding with `#cgo pkg-config: jina_net` (-tags jinanet_pkgconfig): vet, build, and its
#     tests run against the installed library.
# 10. the Python binding loads the installed library by its soname and sends through it.
# Steps 5-10 use the installed jina-net-echo as their test server.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

./scripts/install-deps.sh   # gcc, g++, pkg-config, golang-go, python3
for tool in pkg-config readelf nm ldd cc c++ go python3 protoc; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install suite: $tool is missing" >&2; exit 1; }
done

echo "== cargo build --workspace (libjina_net, jina-net-test-server)"
cargo build --workspace --locked

work="$(mktemp -d "${TMPDIR:-/tmp}/jina-net-install-test.XXXXXX")"
echo_pid=
trap '[ -z "$echo_pid" ] || kill "$echo_pid" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "install suite: FAILED: $*" >&2; exit 1; }
# The version and the soname the install must give it (libjina_net.so.0.<minor> before 1.0).
{ read -r version; read -r want; } < <(scripts/soname.sh)

echo "== 1. DESTDIR install, PREFIX=/usr/local (PROFILE=debug: the build the suites made)"
scripts/install.sh PROFILE=debug DESTDIR="$work/dest" PREFIX=/usr/local >"$work/install-dest.log" 2>&1 ||
  { cat "$work/install-dest.log"; fail "scripts/install.sh with DESTDIR"; }
actual="$(cd "$work/dest" && find . -mindepth 1 \( -type f -o -type l \) -printf '%p %y %m %l\n' | sort)"
expected="$(sort <<EOF
./usr/local/include/jina_net.h f 644 
./usr/local/include/jina_net.hpp f 644 
./usr/local/lib/libjina_net.a f 644 
./usr/local/lib/libjina_net.so l 777 $want
./usr/local/lib/$want l 777 libjina_net.so.$version
./usr/local/lib/libjina_net.so.$version f 755 
./usr/local/lib/pkgconfig/jina_net.pc f 644 
./usr/local/share/jina_net/proto/jina.proto f 644 
./usr/local/share/jina_net/proto/docarray.proto f 644 
./usr/local/bin/jina-net-echo f 755 
EOF
)"
[ "$actual" = "$expected" ] || fail "installed files differ:
--- expected
$expected
--- actual
$actual"
cmp -s include/jina_net.h "$work/dest/usr/local/include/jina_net.h" || fail "installed jina_net.h differs from include/jina_net.h"
cmp -s bindings/cpp/jina_net.hpp "$work/dest/usr/local/include/jina_net.hpp" || fail "installed jina_net.hpp differs"
cmp -s proto/jina.proto "$work/dest/usr/local/share/jina_net/proto/jina.proto" || fail "installed jina.proto differs"
cmp -s proto/docarray.proto "$work/dest/usr/local/share/jina_net/proto/docarray.proto" || fail "installed docarray.proto differs"
cmp -s target/debug/jina-net-test-server "$work/dest/usr/local/bin/jina-net-echo" ||
  fail "installed jina-net-echo is not target/debug/jina-net-test-server"
"$work/dest/usr/local/bin/jina-net-echo" --help >"$work/echo-help.txt" || fail "jina-net-echo --help failed"
for line in 'usage: jina-net-echo' 'PID <pid>' 'SERVER <name> <role> <address>' 'READY' 'STATS read='; do
  grep -qF -- "$line" "$work/echo-help.txt" || fail "jina-net-echo --help does not document '$line'"
done
pc="$work/dest/usr/local/lib/pkgconfig/jina_net.pc"
grep -qx 'prefix=/usr/local' "$pc" || fail "jina_net.pc: prefix is not /usr/local"
grep -q "$work" "$pc" && fail "jina_net.pc mentions the DESTDIR"
grep -q "$root" "$pc" && fail "jina_net.pc mentions the source tree"
[ "$(PKG_CONFIG_PATH="$work/dest/usr/local/lib/pkgconfig" pkg-config --variable=libdir jina_net)" = /usr/local/lib ] ||
  fail "pkg-config --variable=libdir is not /usr/local/lib"
[ "$(PKG_CONFIG_PATH="$work/dest/usr/local/lib/pkgconfig" pkg-config --variable=protodir jina_net)" = /usr/local/share/jina_net/proto ] ||
  fail "pkg-config --variable=protodir is not /usr/local/share/jina_net/proto"
[ "$(PKG_CONFIG_PATH="$work/dest/usr/local/lib/pkgconfig" pkg-config --variable=echo jina_net)" = /usr/local/bin/jina-net-echo ] ||
  fail "pkg-config --variable=echo is not /usr/local/bin/jina-net-echo"
echo "   $(echo "$actual" | wc -l) files, as expected; jina_net.pc: prefix=/usr/local, protodir, echo; jina-net-echo --help"

echo "== 2. soname"
lib="$work/dest/usr/local/lib/libjina_net.so.$version"
soname="$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = "$want" ] || fail "DT_SONAME of the installed library is '$soname', want $want"
readelf -d target/debug/libjina_net.so | grep -q '(SONAME)' &&
  fail "cargo's target/debug/libjina_net.so has a DT_SONAME: the suites that run it from target/ would break"
loaded="$(python3 -c 'import ctypes, sys; l = ctypes.CDLL(sys.argv[1]); l.jina_net_version.restype = ctypes.c_char_p; print(l.jina_net_version().decode())' "$lib")"
[ "$loaded" = "$version" ] || fail "jina_net_version() of the installed library is '$loaded', Cargo.toml says $version"
echo "   installed: DT_SONAME $soname, jina_net_version() $loaded; target/debug/libjina_net.so: no DT_SONAME"

echo "== 3. exported symbols: exactly the functions of include/jina_net.h"
# Besides the jina_net_* functions of the header, a dynamic symbol table could carry symbols that
# cannot be hidden (e.g. a toolchain's _init/_fini or a version node). With rustc's own version script
# (cdylib) and ours (installed) none remain, so the list of allowed extra symbols is empty.
ALLOWED_EXTRA=()
sed -e 's:/\*.*\*/::g' include/jina_net.h | grep -oE '\bjina_net_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$work/header.syms"
[ "$(wc -l <"$work/header.syms")" -ge 30 ] || fail "found only $(wc -l <"$work/header.syms") functions in the header"
printf '%s\n' "${ALLOWED_EXTRA[@]}" | sed '/^$/d' | sort -u >"$work/allowed.syms"
for so in "$lib" target/debug/libjina_net.so; do
  nm -D --defined-only --format=posix "$so" | awk '{print $1}' | sed 's/@.*//' | sort -u >"$work/exported.syms"
  extra="$(comm -23 "$work/exported.syms" "$work/header.syms" | comm -23 - "$work/allowed.syms")"
  missing="$(comm -13 "$work/exported.syms" "$work/header.syms")"
  [ -z "$extra" ] || fail "$so exports symbols that are not jina_net_* functions of the header:
$extra"
  [ -z "$missing" ] || fail "$so does not export these functions of the header:
$missing"
  nm -D --defined-only --format=posix "$so" | awk '$2 != "T" {print}' | grep . &&
    fail "$so exports non-function symbols"
  echo "   $so: $(wc -l <"$work/exported.syms") symbols, all jina_net_* functions of the header"
done

echo "== 4. PREFIX install into a temporary prefix; pkg-config"
prefix="$work/prefix"
scripts/install.sh PROFILE=debug PREFIX="$prefix" >"$work/install-prefix.log" 2>&1 ||
  { cat "$work/install-prefix.log"; fail "scripts/install.sh with PREFIX"; }
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion jina_net)" = "$version" ] || fail "pkg-config --modversion jina_net is not $version"
cflags="$(pkg-config --cflags jina_net | sed "s/ *$//")"
libs="$(pkg-config --libs jina_net | sed "s/ *$//")"
static_libs="$(pkg-config --static --libs jina_net | sed "s/ *$//")"
echo "   cflags: $cflags"
echo "   libs:   $libs"
echo "   static: $static_libs"
case "$cflags $libs $static_libs" in *"$root"*) fail "pkg-config output points into the source tree" ;; esac
[ "$cflags" = "-I$prefix/include" ] || fail "unexpected --cflags"
# From here on the test server is the installed one.
server="$prefix/bin/jina-net-echo"
[ "$(pkg-config --variable=echo jina_net)" = "$server" ] || fail "pkg-config --variable=echo is not $server"

# Sources are copied out of the repository (keeping their relative layout), so that nothing can be
# found in the source tree: the compiler sees the prefix and the copies only.
copy() { # $1 = file relative to the repository, $2 = destination root
  mkdir -p "$2/$(dirname "$1")"
  cp "$1" "$2/$1"
}
no_tree_deps() { # $1 = make-style dependency file
  grep -q "$root" "$1" && fail "$1: the build read files of the source tree: $(grep -o "$root[^ ]*" "$1" | sort -u | head -3)"
  return 0
}

echo "== 5. demo gateway from the installed tree (pkg-config --cflags --libs jina_net only)"
src="$work/src"
copy examples/demo_gateway.c "$src"
# shellcheck disable=SC2086  # pkg-config output is a list of words
(cd "$src/examples" && cc -std=c11 -O2 -Wall -Wextra -Werror -MD -MF "$work/demo.d" $cflags demo_gateway.c \
  -o "$work/demo_gateway" $libs)
grep -q "$prefix/include/jina_net.h" "$work/demo.d" || fail "the demo did not include the installed jina_net.h"
no_tree_deps "$work/demo.d"
readelf -d "$work/demo_gateway" | grep -q "(NEEDED).*\[$want\]" ||
  fail "the demo does not need $want: $(readelf -d "$work/demo_gateway" | grep NEEDED)"
resolved="$(LD_LIBRARY_PATH="$prefix/lib" ldd "$work/demo_gateway" | awk '$1 == "'"$want"'" {print $3}')"
[ "$resolved" = "$prefix/lib/$want" ] || fail "$want resolves to '$resolved'"
(cd "$work" && env -u JINA_NET_ECHO PATH="$prefix/bin:$PATH" LD_LIBRARY_PATH="$prefix/lib" timeout 60 ./demo_gateway >"$work/demo.out" 2>&1) ||
  { cat "$work/demo.out"; fail "the demo gateway (installed $want) failed"; }
grep -q '^demo finished$' "$work/demo.out" || { cat "$work/demo.out"; fail "the demo did not finish"; }
grep -q 'route: ranker-w0 -> ranker-head' "$work/demo.out" || { cat "$work/demo.out"; fail "the demo did not route through the head"; }
echo "   built, needs $want (-> $resolved), ran: $(grep -c -- '->' "$work/demo.out") routed responses, demo finished"

echo "== 6. demo gateway linked statically (pkg-config --static)"
static_link="${static_libs/-ljina_net/-Wl,-Bstatic -ljina_net -Wl,-Bdynamic}"
# shellcheck disable=SC2086
(cd "$src/examples" && cc -std=c11 -O2 -Wall -Wextra -Werror $cflags demo_gateway.c -o "$work/demo_static" $static_link)
readelf -d "$work/demo_static" | grep -q 'libjina_net' && fail "the static demo still needs libjina_net"
(cd "$work" && env -u JINA_NET_ECHO PATH="$prefix/bin:$PATH" timeout 60 ./demo_static >"$work/demo_static.out" 2>&1) ||
  { cat "$work/demo_static.out"; fail "the statically linked demo failed"; }
grep -q '^demo finished$' "$work/demo_static.out" || fail "the static demo did not finish"
echo "   built without a libjina_net NEEDED entry, ran: demo finished"

echo "== 7. request examples (C request builder; C++ with protoc from the installed protos) against jina-net-echo"
"$server" echo=example >"$work/echo.out" 2>"$work/echo.err" &
echo_pid=$!
for _ in $(seq 300); do grep -qx READY "$work/echo.out" && break; sleep 0.1; done
grep -qx READY "$work/echo.out" || { cat "$work/echo.out" "$work/echo.err"; fail "jina-net-echo did not print READY"; }
[ "$(sed -n 1p "$work/echo.out")" = "PID $echo_pid" ] || fail "jina-net-echo's first line is not 'PID $echo_pid'"
echo_addr="$(awk '$1 == "SERVER" && $2 == "example" && $3 == "echo" {print $4}' "$work/echo.out")"
case "$echo_addr" in 127.0.0.1:[0-9]*) ;; *) cat "$work/echo.out"; fail "no 'SERVER example echo 127.0.0.1:PORT' line" ;; esac
copy examples/echo_client.c "$src"
# shellcheck disable=SC2086
(cd "$src/examples" && cc -std=c11 -O2 -Wall -Wextra -Werror -MD -MF "$work/echo_c.d" $cflags echo_client.c \
  -o "$work/echo_client" $libs)
no_tree_deps "$work/echo_c.d"
LD_LIBRARY_PATH="$prefix/lib" timeout 60 "$work/echo_client" "$echo_addr" >"$work/echo_c.out" 2>&1 ||
  { cat "$work/echo_c.out"; fail "examples/echo_client.c failed"; }
grep -q 'request id echoed' "$work/echo_c.out" && grep -q '^STATUS: answered' "$work/echo_c.out" ||
  { cat "$work/echo_c.out"; fail "examples/echo_client.c: unexpected output"; }
echo "   C:   $(head -1 "$work/echo_c.out")"
protodir="$(pkg-config --variable=protodir jina_net)"
[ "$protodir" = "$prefix/share/jina_net/proto" ] || fail "pkg-config --variable=protodir is '$protodir'"
copy examples/cpp/echo_client.cpp "$src"
gen="$src/examples/cpp"
protoc -I"$protodir" --cpp_out="$gen" jina.proto docarray.proto
# shellcheck disable=SC2046,SC2086
(cd "$gen" && c++ -std=c++17 -O1 -Wall -Wextra -Werror -MD -MF "$work/echo_cpp.d" -I. echo_client.cpp jina.pb.cc docarray.pb.cc \
  -o "$work/echo_client_cpp" $(pkg-config --cflags --libs jina_net protobuf) -pthread) ||
  fail "examples/cpp/echo_client.cpp did not build"
no_tree_deps "$work/echo_cpp.d"
LD_LIBRARY_PATH="$prefix/lib" timeout 60 "$work/echo_client_cpp" "$echo_addr" >"$work/echo_cpp.out" 2>&1 ||
  { cat "$work/echo_cpp.out"; fail "examples/cpp/echo_client.cpp failed"; }
grep -q 'routes: example$' "$work/echo_cpp.out" || { cat "$work/echo_cpp.out"; fail "examples/cpp/echo_client.cpp: unexpected output"; }
echo "   C++: $(head -1 "$work/echo_cpp.out")"
kill "$echo_pid"
wait "$echo_pid" || fail "jina-net-echo did not exit 0 on SIGTERM"
echo_pid=

echo "== 8. C++ wrapper tests against the installed jina_net.hpp and $want"
copy bindings/cpp/test_jina_net.cpp "$src"
copy tests/c/test_servers.h "$src"   # the C++ test program's server starter (not the demo's: it has its own)
# shellcheck disable=SC2086
(cd "$src/bindings/cpp" && c++ -std=c++17 -O1 -Wall -Wextra -Werror -MD -MF "$work/cpp.d" $cflags test_jina_net.cpp \
  -o "$work/test_jina_net" $libs -pthread)
grep -q "$prefix/include/jina_net.hpp" "$work/cpp.d" || fail "the C++ test did not include the installed jina_net.hpp"
no_tree_deps "$work/cpp.d"
(cd "$work" && JINA_NET_TEST_SERVER="$server" LD_LIBRARY_PATH="$prefix/lib" timeout 300 ./test_jina_net >"$work/cpp.out" 2>&1) ||
  { tail -30 "$work/cpp.out"; fail "the C++ wrapper tests failed against the installed library"; }
echo "   $(tail -1 "$work/cpp.out")"

echo "== 9. Go binding with #cgo pkg-config: jina_net (-tags jinanet_pkgconfig)"
export GOPROXY=off GOFLAGS="${GOFLAGS:-}"
if [ -z "${HOME:-}" ] && [ -z "${GOCACHE:-}" ]; then export GOCACHE="${TMPDIR:-/tmp}/jinanet-go-cache"; fi
# Go's build cache (1.19 here) keys cgo packages on their flags but not on pkg-config's output: a
# package built against an earlier (since removed) prefix was reused with its stale -L. The prefix and
# the installed files in CGO_CFLAGS make them part of the key (as bindings/go/test.sh does for target/).
stamp="$(printf '%s' "$prefix" | cat - "$prefix/include/jina_net.h" "$prefix/lib/libjina_net.so.$version" | sha256sum | cut -c1-16)"
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DJINA_NET_INSTALL_STAMP=$stamp"
(cd bindings/go && go vet -tags jinanet_pkgconfig ./... && go test -c -tags jinanet_pkgconfig -o "$work/jinanet.test" .)
readelf -d "$work/jinanet.test" | grep -q "(NEEDED).*\[$want\]" || fail "the Go test binary does not need $want"
readelf -d "$work/jinanet.test" | grep -E 'RPATH|RUNPATH' | grep -q "$root" && fail "the Go test binary has an rpath into the source tree"
(cd bindings/go && JINA_NET_TEST_SERVER="$server" LD_LIBRARY_PATH="$prefix/lib" timeout 300 "$work/jinanet.test" -test.count=1 >"$work/go.out" 2>&1) ||
  { tail -30 "$work/go.out"; fail "the Go binding's tests failed against the installed library"; }
echo "   vet, build, tests: $(tail -1 "$work/go.out")"

echo "== 10. Python binding loads the installed $want by its soname"
(cd "$work" && env -u JINA_NET_LIBRARY PYTHONPATH="$root/bindings/python" LD_LIBRARY_PATH="$prefix/lib" \
  python3 "$root/tests/install/python_smoke.py" "$server" "$prefix/lib/libjina_net.so.$version") ||
  fail "the Python binding did not work with the installed library"
echo "== install suite: all checks passed"
