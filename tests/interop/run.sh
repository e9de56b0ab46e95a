#!/usr/bin/env bash
# Interop suite: libjina_net's C ABI against real jina 3.1.0 heads and workers (tests/interop.rs).
#
#   tests/interop/run.sh [extra cargo test filter/args after --]
#
# 1. The Python side: scripts/jina-venv.sh makes sure a venv with jina 3.1.0 exists (created once and
#    cached outside the repo in $JINA_NET_INTEROP_VENV, default
#    ${XDG_CACHE_HOME:-$HOME/.cache}/jina-net/venv-jina-3.1.0; reused while it imports the pinned
#    versions). If JINA_NET_INTEROP_PYTHON is already set, that interpreter is used instead (and must
#    work). Anything broken here fails the run: the suite never skips.
# 2. Builds the interop test target.
# 3. Runs it with JINA_NET_INTEROP_PYTHON set (without it, the tests only print "skipped").
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { echo "interop: $*"; }

PY="$(scripts/jina-venv.sh interop)"

say "building the interop tests"
cargo test --locked --test interop --no-run 2>&1

say "running the interop tests against real jina runtimes (127.0.0.1 only)"
export JINA_NET_INTEROP_PYTHON="$PY"
cargo test --locked --test interop -- --test-threads=1 "$@" 2>&1
