#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian machine that has the Rust toolchain:
# a C/C++ compiler, valgrind, pkg-config (the install suite), Go (golang-go), a Python that can make
# venvs (the interop suite and the Python binding), and the benchmark's gRPC clients: grpc++ with
# protoc's C++ plugin (libgrpc++-dev, protobuf-compiler-grpc) and grpc-go's sources for GOPATH builds
# (golang-google-grpc-dev, in /usr/share/gocode), and libabigail for the ABI check (abigail-tools).
# Does nothing when everything is there. Needs root (apt-get) only when something is missing.
set -euo pipefail
need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v go >/dev/null 2>&1 || need+=(golang-go)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  need+=(python3-venv)
fi
# the benchmark's gRPC C++ and grpc-go clients (bench/cpp, bench/grpc-go)
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists grpc++ protobuf 2>/dev/null; then
  need+=(libgrpc++-dev)
fi
command -v grpc_cpp_plugin >/dev/null 2>&1 || need+=(protobuf-compiler-grpc)
# the C++ request example (examples/cpp, tests/install/run.sh): protoc and the protobuf C++ library
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
pkg-config --exists protobuf 2>/dev/null || need+=(libprotobuf-dev)
[ -f /usr/share/gocode/src/google.golang.org/grpc/call.go ] || need+=(golang-google-grpc-dev)
# the ABI check (scripts/abi-check.sh): libabigail's abidw and abidiff
command -v abidiff >/dev/null 2>&1 || need+=(abigail-tools)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
