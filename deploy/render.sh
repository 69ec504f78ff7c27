#!/usr/bin/env bash
# Renders every way of installing tailgate into OUT/*.yaml, the set that CI validates:
#
#   deploy/render.sh OUT
#
# kustomize-base, kustomize-gke, kustomize-eks    the base and the two overlays as shipped
# kustomize-gke-loader-prometheus                 gke + the loader and Prometheus Operator components
# kustomize-eks-prometheus                        eks + the Prometheus Operator component
# helm-default, helm-gke, helm-eks                the chart with values.yaml, values-gke.yaml, values-eks.yaml
# helm-gke-loader-prometheus                      values-gke.yaml + loader, PodMonitor, ServiceMonitor and the
#                                                 PrometheusRule (files/prometheus-rules.yaml, else a sample)
#
# Components are added the way the overlays' comments tell users to: a `components:` list in
# the overlay's own kustomization.yaml (on a copy of the tree). `helm lint` runs for each values
# set. Tools: $TAILGATE_KUBECTL (else kubectl on PATH) and $TAILGATE_HELM (else helm on PATH).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
deploy=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
kubectl=${TAILGATE_KUBECTL:-kubectl}
helm=${TAILGATE_HELM:-helm}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The release every Helm render uses, so names match the kustomize renders.
release=tailgate
namespace=tailgate

for k in base overlays/gke overlays/eks; do
  name=kustomize-$(basename "$k")
  "$kubectl" kustomize "$deploy/kubernetes/$k" >"$out/$name.yaml"
  echo "rendered $name"
done

cp -r "$deploy/kubernetes" "$work/kubernetes"
cp -r "$deploy/prometheus" "$work/prometheus" # components/prometheus-operator includes ../../../prometheus
with_components() { # OVERLAY NAME COMPONENT...
  local overlay=$1 name=$2
  shift 2
  cp -r "$work/kubernetes" "$work/$name"
  {
    echo "components:"
    for c in "$@"; do echo "  - ../../components/$c"; done
  } >>"$work/$name/overlays/$overlay/kustomization.yaml"
  "$kubectl" kustomize "$work/$name/overlays/$overlay" >"$out/kustomize-$name.yaml"
  echo "rendered kustomize-$name"
}
with_components gke gke-loader-prometheus bigquery-loader prometheus-operator
with_components eks eks-prometheus prometheus-operator

chart=$deploy/helm/tailgate
render_helm() { # NAME CHART ARGS...
  local name=$1 dir=$2
  shift 2
  "$helm" lint --strict "$dir" "$@" >"$work/lint.log" 2>&1 || { cat "$work/lint.log" >&2; exit 1; }
  "$helm" template "$release" "$dir" --namespace "$namespace" "$@" >"$out/helm-$name.yaml"
  echo "linted and rendered helm-$name"
}
render_helm default "$chart"
render_helm gke "$chart" -f "$chart/values-gke.yaml"
render_helm eks "$chart" -f "$chart/values-eks.yaml"
cp -r "$chart" "$work/chart"
mkdir -p "$work/chart/files"
# The chart's own rules when it has them (deploy/prometheus/rules.yml copied in), else a sample.
[ -f "$chart/files/prometheus-rules.yaml" ] ||
  cp "$deploy/helm/testdata/sample-rules.yaml" "$work/chart/files/prometheus-rules.yaml"
render_helm gke-loader-prometheus "$work/chart" -f "$chart/values-gke.yaml" \
  --set loader.enabled=true,metrics.podMonitor.enabled=true,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true
