#!/bin/sh
# Lints and renders the chart with its defaults and with every option on
# (ci-values-all.yaml), and checks that a too-short termination grace period
# and a management address the probes cannot reach are refused. Helm comes
# from $HELM or PATH. POSIX sh (the Makefile runs it with sh).
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
chart="$here/o365-mail-connector"
helm="${HELM:-helm}"
if ! command -v "$helm" >/dev/null 2>&1; then
  echo "helm not found (set HELM or put helm on PATH)" >&2
  exit 2
fi
# Helm built from source (go install) assumes Kubernetes v1.20 unless told;
# render for a current cluster instead.
kube="${KUBE_VERSION:-1.30.0}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

pass=0
fail=0
run() {
  name="$1"
  shift
  if "$@" >"$out/$name.log" 2>&1; then
    pass=$((pass + 1))
    echo "ok   $name"
  else
    fail=$((fail + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$out/$name.log"
  fi
}

# Expects the command to fail and its output to contain a text.
run_refused() {
  name="$1"
  want="$2"
  shift 2
  if "$@" >"$out/$name.log" 2>&1; then
    fail=$((fail + 1))
    echo "FAIL $name (rendered, but should have been refused)"
  elif grep -q -- "$want" "$out/$name.log"; then
    pass=$((pass + 1))
    echo "ok   $name"
  else
    fail=$((fail + 1))
    echo "FAIL $name (refused without \"$want\")"
    sed 's/^/     /' "$out/$name.log"
  fi
}

# Checks that a rendered manifest contains a text.
contains() {
  name="$1"
  file="$2"
  want="$3"
  if grep -q -- "$want" "$file"; then
    pass=$((pass + 1))
    echo "ok   $name"
  else
    fail=$((fail + 1))
    echo "FAIL $name: \"$want\" missing from the rendered manifests"
  fi
}

run lint-default "$helm" lint --strict --kube-version "$kube" "$chart"
run lint-all "$helm" lint --strict --kube-version "$kube" "$chart" -f "$here/ci-values-all.yaml"
run template-default "$helm" template ci "$chart" --kube-version "$kube" --namespace ci
run template-all "$helm" template ci "$chart" --kube-version "$kube" --namespace ci -f "$here/ci-values-all.yaml"

cp "$out/template-default.log" "$out/default.yaml"
cp "$out/template-all.log" "$out/all.yaml"
contains default-readonly-rootfs "$out/default.yaml" "readOnlyRootFilesystem: true"
contains default-tmp-emptydir "$out/default.yaml" "mountPath: /tmp"
contains default-readyz "$out/default.yaml" "path: /readyz"
contains default-pdb "$out/default.yaml" "kind: PodDisruptionBudget"
contains all-hpa "$out/all.yaml" "kind: HorizontalPodAutoscaler"
contains all-servicemonitor "$out/all.yaml" "kind: ServiceMonitor"
contains all-envfrom "$out/all.yaml" "name: o365-mail-connector-env"
contains all-secrets-dir "$out/all.yaml" "value: \"/var/run/secrets/o365\""
if ! grep -q "kind: Deployment" "$out/all.yaml" || grep -q "ignored-because-secretsDir-is-enabled" "$out/all.yaml"; then
  fail=$((fail + 1)); echo "FAIL all-secrets-dir-wins: config.SECRETS_DIR leaked next to secretsDir"
else
  pass=$((pass + 1)); echo "ok   all-secrets-dir-wins"
fi

# Numbers in a values file arrive as floats: a million must not render as 1e+06.
run template-numbers "$helm" template ci "$chart" --kube-version "$kube" -f "$here/ci-values-numbers.yaml"
cp "$out/template-numbers.log" "$out/numbers.yaml"
contains numbers-whole "$out/numbers.yaml" 'value: "4000000"'
contains numbers-small "$out/numbers.yaml" 'value: "64"'
contains numbers-fraction "$out/numbers.yaml" 'value: "0.5"'

# The management server follows service.port, where the probes look.
run template-port "$helm" template ci "$chart" --kube-version "$kube" --set service.port=9090
cp "$out/template-port.log" "$out/port.yaml"
contains port-container "$out/port.yaml" "containerPort: 9090"
contains port-management-addr "$out/port.yaml" 'value: ":9090"'
contains default-management-addr "$out/default.yaml" 'value: ":8080"'
run_refused refuse-management-port "must listen on all interfaces at service.port" \
  "$helm" template ci "$chart" --kube-version "$kube" --set config.MANAGEMENT_ADDR=:9000
run_refused refuse-management-loopback "must listen on all interfaces at service.port" \
  "$helm" template ci "$chart" --kube-version "$kube" --set config.MANAGEMENT_ADDR=127.0.0.1:8080
run_refused refuse-management-extraenv "not in extraEnv" \
  "$helm" template ci "$chart" --kube-version "$kube" --set 'extraEnv[0].name=MANAGEMENT_ADDR' --set 'extraEnv[0].value=:9000'
run template-management-forms "$helm" template ci "$chart" --kube-version "$kube" \
  --set-string service.port=9090 --set 'config.MANAGEMENT_ADDR=[::]:09090'

run_refused refuse-short-grace "must be larger than CONNECTOR_SHUTDOWN_GRACE" \
  "$helm" template ci "$chart" --kube-version "$kube" --set terminationGracePeriodSeconds=30
run_refused refuse-secretsdir-without-secret "secretsDir.secretName is required" \
  "$helm" template ci "$chart" --kube-version "$kube" --set secretsDir.enabled=true

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
