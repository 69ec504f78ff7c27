#!/usr/bin/env bash
# A real kube-apiserver + etcd on loopback, for tests and CI (no cluster, no Docker needed):
#
#   kubeconfig=$(.ci/kube-apiserver.sh start DIR)   # prints DIR/kubeconfig once /readyz is ok
#   KUBECONFIG=$kubeconfig kubectl ...
#   .ci/kube-apiserver.sh stop DIR                  # SIGTERM both, wait, SIGKILL after 30 s
#
# DIR holds everything (certificates, etcd data, logs, pids); the caller removes it. Ports are
# picked free on 127.0.0.1, so several instances can run at once. Binaries come from
# $TAILGATE_KUBE_APISERVER / $TAILGATE_ETCD, else .ci/tools.sh builds them. Extra apiserver flags:
# $KUBE_APISERVER_EXTRA_FLAGS (e.g. --disable-admission-plugins=ServiceAccount for tests that
# create pods without a controller-manager). Flags and pitfalls: ../shared/kube-apiserver.md.
# Authentication: a client certificate in group system:masters (cluster-admin); authorization
# is RBAC, so RBAC objects are real. Needs openssl and curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

# free_port: a port nobody listens on now (checked against /proc/net/tcp{,6}); the start is
# retried if another process takes it first.
free_port() {
  local p hex
  while :; do
    p=$((20000 + RANDOM % 40000))
    hex=$(printf ':%04X ' "$p")
    if ! grep -q "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

# wait_url URL SECONDS [curl args]: until it answers 200.
wait_url() {
  local url=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  while [ $SECONDS -lt $deadline ]; do
    if curl -sf -o /dev/null "$@" "$url"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() {
  local pidfile=$1
  alive "$pidfile" || return 0
  local pid
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

certs() {
  local pki=$dir/pki
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=tailgate-test-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=kube-apiserver 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 2 -extfile admin.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

start_once() {
  local etcd_port peer_port api_port
  etcd_port=$(free_port)
  peer_port=$(free_port)
  api_port=$(free_port)
  rm -rf "$dir/etcd"
  "$etcd_bin" --name tailgate-test --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "tailgate-test=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync --log-level warn >"$dir/logs/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  if ! wait_url "http://127.0.0.1:$etcd_port/health" 60 || ! alive "$dir/etcd.pid"; then
    echo "etcd did not become healthy on :$etcd_port; log:" >&2
    tail -20 "$dir/logs/etcd.log" >&2
    stop_pid "$dir/etcd.pid"
    return 1
  fi
  # shellcheck disable=SC2086 # KUBE_APISERVER_EXTRA_FLAGS is a list of flags
  "$apiserver_bin" --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --secure-port="$api_port" --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --tls-cert-file="$dir/pki/server.crt" --tls-private-key-file="$dir/pki/server.key" \
    --client-ca-file="$dir/pki/ca.crt" --authorization-mode=RBAC \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$dir/pki/sa.pub" --service-account-signing-key-file="$dir/pki/sa.key" \
    --enable-priority-and-fairness=false \
    ${KUBE_APISERVER_EXTRA_FLAGS:-} >"$dir/logs/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
  if ! wait_url "https://127.0.0.1:$api_port/readyz" 120 --cacert "$dir/pki/ca.crt" \
    --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" || ! alive "$dir/kube-apiserver.pid"; then
    echo "kube-apiserver did not become ready on :$api_port; log:" >&2
    tail -20 "$dir/logs/kube-apiserver.log" >&2
    stop_pid "$dir/kube-apiserver.pid"
    stop_pid "$dir/etcd.pid"
    return 1
  fi
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: https://127.0.0.1:$api_port
      certificate-authority: $dir/pki/ca.crt
users:
  - name: admin
    user:
      client-certificate: $dir/pki/admin.crt
      client-key: $dir/pki/admin.key
contexts:
  - name: test
    context: {cluster: test, user: admin}
current-context: test
EOF
}

case $cmd in
  start)
    mkdir -p "$dir/logs"
    dir=$(cd "$dir" && pwd)
    apiserver_bin=${TAILGATE_KUBE_APISERVER:-$("$here/tools.sh" kube-apiserver)}
    etcd_bin=${TAILGATE_ETCD:-$("$here/tools.sh" etcd)}
    for tool in openssl curl; do
      command -v $tool >/dev/null || { echo "$0: $tool is needed (apt-get install $tool)" >&2; exit 1; }
    done
    certs
    for attempt in 1 2 3; do
      if start_once; then
        echo "$dir/kubeconfig"
        exit 0
      fi
      echo "kube-apiserver start attempt $attempt failed" >&2
    done
    exit 1
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    stop_pid "$dir/kube-apiserver.pid"
    stop_pid "$dir/etcd.pid"
    ;;
  *) usage ;;
esac
