#!/usr/bin/env bash
# Runs every test of libjina_net: Rust (unit, integration against in-process servers, C ABI from
# Rust, header drift), C (ASan/UBSan and valgrind), C++, Go and interop with real jina 3.1.0;
# the install layout (pkg-config, soname, exports) and the Python binding.
# Installs what a fresh Debian machine lacks (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

echo "== Rust: cargo build --workspace, cargo test --workspace"
cargo build --workspace --locked   # the test-server binary the fault test, C, C++ and Go suites start
cargo test --workspace --locked 2>&1

echo "== C: tests/c/run.sh"
./tests/c/run.sh

for suite in bindings/cpp/test.sh bindings/go/test.sh tests/interop/run.sh tests/k8s/run.sh bench/smoke.sh; do
  if [ -x "$suite" ]; then
    echo "== $suite"
    "./$suite"
  fi
done
for suite in tests/install/run.sh bindings/python/test.sh; do
  echo "== $suite"
  "./$suite"
done
echo "== all suites passed"
