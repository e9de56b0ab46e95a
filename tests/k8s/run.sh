#!/usr/bin/env bash
# The Kubernetes pool against a real API server: builds kube-apiserver v1.20.2 from Debian's source
# package once (cached in $JINA_NET_K8S_BIN, 8-10 min the first time), starts etcd + kube-apiserver
# on 127.0.0.1, runs tests/k8s.rs and the C ABI constructor check, and stops them.
set -euo pipefail
cd "$(dirname "$0")/../.."
export K8S_BIN_DIR="${JINA_NET_K8S_BIN:-/opt/k8s-test/bin}"
export RUN_DIR="${JINA_NET_K8S_RUN_DIR:-$(mktemp -d /tmp/jina-net-k8s.XXXXXX)}"
export API_PORT="${JINA_NET_K8S_API_PORT:-16443}" ETCD_PORT="${JINA_NET_K8S_ETCD_PORT:-12379}" ETCD_PEER_PORT="${JINA_NET_K8S_ETCD_PEER_PORT:-12380}"
export KUBE_APISERVER="$K8S_BIN_DIR/kube-apiserver"

scripts/k8s/build-kube-apiserver.sh
trap 'RUN_DIR="$RUN_DIR" scripts/k8s/k8s-down.sh' EXIT
eval "$(scripts/k8s/k8s-up.sh)"
export JINA_NET_K8S_KUBECONFIG="$KUBECONFIG" JINA_NET_K8S_RUN_DIR="$RUN_DIR"
cargo test --locked --test k8s -- --nocapture --test-threads=1 2>&1
