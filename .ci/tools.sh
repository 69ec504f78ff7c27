#!/usr/bin/env bash
# Builds the external tools the tests and CI need, pinned by version, cached outside the clone
# (so a new clone on the same machine reuses them, and a new machine builds them once).
#
#   .ci/tools.sh kube-apiserver|etcd|helm|promtool   -> prints the path of the binary
#   .ci/tools.sh env                                  -> prints export lines for all of them
#
# Cache: ${TAILGATE_TOOLS_CACHE:-$HOME/.cache/tailgate-tools}/<tool>-<version>/<tool>.
# Everything comes from the Go module proxy (no internet otherwise). Build logs go to stderr.
set -euo pipefail

KUBE_VERSION=v1.37.2     # kube-apiserver; the project's k8s.io modules are at v0.37.2
KUBE_STAGING=v0.37.2
ETCD_VERSION=v3.7.3
HELM_VERSION=v4.3.2
PROMETHEUS_VERSION=v0.316.0   # the github.com/prometheus/prometheus version in go.mod

cache=${TAILGATE_TOOLS_CACHE:-$HOME/.cache/tailgate-tools}
mkdir -p "$cache"

# build_in_module DIR: builds inside a throw-away module (tools whose modules carry replace
# directives cannot be go-installed). GOFLAGS from the caller (-mod=mod) must not leak in.
lock() { exec 9>"$cache/.lock-$1"; flock 9; }

kube_apiserver() {
  local dir="$cache/kube-apiserver-$KUBE_VERSION"
  if [ ! -x "$dir/kube-apiserver" ]; then
    lock kube-apiserver
    if [ ! -x "$dir/kube-apiserver" ]; then
      echo "building kube-apiserver $KUBE_VERSION (cold: ~8 min, 2.5 GB RSS)" >&2
      local mod="$dir/mod"
      rm -rf "$mod"; mkdir -p "$mod"
      {
        echo "module tailgate.local/kubeapiserver"
        echo "go 1.26"
        echo "require k8s.io/kubernetes $KUBE_VERSION"
        for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
          cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
          cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt \
          kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
          mount-utils pod-security-admission sample-apiserver streaming; do
          echo "replace k8s.io/$m => k8s.io/$m $KUBE_STAGING"
        done
      } >"$mod/go.mod"
      printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' >"$mod/tools.go"
      (cd "$mod" && GOFLAGS=-mod=mod go mod tidy >&2 && GOFLAGS=-mod=mod go build -trimpath -o "$dir/kube-apiserver.tmp" \
        -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" \
        k8s.io/kubernetes/cmd/kube-apiserver >&2)
      mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
    fi
  fi
  echo "$dir/kube-apiserver"
}

etcd() {
  local dir="$cache/etcd-$ETCD_VERSION"
  if [ ! -x "$dir/etcd" ]; then
    lock etcd
    if [ ! -x "$dir/etcd" ]; then
      echo "building etcd $ETCD_VERSION" >&2
      local mod="$dir/mod"
      rm -rf "$mod"; mkdir -p "$mod"
      printf 'module tailgate.local/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$mod/go.mod"
      printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$mod/tools.go"
      (cd "$mod" && GOFLAGS=-mod=mod go mod tidy >&2 && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$dir/etcd.tmp" go.etcd.io/etcd/server/v3 >&2)
      mv "$dir/etcd.tmp" "$dir/etcd"
    fi
  fi
  echo "$dir/etcd"
}

helm() {
  local dir="$cache/helm-$HELM_VERSION"
  if [ ! -x "$dir/helm" ]; then
    lock helm
    if [ ! -x "$dir/helm" ]; then
      echo "building helm $HELM_VERSION" >&2
      GOFLAGS= GOBIN="$dir" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2
    fi
  fi
  echo "$dir/helm"
}

promtool() {
  local dir="$cache/promtool-$PROMETHEUS_VERSION"
  if [ ! -x "$dir/promtool" ]; then
    lock promtool
    if [ ! -x "$dir/promtool" ]; then
      echo "building promtool $PROMETHEUS_VERSION" >&2
      local mod="$dir/mod"
      rm -rf "$mod"; mkdir -p "$mod"
      printf 'module tailgate.local/promtool\n\ngo 1.26\n\nrequire github.com/prometheus/prometheus %s\n' "$PROMETHEUS_VERSION" >"$mod/go.mod"
      printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus/prometheus/cmd/promtool"\n' >"$mod/tools.go"
      (cd "$mod" && GOFLAGS=-mod=mod go mod tidy >&2 && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$dir/promtool.tmp" github.com/prometheus/prometheus/cmd/promtool >&2)
      mv "$dir/promtool.tmp" "$dir/promtool"
    fi
  fi
  echo "$dir/promtool"
}

case "${1:-}" in
  kube-apiserver) kube_apiserver ;;
  etcd) etcd ;;
  helm) helm ;;
  promtool) promtool ;;
  env)
    echo "export TAILGATE_KUBE_APISERVER=$(kube_apiserver)"
    echo "export TAILGATE_ETCD=$(etcd)"
    echo "export TAILGATE_HELM=$(helm)"
    echo "export TAILGATE_PROMTOOL=$(promtool)"
    ;;
  *) echo "usage: $0 kube-apiserver|etcd|helm|promtool|env" >&2; exit 2 ;;
esac
