#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian machine that has the Rust toolchain:
# a C/C++ compiler, valgrind (and, for the Go binding, golang-go; for interop, python3-venv).
# Does nothing when everything is there. Needs root (apt-get) only when something is missing.
set -euo pipefail
need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
command -v go >/dev/null 2>&1 || need+=(golang-go)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
