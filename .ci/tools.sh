#!/usr/bin/env bash
# Builds the external tools the tests and CI need, pinned by version, cached outside the clone
# (so a new clone on the same machine reuses them, and a new machine builds them once).
#
#   .ci/tools.sh kube-apiserver|etcd|kubectl|helm|promtool   -> prints the path of the binary
#   .ci/tools.sh prometheus-crds   -> prints a directory of Prometheus Operator CRD YAMLs
#   .ci/tools.sh env               -> prints export lines for all of them
#
# Cache: ${TAILGATE_TOOLS_CACHE:-$HOME/.cache/tailgate-tools}/<tool>-<version>/<tool>.
# Everything comes from the Go module proxy (no internet otherwise). Build logs go to stderr.
set -euo pipefail

KUBE_VERSION=v1.37.2     # kube-apiserver and kubectl; the project's k8s.io modules are at v0.37.2
KUBE_STAGING=v0.37.2
ETCD_VERSION=v3.7.3
HELM_VERSION=v4.3.2
# promtool is built at the github.com/prometheus/prometheus version in go.mod, read from there so
# the rules are checked by the same PromQL parser the Go tests (dashboard, rule names) link.
PROMETHEUS_VERSION=$(awk '$1 == "github.com/prometheus/prometheus" { print $2; exit }' "$(dirname "$0")/../go.mod")
if [ -z "$PROMETHEUS_VERSION" ]; then
  echo "tools.sh: no github.com/prometheus/prometheus in go.mod" >&2
  exit 1
fi
PROM_OPERATOR_VERSION=v0.95.2 # monitoring.coreos.com CRDs (PodMonitor, ServiceMonitor, PrometheusRule)
CONTROLLER_GEN_VERSION=v0.23.0

cache=${TAILGATE_TOOLS_CACHE:-$HOME/.cache/tailgate-tools}
mkdir -p "$cache"

# cached NAME DIR FILE BUILD...: prints DIR/FILE, first running BUILD (with DIR as its last
# argument) when it does not exist. One builder at a time per tool (flock), so CI jobs sharing a
# cache wait for each other instead of building twice. BUILD must leave DIR/FILE only when done.
cached() {
  local name=$1 dir=$2 file=$3
  shift 3
  if [ ! -e "$dir/$file" ]; then
    mkdir -p "$dir"
    exec 9>"$cache/.lock-$name"
    flock 9
    if [ ! -e "$dir/$file" ]; then
      echo "building $name into $dir" >&2
      "$@" "$dir"
    fi
    exec 9>&-
  fi
  echo "$dir/$file"
}

# tool_module DIR MODULE PACKAGE [GOMOD_LINES]: a throw-away module that imports PACKAGE, for
# commands whose own modules carry replace directives (`go install` refuses them). GOFLAGS from
# the caller (-mod=mod) must not leak into other builds, so it is set per command.
tool_module() {
  local dir=$1 module=$2 pkg=$3 lines=${4:-}
  rm -rf "$dir"; mkdir -p "$dir"
  printf 'module %s\n\ngo 1.26\n\n%s\n' "$module" "$lines" >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >"$dir/tools.go"
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy >&2)
}

