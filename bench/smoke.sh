#!/usr/bin/env bash
# Smoke run of the benchmarks for the test command: builds the workspace (debug by default, the build
# the tests already made; JINA_NET_BENCH_PROFILE=release for the release build) and runs
# `jina-net-bench run --quick`, which exercises every client kind that is available (raw tonic, Rust
# pool, C ABI, Go binding, jina Python pool) for a fraction of a second each. Exits non-zero when any
# available client fails. It checks that the benchmarks still work, not how fast anything is.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${JINA_NET_BENCH_PROFILE:-debug}"
case "$profile" in
  debug) cargo build --workspace --locked >&2 ;;
  release) cargo build --release --workspace --locked >&2 ;;
  *) echo "JINA_NET_BENCH_PROFILE must be debug or release" >&2; exit 2 ;;
esac
"target/$profile/jina-net-bench" run --quick "$@"
echo "bench smoke: ok"
