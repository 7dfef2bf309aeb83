#!/usr/bin/env bash
# Install the cluster prerequisites of the analytics chart, at pinned versions:
#   - Strimzi cluster operator 1.2.0 (kafka.strimzi.io/v1, KRaft only)
#   - CloudNativePG operator 1.30.0 (chart 0.29.0)
#   - optionally (--with-monitoring) kube-prometheus-stack 88.0.0
#     (Prometheus Operator v0.93.0: ServiceMonitor, PrometheusRule, Prometheus, Grafana)
# and the application namespace. Idempotent: re-running upgrades in place.
#
#   k8s/install-operators.sh [--with-monitoring] [--namespace analytics]
set -euo pipefail

STRIMZI_CHART=oci://quay.io/strimzi-helm/strimzi-kafka-operator
STRIMZI_VERSION=1.2.0
CNPG_REPO=https://cloudnative-pg.github.io/charts
CNPG_CHART_VERSION=0.29.0          # operator 1.30.0
KPS_REPO=https://prometheus-community.github.io/helm-charts
KPS_VERSION=88.0.0                 # prometheus-operator v0.93.0

app_ns=analytics
monitoring=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --with-monitoring) monitoring=true ;;
    --namespace) app_ns="$2"; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

kubectl create namespace "$app_ns" --dry-run=client -o yaml | kubectl apply -f -

# Strimzi watches the application namespace only (least privilege); add more
# namespaces with --set watchNamespaces='{a,b}'.
helm upgrade --install strimzi-kafka-operator "$STRIMZI_CHART" \
  --version "$STRIMZI_VERSION" \
  --namespace strimzi-system --create-namespace \
  --set "watchNamespaces={$app_ns}" \
  --wait --timeout 10m

helm upgrade --install cnpg cloudnative-pg \
  --repo "$CNPG_REPO" --version "$CNPG_CHART_VERSION" \
  --namespace cnpg-system --create-namespace \
  --wait --timeout 10m

if [[ "$monitoring" == true ]]; then
  # Select every ServiceMonitor / PrometheusRule in the cluster, not only the ones
  # labelled with this release, so the chart's objects are picked up as they are.
  helm upgrade --install kube-prometheus-stack kube-prometheus-stack \
    --repo "$KPS_REPO" --version "$KPS_VERSION" \
    --namespace monitoring --create-namespace \
    --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
    --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
    --wait --timeout 15m
fi

kubectl -n strimzi-system rollout status deployment/strimzi-cluster-operator --timeout=5m
kubectl -n cnpg-system rollout status deployment/cnpg-cloudnative-pg --timeout=5m
echo "operators ready; install the chart into namespace $app_ns (docs/kubernetes.md)"
