#!/usr/bin/env bash
# Installs libjina_net like a C library (the layout `make install` gives, as cargo-c does):
#
#   $LIBDIR/libjina_net.so.0.2.0          the shared library, DT_SONAME libjina_net.so.0.2
#   $LIBDIR/libjina_net.so.0.2 -> libjina_net.so.0.2.0
#   $LIBDIR/libjina_net.so   -> libjina_net.so.0.2   (for -ljina_net at link time)
#   $LIBDIR/libjina_net.a                  the static library
#   $INCLUDEDIR/jina_net.h, jina_net.hpp   the C header and the C++17 wrapper
#   $PKGCONFIGDIR/jina_net.pc              pkg-config --cflags --libs [--static] jina_net
#                                          (variables: bindir, protodir, echo)
#   $DATADIR/jina_net/proto/jina.proto, docarray.proto   the wire schema (jina 3.1.0, docarray 0.9.18)
#   $BINDIR/jina-net-echo                  an echo worker / head to try a gateway against (--help)
#
#   scripts/install.sh [VAR=value ...]      (or the same variables in the environment; `make install`)
#     PREFIX=/usr/local  LIBDIR=$PREFIX/lib  INCLUDEDIR=$PREFIX/include  PKGCONFIGDIR=$LIBDIR/pkgconfig
#     BINDIR=$PREFIX/bin  DATADIR=$PREFIX/share
#     DESTDIR=           staging root prepended to every path written (not to the paths in jina_net.pc)
#     PROFILE=release    the cargo profile to build and install (release or debug)
#     CC=cc              the C compiler driver used to link the shared library
#
# The soname: `cargo build` leaves target/<profile>/libjina_net.so without a DT_SONAME, because every
# test suite links that file with -ljina_net and runs it from target/ (LD_LIBRARY_PATH or rpath); with
# a soname the loader would look for a file target/ does not have. This script links the installed
# shared library itself, from the objects cargo already built: the whole static library (the same
# compiled code the cdylib is linked from), with the soname of scripts/soname.sh and a version
# script that exports jina_net_* only. cargo's own outputs are left untouched, so nothing is built twice
# and every suite keeps working.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

for arg in "$@"; do
  case "$arg" in
    PREFIX=* | LIBDIR=* | INCLUDEDIR=* | PKGCONFIGDIR=* | BINDIR=* | DATADIR=* | DESTDIR=* | PROFILE=* | CC=*) export "${arg?}" ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $arg (VAR=value: PREFIX LIBDIR INCLUDEDIR PKGCONFIGDIR BINDIR DATADIR DESTDIR PROFILE CC)" >&2; exit 2 ;;
  esac