# module_build DIR PACKAGE OUT [LDFLAGS]: go build PACKAGE inside the module at DIR.
module_build() {
  local dir=$1 pkg=$2 out=$3 ldflags=${4:-}
  (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg" >&2)
  mv "$out.tmp" "$out"
}

# kubernetes_gomod: go.mod lines that build k8s.io/kubernetes commands (its own go.mod replaces
# the staging modules; ../shared/kube-apiserver.md).
kubernetes_gomod() {
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
    cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
    cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt \
    kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
    mount-utils pod-security-admission sample-apiserver streaming; do
    echo "replace k8s.io/$m => k8s.io/$m $KUBE_STAGING"
  done
}

kube_version_ldflags="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"

# kube-apiserver: cold ~8 min and 2.5 GB RSS on 2 cores.
build_kube_apiserver() {
  tool_module "$1/mod" tailgate.local/kubeapiserver k8s.io/kubernetes/cmd/kube-apiserver "$(kubernetes_gomod)"
  module_build "$1/mod" k8s.io/kubernetes/cmd/kube-apiserver "$1/kube-apiserver" "$kube_version_ldflags"
}

# kubectl at the apiserver's version (the machine's kubectl, if any, is older and not on a new
# machine): renders the kustomize overlays and runs the server-side dry runs. Shares the
# apiserver's module cache and most of its build cache.
build_kubectl() {
  tool_module "$1/mod" tailgate.local/kubectl k8s.io/kubernetes/cmd/kubectl "$(kubernetes_gomod)"
  module_build "$1/mod" k8s.io/kubernetes/cmd/kubectl "$1/kubectl" \
    "-X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=37 $kube_version_ldflags"
}

# etcd: the etcd main is the package go.etcd.io/etcd/server/v3 itself (go.etcd.io/etcd/v3 is
# refused by the proxy).
build_etcd() {
  tool_module "$1/mod" tailgate.local/etcd go.etcd.io/etcd/server/v3 "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  module_build "$1/mod" go.etcd.io/etcd/server/v3 "$1/etcd"
}

build_helm() {
  GOFLAGS= GOBIN="$1" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2
}

build_promtool() {
  tool_module "$1/mod" tailgate.local/promtool github.com/prometheus/prometheus/cmd/promtool \
    "require github.com/prometheus/prometheus $PROMETHEUS_VERSION"
  module_build "$1/mod" github.com/prometheus/prometheus/cmd/promtool "$1/promtool"
}

# The monitoring.coreos.com CRDs, generated by controller-gen from the Prometheus Operator's API
# types (the module with the CRD YAMLs is not served by the proxy; the API module is). Needed to
# dry-run PodMonitor/ServiceMonitor/PrometheusRule on a bare apiserver.
build_prometheus_crds() {
  local dir=$1
  GOFLAGS= GOBIN="$dir" go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION" >&2
  tool_module "$dir/mod" tailgate.local/promcrds github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
    "require github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring $PROM_OPERATOR_VERSION"
  rm -rf "$dir/crds.tmp"
  (cd "$dir/mod" && GOFLAGS=-mod=mod "$dir/controller-gen" crd:crdVersions=v1 \
    paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:dir="$dir/crds.tmp" >&2)
  rm -rf "$dir/crds"; mv "$dir/crds.tmp" "$dir/crds"
}

kube_apiserver() { cached kube-apiserver "$cache/kube-apiserver-$KUBE_VERSION" kube-apiserver build_kube_apiserver; }
kubectl() { cached kubectl "$cache/kubectl-$KUBE_VERSION" kubectl build_kubectl; }
etcd() { cached etcd "$cache/etcd-$ETCD_VERSION" etcd build_etcd; }
helm() { cached helm "$cache/helm-$HELM_VERSION" helm build_helm; }
promtool() { cached promtool "$cache/promtool-$PROMETHEUS_VERSION" promtool build_promtool; }
prometheus_crds() {
  local dir
  dir=$(cached prometheus-crds "$cache/prometheus-operator-crds-$PROM_OPERATOR_VERSION" crds/monitoring.coreos.com_podmonitors.yaml build_prometheus_crds)
  dirname "$dir"
}

case "${1:-}" in
  kube-apiserver) kube_apiserver ;;
  etcd) etcd ;;
  kubectl) kubectl ;;
  prometheus-crds) prometheus_crds ;;
  helm) helm ;;
  promtool) promtool ;;
  env)
    echo "export TAILGATE_KUBE_APISERVER=$(kube_apiserver)"
    echo "export TAILGATE_ETCD=$(etcd)"
    echo "export TAILGATE_KUBECTL=$(kubectl)"
    echo "export TAILGATE_PROMETHEUS_CRDS=$(prometheus_crds)"
    echo "export TAILGATE_HELM=$(helm)"
    echo "export TAILGATE_PROMTOOL=$(promtool)"
    ;;
  *) echo "usage: $0 kube-apiserver|etcd|kubectl|prometheus-crds|helm|promtool|env" >&2; exit 2 ;;
esac
