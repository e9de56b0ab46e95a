#!/usr/bin/env bash
# Tests the Go binding (package jinanet) against the project's test server:
#   go vet, go test -race (shared libjina_net.so), then go test -race -tags jinanet_static (libjina_net.a),
#   each with the default caller-driven pools and again with PoolOptions.LibraryThreads
#   (JINANET_TEST_LIBRARY_THREADS=1).
# Installs Debian's golang-go when go is missing, and builds the Rust library and the test server first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v go >/dev/null 2>&1; then
  echo "== installing Go (Debian golang-go)"
  if [ "$(id -u)" -eq 0 ]; then
    sudo=""
  elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "go is not installed and this user cannot run apt-get; install golang-go (Go >= 1.19)" >&2
    exit 1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
fi
go version

# No third-party modules: never reach for the module proxy. Give go a cache when HOME is unset.
export GOPROXY=off GOFLAGS="${GOFLAGS:-}"
if [ -z "${HOME:-}" ] && [ -z "${GOCACHE:-}" ]; then
  export GOCACHE="${TMPDIR:-/tmp}/jinanet-go-cache"
fi

echo "== cargo build --workspace (libjina_net.so, libjina_net.a, jina-net-test-server)"
(cd "$root" && cargo build --workspace)
export JINA_NET_TEST_SERVER="${JINA_NET_TEST_SERVER:-$root/target/debug/jina-net-test-server}"

# Go's build cache does not see files outside the package: a changed include/jina_net.h (a struct
# that grew) or a rebuilt libjina_net.a would be linked against stale cgo objects. Their hash in
# CGO_CFLAGS makes both part of the cache key.
stamp="$(cat "$root/include/jina_net.h" "$root/target/debug/libjina_net.a" | sha256sum | cut -c1-16)"
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DJINA_NET_BUILD_STAMP=$stamp"

cd "$here"
echo "== go vet ./..."
go vet ./...
for mode in driven threads; do
  lt=0
  [ "$mode" = threads ] && lt=1
  echo "== go test -count=1 -race ./...  (shared library, $mode pools)"
  JINANET_TEST_LIBRARY_THREADS=$lt go test -count=1 -race ./...
  echo "== go test -count=1 -race -tags jinanet_static ./...  (static library, $mode pools)"
  JINANET_TEST_LIBRARY_THREADS=$lt go test -count=1 -race -tags jinanet_static ./...
done
echo "== Go binding: all tests passed"
