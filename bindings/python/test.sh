#!/usr/bin/env bash
# Tests the Python binding (bindings/python/jina_net) with the jina 3.1.0 venv (scripts/jina-venv.sh):
#   test_ffi.py         ctypes structs and functions against include/jina_net.h (fields, sizes, offsets,
#                       parameter and return types) and the loading rules (ABI version check; stand-ins
#                       for 0.2.0 and 0.2.1 libraries: what needs 0.2.2 is refused by name)
#   test_pool.py        jina_net.Pool and the one-shot helpers against jina-net-test-server (request
#                       metadata: what the echo worker saw, what is refused before anything is sent; the
#                       pool options of C ABI 0.2.1, each shown to have its effect: liveness probes vs a
#                       hostile:silent replica, fail_over_unanswered and idempotent sends, the per-attempt
#                       timeout vs a slow replica, eject_on_deadline, the retry budget vs unavailable
#                       replicas, connect timeout, TCP_USER_TIMEOUT, keepalive vs a SIGSTOPped server)
#   test_transport.py   the transport options of C ABI 0.2.2 against the test server (certificates of
#                       `jina-net-test-server pki`): mTLS accepted with an identity and refused without,
#                       the server-name override (pool-wide, per address) with svc.pem, unix: sockets,
#                       gzip/deflate requests and --compress responses (the server's TCP byte counts),
#                       wait_ready, the replicas' states in the routes, dns:///localhost:PORT, bad input
#   test_networking.py  the drop-in GrpcConnectionPool vs jina's own on real jina 3.1.0 workers (the same
#                       bytes with and without request metadata, and with compression='Gzip'/'Deflate' as
#                       jina 3.2 takes it; metadata= at the echo test server; pool options of the
#                       constructor against the silent and unavailable test servers; wait_ready, mTLS)
#   test_runtimes.py    real jina heads and Flows (gateway -> heads -> workers) with jina_net patched in
# then that `pip install bindings/python` gives an importable package and that the benchmark runs.
# Uses target/debug/libjina_net.so (JINA_NET_LIBRARY); builds the workspace first. Never skips: a
# missing venv fails the run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

./scripts/install-deps.sh   # cc for the layout test, python3 with venv
echo "== cargo build --workspace (libjina_net.so, jina-net-test-server)"
cargo build --workspace --locked
PY="$(scripts/jina-venv.sh python-binding)"

export JINA_NET_LIBRARY="$root/target/debug/libjina_net.so"
export JINA_NET_TEST_SERVER="${JINA_NET_TEST_SERVER:-$root/target/debug/jina-net-test-server}"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 JINA_LOG_LEVEL=WARNING

echo "== python -m unittest (bindings/python/tests)"
(cd "$here/tests" && timeout --kill-after=10 600 "$PY" -m unittest -v test_ffi test_pool test_transport test_misuse test_networking test_runtimes)

echo "== pip install bindings/python (into a temporary target) and import it from there"
site="$(mktemp -d "${TMPDIR:-/tmp}/jina-net-py.XXXXXX")"
trap 'rm -rf "$site"' EXIT
# From a copy (setuptools writes build/ and *.egg-info next to the sources); pip builds it in an
# isolated environment: setuptools and wheel come from PyPI the first time.
mkdir -p "$site/src"
cp -r "$here/pyproject.toml" "$here/README.md" "$here/jina_net" "$site/src/"
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps --target "$site/lib" "$site/src" \
  >"$site/pip.log" 2>&1 || { cat "$site/pip.log"; exit 1; }
(cd "$site" && PYTHONPATH="$site/lib" "$PY" -c '
import sys, jina_net, jina_net.networking
assert jina_net.__file__.startswith(sys.argv[1]), jina_net.__file__
assert jina_net.version() == "0.2.4", jina_net.version()
assert jina_net.__version__ == "0.2.4", jina_net.__version__
print("imported", jina_net.__file__, "libjina_net", jina_net.version(), "from", jina_net.library_path())
' "$site/lib")
echo "== the Python benchmark still runs (bench/python/run_pool_compare.sh --quick, debug build: numbers mean nothing)"
JINA_NET_BENCH_PROFILE=debug bench/python/run_pool_compare.sh --quick --inflight=1,16 >"$site/bench.out" 2>&1 ||
  { cat "$site/bench.out"; exit 1; }
grep -q '^| 16 | jina_net GrpcConnectionPool' "$site/bench.out" || { cat "$site/bench.out"; exit 1; }
echo "== Python binding: all tests passed"
