#!/usr/bin/env bash
# The main job: installs libjina_net (debug build, the one the suites use) into target/demo/prefix as
# a user would get it (scripts/install.sh), builds a small C gateway from that prefix with pkg-config
# only (examples/demo_gateway.c) and runs it: it routes requests through the C ABI to echo workers
# and a head of the installed jina-net-echo on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cc >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1; then
  echo "installing a C compiler and pkg-config"; apt-get update -qq && apt-get install -y -qq gcc pkg-config >/dev/null
fi
prefix="$PWD/target/demo/prefix"
mkdir -p target/demo
rm -rf "$prefix"
scripts/install.sh PROFILE=debug PREFIX="$prefix" >target/demo-install.log 2>&1 ||
  { cat target/demo-install.log; echo "demo: scripts/install.sh failed" >&2; exit 1; }
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046  # pkg-config output is a list of words
cc -std=c11 -O2 -Wall -Wextra -Werror examples/demo_gateway.c -o target/demo/demo_gateway \
  $(pkg-config --cflags --libs jina_net) -Wl,-rpath,"$(pkg-config --variable=libdir jina_net)" -lpthread
PATH="$(pkg-config --variable=bindir jina_net):$PATH" exec target/demo/demo_gateway
