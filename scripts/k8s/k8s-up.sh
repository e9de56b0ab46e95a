#!/usr/bin/env bash
# Start etcd + kube-apiserver on 127.0.0.1 and write a kubeconfig (libjina_net's copy of the recipe).
# APISERVER_ONLY=1 starts only the API server again (etcd and the PKI of an earlier run are reused):
# the Kubernetes tests use it to restart the API server while a pool is watching.
# Usage: eval "$(KUBE_APISERVER=/opt/k8s-test/bin/kube-apiserver RUN_DIR=/tmp/k8s-run scripts/k8s-up.sh)"
# Prints "export KUBECONFIG=..." on success. PIDs are in $RUN_DIR/*.pid.
set -euo pipefail
T0=$(date +%s%N)
KUBE_APISERVER="${KUBE_APISERVER:-/opt/k8s-test/bin/kube-apiserver}"
ETCD="${ETCD:-$(command -v etcd)}"
RUN_DIR="${RUN_DIR:-/tmp/k8s-run}"
API_PORT="${API_PORT:-6443}"
ETCD_PORT="${ETCD_PORT:-2379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-2380}"
mkdir -p "$RUN_DIR/pki" "$RUN_DIR/etcd-data"
cd "$RUN_DIR"

# ---- PKI: CA + server cert (SAN 127.0.0.1/localhost) + service-account key ----
if [ ! -f pki/server.crt ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=test-ca" \
    -keyout pki/ca.key -out pki/ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout pki/server.key -out pki/server.csr 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n' > pki/server.ext
  openssl x509 -req -in pki/server.csr -CA pki/ca.crt -CAkey pki/ca.key -CAcreateserial \
    -days 3650 -extfile pki/server.ext -out pki/server.crt 2>/dev/null
  openssl genrsa -out pki/sa.key 2048 2>/dev/null
  openssl rsa -in pki/sa.key -pubout -out pki/sa.pub 2>/dev/null
fi
TOKEN="${ADMIN_TOKEN:-test-admin-token}"
# token,user,uid,"group1,group2"
echo "${TOKEN},admin,admin-uid,\"system:masters\"" > pki/tokens.csv
# optional extra users, one "token,user,uid[,\"groups\"]" line each (bind them with RBAC Role/RoleBinding)
[ -n "${EXTRA_TOKENS:-}" ] && printf '%s\n' "$EXTRA_TOKENS" >> pki/tokens.csv

# ---- etcd (Debian etcd-server 3.4) ----
if [ "${APISERVER_ONLY:-0}" != 1 ]; then
"$ETCD" --name test --data-dir "$RUN_DIR/etcd-data" \
  --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" \
  --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
  --initial-cluster "test=http://127.0.0.1:${ETCD_PEER_PORT}" \
  --quota-backend-bytes=1073741824 ${ETCD_EXTRA_ARGS:-} \
  > "$RUN_DIR/etcd.log" 2>&1 &
echo $! > "$RUN_DIR/etcd.pid"
for i in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${ETCD_PORT}/health" >/dev/null 2>&1 && break; sleep 0.1
done
curl -fsS "http://127.0.0.1:${ETCD_PORT}/health" >/dev/null || { echo "etcd failed"; tail -20 "$RUN_DIR/etcd.log"; exit 1; }
fi

# ---- kube-apiserver ----
"$KUBE_APISERVER" \
  --etcd-servers="http://127.0.0.1:${ETCD_PORT}" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="${API_PORT}" \
  --tls-cert-file=pki/server.crt --tls-private-key-file=pki/server.key \
  --client-ca-file=pki/ca.crt \
  --token-auth-file=pki/tokens.csv \
  --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file=pki/sa.pub --service-account-signing-key-file=pki/sa.key \
  --service-cluster-ip-range=10.96.0.0/24 \
  --endpoint-reconciler-type=none \
  --disable-admission-plugins=ServiceAccount \
  --allow-privileged=true \
  >> "$RUN_DIR/apiserver.log" 2>&1 &
echo $! > "$RUN_DIR/apiserver.pid"

# ---- kubeconfig (works with kube::Client::try_default via KUBECONFIG) ----
cat > "$RUN_DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:${API_PORT}
    certificate-authority-data: $(base64 -w0 pki/ca.crt)
users:
- name: admin
  user:
    token: ${TOKEN}
contexts:
- name: test
  context:
    cluster: test
    user: admin
    namespace: default
current-context: test
KC

# ---- readiness: /readyz (all post-start hooks incl. RBAC bootstrap) ----
for i in $(seq 1 600); do
  if curl -fsS --cacert pki/ca.crt -H "Authorization: Bearer ${TOKEN}" \
       "https://127.0.0.1:${API_PORT}/readyz" >/dev/null 2>&1; then
    echo "etcd+kube-apiserver ready in $(( ($(date +%s%N)-T0)/1000000 )) ms" >&2
    echo "export KUBECONFIG=$RUN_DIR/kubeconfig"
    exit 0
  fi
  kill -0 "$(cat "$RUN_DIR/apiserver.pid")" 2>/dev/null || { echo "kube-apiserver exited"; tail -30 "$RUN_DIR/apiserver.log"; exit 1; }
  sleep 0.1
done
echo "kube-apiserver not ready in 60s"; tail -30 "$RUN_DIR/apiserver.log"; exit 1
