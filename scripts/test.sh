#!/usr/bin/env bash
# Runs every test of libjina_net: Rust (unit + integration against in-process servers), then the
# suites of the later layers when present. Installs what a fresh Debian machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust: cargo test --workspace"
cargo test --workspace --locked 2>&1