done
PREFIX="${PREFIX:-/usr/local}"
LIBDIR="${LIBDIR:-$PREFIX/lib}"
INCLUDEDIR="${INCLUDEDIR:-$PREFIX/include}"
PKGCONFIGDIR="${PKGCONFIGDIR:-$LIBDIR/pkgconfig}"
BINDIR="${BINDIR:-$PREFIX/bin}"
DATADIR="${DATADIR:-$PREFIX/share}"
PROTODIR="$DATADIR/jina_net/proto"
DESTDIR="${DESTDIR:-}"
PROFILE="${PROFILE:-release}"
CC="${CC:-cc}"
for d in PREFIX LIBDIR INCLUDEDIR PKGCONFIGDIR BINDIR DATADIR; do
  case "${!d}" in /*) ;; *) echo "install.sh: $d must be an absolute path (got ${!d})" >&2; exit 2 ;; esac
done
case "$PROFILE" in
  release) cargo_flags=(--release) ;;
  debug) cargo_flags=() ;;
  *) echo "install.sh: PROFILE must be release or debug" >&2; exit 2 ;;
esac

# The version and the soname (libjina_net.so.0.<minor> before 1.0: see scripts/soname.sh).
{ read -r version; read -r soname; } < <(scripts/soname.sh)
real="libjina_net.so.$version"

# What is installed, and only that: the library (jina_net) and the echo worker (the test server,
# installed as jina-net-echo); not the benchmark crate. Features: cargo unifies them over the packages
# it builds, and these two packages give every dependency exactly the features `--workspace` (which
# every suite and scripts/bench.sh build) gives it (`cargo tree -e normal,build -f '{p} {f}'` is the
# same for both selections but for jina-net-bench), so target/<profile>/libjina_net.* is the same
# build either way and neither the suites nor this script rebuild the other's. `-p jina_net` alone
# would not be: it drops tokio's io-std and tonic's gzip/deflate (the test server's), compiling tokio
# & co. a second time and replacing target/<profile>/libjina_net.* with that build.
echo "== cargo build ${cargo_flags[*]} -p jina_net -p jina-net-testserver (libjina_net $version, jina-net-echo; profile $PROFILE)"
cargo build --locked "${cargo_flags[@]}" -p jina_net -p jina-net-testserver
echo_bin="target/$PROFILE/jina-net-test-server"
[ -x "$echo_bin" ] || { echo "install.sh: $echo_bin was not built" >&2; exit 1; }
archive="target/$PROFILE/libjina_net.a"
[ -f "$archive" ] || { echo "install.sh: $archive was not built" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/jina-net-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The libraries are rustc's `--print native-static-libs` for this target (Libs.private below).
native_libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
echo "== link $real (soname $soname) from $archive"
CC="$CC" scripts/link-shared.sh "$archive" "$work/$real" "$soname"

# jina_net.pc: paths relative to ${prefix} where they are under it (relocatable with
# pkg-config --define-prefix), absolute otherwise.
rel() { # $1 = path, $2 = variable name of the base, $3 = base
  case "$1" in
    "$3") echo "\${$2}" ;;
    "$3"/*) echo "\${$2}${1#"$3"}" ;;
    *) echo "$1" ;;
  esac
}
pc_libdir="$(rel "$LIBDIR" exec_prefix "$PREFIX")"
pc_includedir="$(rel "$INCLUDEDIR" prefix "$PREFIX")"
pc_protodir="$(rel "$PROTODIR" prefix "$PREFIX")"
pc_bindir="$(rel "$BINDIR" exec_prefix "$PREFIX")"
cat >"$work/jina_net.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=$pc_libdir
includedir=$pc_includedir
bindir=$pc_bindir
# jina.proto and docarray.proto (jina 3.1.0's wire schema): protoc -I\${protodir} ...
protodir=$pc_protodir
# an echo worker / head to try against (jina-net-echo --help)
echo=\${bindir}/jina-net-echo

Name: jina_net
Description: The networking of a Jina 3.1 serving system (gRPC connection pool, routing, control plane) with a C ABI
Version: $version
Libs: -L\${libdir} -ljina_net
Libs.private: ${native_libs[*]}
Cflags: -I\${includedir}
EOF

echo "== install into ${DESTDIR}${PREFIX}"
install -d "$DESTDIR$LIBDIR" "$DESTDIR$INCLUDEDIR" "$DESTDIR$PKGCONFIGDIR" "$DESTDIR$BINDIR" "$DESTDIR$PROTODIR"
install -m 0755 "$work/$real" "$DESTDIR$LIBDIR/$real"
ln -sfn "$real" "$DESTDIR$LIBDIR/$soname"
ln -sfn "$soname" "$DESTDIR$LIBDIR/libjina_net.so"
install -m 0644 "$archive" "$DESTDIR$LIBDIR/libjina_net.a"
install -m 0644 include/jina_net.h "$DESTDIR$INCLUDEDIR/jina_net.h"
install -m 0644 bindings/cpp/jina_net.hpp "$DESTDIR$INCLUDEDIR/jina_net.hpp"
install -m 0644 "$work/jina_net.pc" "$DESTDIR$PKGCONFIGDIR/jina_net.pc"
install -m 0644 proto/jina.proto proto/docarray.proto "$DESTDIR$PROTODIR/"
install -m 0755 "$echo_bin" "$DESTDIR$BINDIR/jina-net-echo"
for f in "$LIBDIR/$real" "$LIBDIR/$soname" "$LIBDIR/libjina_net.so" "$LIBDIR/libjina_net.a" \
  "$INCLUDEDIR/jina_net.h" "$INCLUDEDIR/jina_net.hpp" "$PKGCONFIGDIR/jina_net.pc" \
  "$PROTODIR/jina.proto" "$PROTODIR/docarray.proto" "$BINDIR/jina-net-echo"; do
  echo "  $DESTDIR$f"
done

# Refresh the loader cache when installing for real into a directory the loader searches.
if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1 &&
  cat /etc/ld.so.conf /etc/ld.so.conf.d/*.conf 2>/dev/null | grep -qx "$LIBDIR"; then
  echo "== ldconfig"
  ldconfig
fi
