#!/usr/bin/env bash
# jina 3.1.0's own GrpcConnectionPool vs jina_net's (the Python binding over libjina_net), from Python,
# against the same echo worker: req/s, p50, p99 and CPU per request at 1, 16 and 256 in flight
# (bench/python/python_pool_compare.py; about 2 minutes). Release build by default;
# JINA_NET_BENCH_PROFILE=debug uses the debug build (numbers then say little; for smoke runs).
#
#   bench/python/run_pool_compare.sh [--quick] [--rounds=N] [--duration-ms=MS] [--inflight=1,16,256] [--payload=BYTES]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
profile="${JINA_NET_BENCH_PROFILE:-release}"
case "$profile" in
  release) cargo build --release --workspace --locked >&2 ;;
  debug) cargo build --workspace --locked >&2 ;;
  *) echo "JINA_NET_BENCH_PROFILE must be release or debug" >&2; exit 2 ;;
esac
PY="$(scripts/jina-venv.sh bench)"
export JINA_NET_LIBRARY="$root/target/$profile/libjina_net.so"
export JINA_NET_TEST_SERVER="$root/target/$profile/jina-net-test-server"
export PYTHONPATH="$root/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$PY" bench/python/python_pool_compare.py "$@"
