#!/usr/bin/env bash
# Runs every test of libjina_net: Rust (unit, integration against in-process servers, C ABI from
# Rust, header drift and hygiene, the layout of src/), C (ASan/UBSan and valgrind, and a program
# built against the frozen 0.2.0 header), the ABI baseline (libabigail), C++, Go and interop with
# real jina 3.1.0;
# the install layout (pkg-config, soname, exports) and the Python binding.
# Installs what a fresh Debian machine lacks (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

echo "== Rust: cargo build --workspace, cargo test --workspace"
cargo build --workspace --locked   # the test-server binary the fault test, C, C++ and Go suites start
cargo test --workspace --locked 2>&1

echo "== C: tests/c/run.sh (and the compatibility program built against the frozen 0.2.0 header)"
./tests/c/run.sh

echo "== ABI: scripts/abi-check.sh (libabigail against abi/<soname>.abi)"
./scripts/abi-check.sh

# install-deps.sh installed every benchmark client's tools and the interop suite makes the Python
# venv before it: the benchmark smoke test then requires every client to be there.
export JINA_NET_BENCH_REQUIRE_ALL=1
for suite in bindings/cpp/test.sh bindings/go/test.sh tests/interop/run.sh tests/k8s/run.sh \
  tests/install/run.sh bindings/python/test.sh bench/smoke.sh; do
  echo "== $suite"
  "./$suite"
done
echo "== all suites passed"
