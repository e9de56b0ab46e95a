#!/usr/bin/env bash
# Builds and runs the C++ wrapper's tests (bindings/cpp/test_jina_net.cpp) twice:
#   (a) with AddressSanitizer + UndefinedBehaviorSanitizer (leak detection on), against
#       target/debug/libjina_net.so;
#   (b) statically linked against target/debug/libjina_net.a;
# compiles jina_net.hpp alone with -pedantic to prove it is warning-free, and checks that no call of
# the wrapper compiles with a C string (`const char *`, a string literal) where bytes are expected.
# Assumes `cargo build --workspace` was run (runs it if target/debug/libjina_net.so is missing).
# A run of the tests takes about 45 s, 15 s of it the gray-failure tests' waits (a keepalive PING
# every 10 s at least, the default liveness probes), which run beside the other gray-failure tests.
# The transport tests (0.2.2) start test-server processes of their own (TLS and mTLS, --compress,
# --unix) with the certificates of `jina-net-test-server pki DIR` in a temporary directory.
# Run by hand, the binary takes JINA_NET_CPP_TESTS=name,name (e.g. transport_options,transport) to run
# only those tests; this script always runs them all.
# Exits non-zero if anything fails.
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"  # the tests find target/debug/jina-net-test-server relative to the repository root

CXX="${CXX:-g++}"
# Build outputs go to a temporary directory (removed at exit) unless JINA_NET_CPP_OUT names one.
if [[ -n "${JINA_NET_CPP_OUT:-}" ]]; then
  OUT="$JINA_NET_CPP_OUT"
else
  OUT="$(mktemp -d "${TMPDIR:-/tmp}/jina-net-cpp.XXXXXX")"
  trap 'rm -rf "$OUT"' EXIT
fi
LIBDIR="$ROOT/target/debug"
WARN=(-std=c++17 -Wall -Wextra -Werror)
INC=(-I"$ROOT/include" -I"$ROOT/bindings/cpp")
RUN_TIMEOUT="${JINA_NET_CPP_TIMEOUT:-300}"

if [[ ! -f "$LIBDIR/libjina_net.so" || ! -f "$LIBDIR/libjina_net.a" || ! -x "$LIBDIR/jina-net-test-server" ]]; then
  echo "== cargo build --workspace (library or test server missing)"
  cargo build --workspace || { echo "cargo build failed"; exit 1; }
fi
mkdir -p "$OUT"

status=0
fail() { echo "FAIL: $*"; status=1; }

echo "== header alone: -pedantic"
printf '#include "jina_net.hpp"\nint main() { return 0; }\n' > "$OUT/header_only.cpp"
"$CXX" "${WARN[@]}" -pedantic "${INC[@]}" -c "$OUT/header_only.cpp" -o "$OUT/header_only.o" \
  || fail "jina_net.hpp does not compile warning-free with -pedantic"

echo "== no C string is taken as bytes (each snippet must fail to compile, for that reason)"
# A control that must compile: the same calls with the bytes given with their length.
compile_snippet() {  # name body -> compiler's exit code; output in $OUT/<name>.err
  printf '#include "jina_net.hpp"\n#include <string>\n#include <vector>\nusing namespace std::literals;\n%s\n%s\n' \
    'void f(jina_net::Pool &pool, jina_net::RequestMetadata &md) {' "$2 (void)pool; (void)md; }" >"$OUT/$1.cpp"
  "$CXX" "${WARN[@]}" "${INC[@]}" -fsyntax-only "$OUT/$1.cpp" >"$OUT/$1.err" 2>&1
}
compile_snippet control '(void)pool.send("d", "\x0a\x00"sv); (void)pool.send("d", {"a"sv, "b"sv});
  (void)jina_net::send_request_sync("\x0a\x00"sv, "127.0.0.1:1"); md.add("x-id", "text").add("t-bin", "\0\1"sv);
  jina_net::Bytes b(static_cast<const void *>("ab"), 2); (void)b;' ||
  { cat "$OUT/control.err"; fail "the control snippet does not compile"; }
refused=0
while IFS='|' read -r name body; do
  [[ -z "$name" ]] && continue
  if compile_snippet "$name" "$body"; then
    fail "accepted a C string as bytes: $body"
  elif ! grep -qE 'deleted.*Bytes' "$OUT/$name.err"; then  # g++ and clang name the deleted Bytes(const char *)
    cat "$OUT/$name.err"
    fail "$name: refused, but not because of jina_net::Bytes"
  else
    refused=$((refused + 1))
  fi
done <<'SNIPPETS'
copy_init|jina_net::Bytes b = "abc"; (void)b;
direct_init|jina_net::Bytes b("abc"); (void)b;
pointer|const char *p = "abc"; jina_net::Bytes b(p); (void)b;
send_future|(void)pool.send("d", "abc");
send_pointer|const char *p = "abc"; (void)pool.send("d", p);
send_list|(void)pool.send("d", {"abc", "def"});
send_callback|pool.send("d", "abc", jina_net::SendOptions{}, [](const jina_net::SendResult &) {});
send_cancellable|(void)pool.send_cancellable("d", {"abc", "def"});
oneshot_sync|(void)jina_net::send_request_sync("abc", "127.0.0.1:1");
oneshot_async|(void)jina_net::send_request_async("abc", "127.0.0.1:1");
vector|std::vector<jina_net::Bytes> v{"abc", "def"}; (void)v;
SNIPPETS
echo "   $refused snippets refused"

echo "== build (a): ASan + UBSan, shared library"
"$CXX" "${WARN[@]}" -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
  "${INC[@]}" bindings/cpp/test_jina_net.cpp -o "$OUT/test_jina_net_asan" \
  -L"$LIBDIR" -ljina_net -Wl,-rpath,"$LIBDIR" -lpthread \
  || fail "build (a)"

echo "== build (b): static library"
"$CXX" "${WARN[@]}" -g -O1 "${INC[@]}" bindings/cpp/test_jina_net.cpp -o "$OUT/test_jina_net_static" \
  "$LIBDIR/libjina_net.a" -lpthread -ldl -lm \
  || fail "build (b)"

# LeakSanitizer reported nothing from the Rust runtime's statics when this was written, so no
# suppressions are needed; bindings/cpp/lsan.supp is used only if someone adds one (for such
# process-lifetime statics only — never for the wrapper or per-send objects).
SUPP=""
[[ -f bindings/cpp/lsan.supp ]] && SUPP="suppressions=$ROOT/bindings/cpp/lsan.supp"

run() {  # name binary [env...]
  local name="$1" bin="$2"
  shift 2
  echo "== run ($name)"
  if [[ ! -x "$bin" ]]; then
    fail "$name: not built"
    return
  fi
  env -u JINA_NET_CPP_TESTS "$@" timeout --kill-after=10 "$RUN_TIMEOUT" "$bin" </dev/null  # every test
  local rc=$?
  [[ $rc -eq 0 ]] || fail "$name exited with $rc"
}

run "a: asan+ubsan, libjina_net.so" "$OUT/test_jina_net_asan" \
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1" \
  LSAN_OPTIONS="${SUPP}" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run "b: static, libjina_net.a" "$OUT/test_jina_net_static"

if [[ $status -eq 0 ]]; then
  echo "== C++ wrapper tests: OK"
else
  echo "== C++ wrapper tests: FAILED"
fi
exit $status
