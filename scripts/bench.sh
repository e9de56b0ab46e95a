#!/usr/bin/env bash
# Builds everything in release and runs the send-path benchmark (see BENCHMARKS.md): raw tonic, the
# Rust pool API, the C ABI (bench/c, compiled here against target/release/libjina_net.so), gRPC C++
# (bench/cpp), the Go binding, grpc-go (bench/grpc-go) and jina 3.1.0's Python pool, side by side
# against the project's echo worker, after checking that every client sends the same request bytes. Prints the
# markdown tables and ratios (also written to target/bench/results.md; raw output: target/bench/raw.txt).
#
#   scripts/bench.sh            full run (about 4-6 minutes on 2 cores)
#   scripts/bench.sh --quick    smoke run (seconds; numbers not meaningful)
#
# Extra arguments go to `jina-net-bench run` (e.g. --only=tonic,c). Installs what the clients need
# and is missing (scripts/install-deps.sh: compilers, Go, grpc++ and protoc's plugin for the gRPC C++
# client, grpc-go's Debian sources for the grpc-go client). The Python column needs the interop venv
# (JINA_NET_INTEROP_VENV, or ~/.cache/jina-net/venv-jina-3.1.0; tests/interop/run.sh creates it).
# The chart of the run is target/bench/chart.svg. Then the Python binding against jina's own pool
# (bench/python/run_pool_compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh >&2
echo "== cargo build --release --workspace" >&2
cargo build --release --workspace >&2
target/release/jina-net-bench run "$@"
# jina's Python pool against the Python binding's (jina_net.GrpcConnectionPool), side by side; with
# --quick it runs a few seconds only. Written to target/bench/python-pool-compare.md as well.
quick=""
for a in "$@"; do [ "$a" = "--quick" ] && quick="--quick"; done
echo "== Python: jina's GrpcConnectionPool vs jina_net's (bench/python/run_pool_compare.sh)" >&2
bench/python/run_pool_compare.sh $quick | tee target/bench/python-pool-compare.md
