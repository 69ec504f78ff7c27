#!/usr/bin/env bash
# CI for deploy/: every render of the manifests (kustomize overlays, helm lint + template) is
# applied with `kubectl apply --dry-run=server --validate=strict` to a real kube-apiserver that
# this script starts (with the Prometheus Operator CRDs installed, so PodMonitor, ServiceMonitor
# and PrometheusRule are validated against their schemas too), and the image is built without a
# Docker daemon, twice, to show the build is reproducible.
#
# Needs TAILGATE_KUBECTL, TAILGATE_HELM, TAILGATE_KUBE_APISERVER, TAILGATE_ETCD and
# TAILGATE_PROMETHEUS_CRDS (eval "$(.ci/tools.sh env)"; .ci/run does it).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TAILGATE_KUBECTL:?eval \"\$(.ci/tools.sh env)\" first}" "${TAILGATE_HELM:?}" "${TAILGATE_PROMETHEUS_CRDS:?}"
kubectl=$TAILGATE_KUBECTL
work=$(mktemp -d)
cleanup() {
  .ci/kube-apiserver.sh stop "$work/apiserver" || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== deploy: render the kustomize overlays and the Helm chart (helm lint --strict for each values set)"
deploy/render.sh "$work/renders"

echo "== deploy: start kube-apiserver + etcd"
start=$SECONDS
export KUBECONFIG
KUBECONFIG=$(.ci/kube-apiserver.sh start "$work/apiserver")
echo "ready in $((SECONDS - start)) s"
"$kubectl" version 2>/dev/null | sed 's/^/  /'

echo "== deploy: Prometheus Operator CRDs"
for crd in podmonitors servicemonitors prometheusrules; do
  # create, not apply: the last-applied annotation of a large CRD can exceed the size limit.
  "$kubectl" create -f "$TAILGATE_PROMETHEUS_CRDS/monitoring.coreos.com_$crd.yaml" >/dev/null
done
"$kubectl" wait --for condition=established --timeout=60s \
  crd/podmonitors.monitoring.coreos.com crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com

# A dry run does not create the namespace its objects live in (applied, so the renders'
# Namespace objects are compared against a last-applied configuration without a warning).
"$kubectl" create namespace tailgate --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null

echo "== deploy: the server rejects what it must (negative controls)"
expect_rejected() { # WHAT MANIFEST
  if printf '%s\n' "$2" | "$kubectl" apply --dry-run=server --validate=strict -f - >"$work/neg.log" 2>&1; then
    echo "!! the API server accepted $1:"; cat "$work/neg.log"; exit 1
  fi
  grep -q "$3" "$work/neg.log" || { echo "!! $1 rejected for another reason:"; cat "$work/neg.log"; exit 1; }
  echo "rejected as expected: $1"
}
expect_rejected "an unknown DaemonSet field" '
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: bad, namespace: tailgate}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: x, readOnlyRootFilesytem: true}]}' 'unknown field'
expect_rejected "an unknown PodMonitor field" '
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: bad, namespace: tailgate}
spec: {selector: {}, podMetricsEndpoints: [{port: metrics, intervall: 30s}]}' 'unknown field'

echo "== deploy: kubectl apply --dry-run=server --validate=strict of every render"
for f in "$work"/renders/*.yaml; do
  echo "-- $(basename "$f")"
  "$kubectl" apply --dry-run=server --validate=strict -f "$f" | sed 's/^/   /'
done

echo "== deploy: image without a Docker daemon (linux/amd64 + linux/arm64, OCI layout + docker tarball), twice"
version=ci-$(git rev-parse --short=12 HEAD)
build_image() {
  (cd deploy/image && go run . -src ../.. -version "$version" -oci "$work/$1/oci" -tarball "$work/$1/tailgate.tar")
}
mkdir -p "$work/a" "$work/b"
first=$(build_image a)
second=$(build_image b)
echo "$first"
if [ "$first" != "$second" ]; then
  echo "!! the same commit built two different images: $first and $second"; exit 1
fi
ls -l "$work/a/tailgate.tar" | awk '{print "docker tarball:", $5, "bytes"}'
echo "deploy: all renders valid on the API server, image reproducible"
