#!/usr/bin/env bash
# The main job: builds libjina_net and the test servers, then runs a small C gateway that routes
# requests through the C ABI to embedded workers on 127.0.0.1 (examples/demo_gateway.c).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cc >/dev/null 2>&1; then
  echo "installing a C compiler (gcc)"; apt-get update -qq && apt-get install -y -qq gcc >/dev/null
fi
cargo build --workspace --locked --quiet
mkdir -p target/demo
cc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude examples/demo_gateway.c -o target/demo/demo_gateway \
  -Ltarget/debug -ljina_net -Wl,-rpath,"$PWD/target/debug" -lpthread
exec target/demo/demo_gateway
