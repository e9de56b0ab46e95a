#!/usr/bin/env bash
# Smoke run of the benchmarks for the test command: builds the workspace (debug by default, the build
# the tests already made; JINA_NET_BENCH_PROFILE=release for the release build) and runs
# `jina-net-bench run --quick`, which first checks that every available client sends the payload
# file's exact bytes to process_single_data (a recording server), then exercises every client kind
# (raw tonic, Rust pool, C ABI, gRPC C++, Go binding, grpc-go, jina Python pool) for a fraction of a
# second each. Exits non-zero when any available client fails or sends other bytes; with
# JINA_NET_BENCH_REQUIRE_ALL=1 (set by scripts/test.sh, which installs every client's tools first) a
# missing client fails it too. It also checks that the floor binary (jina-net-floor) does not link
# libjina_net. It checks that the benchmarks still work, not how fast anything is.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${JINA_NET_BENCH_PROFILE:-debug}"
case "$profile" in
  debug) cargo build --workspace --locked >&2 ;;
  release) cargo build --release --workspace --locked >&2 ;;
  *) echo "JINA_NET_BENCH_PROFILE must be debug or release" >&2; exit 2 ;;
esac
# The floor (raw tonic) must run without libjina_net, whose allocator a program that links it gets.
if nm -C "target/$profile/jina-net-floor" | grep -q 'jina_net::'; then
  echo "target/$profile/jina-net-floor links libjina_net: the raw tonic floor must not" >&2
  exit 1
fi
require=()
[ "${JINA_NET_BENCH_REQUIRE_ALL:-0}" = 1 ] && require=(--require-all)
"target/$profile/jina-net-bench" run --quick "${require[@]}" "$@"
echo "bench smoke: ok"
