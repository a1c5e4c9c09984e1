#!/usr/bin/env bash
# `make demo`: what pedia does today, on this machine, with nothing else running.
# It grows with each feature and never pretends: steps that are not built yet are named as such.
set -euo pipefail
cd "$(dirname "$0")/.."
PEDIA=target/debug/pedia
KUBESIM=target/debug/kubesim
DEMO_DIR=${DEMO_DIR:-.demo}
COMPAT=${COMPAT:-../shared/compat/clusterpedia}
KUBECTL=${KUBECTL:-$(command -v kubectl || echo .tools/bin/kubectl)}

rm -rf "$DEMO_DIR" && mkdir -p "$DEMO_DIR"
fleet_pid=
cleanup() { [ -n "$fleet_pid" ] && kill "$fleet_pid" 2>/dev/null || true; }
trap cleanup EXIT

echo "== 1. pedia generates Clusterpedia's four CRDs from its Rust types"
"$PEDIA" crds --out-dir "$DEMO_DIR/crds"
ls "$DEMO_DIR/crds"
echo

echo "== 2. manifests written for Clusterpedia are accepted unchanged (strict, apiserver-style validation)"
compat_dirs=()
for d in "$COMPAT/examples" "$COMPAT/clusterimportpolicy"; do [ -d "$d" ] && compat_dirs+=("$d"); done
"$PEDIA" validate docs/examples "${compat_dirs[@]}"
echo

echo "== 3. a broken manifest is rejected with the field path (exit code 1)"
set +e
printf 'apiVersion: cluster.clusterpedia.io/v1alpha2\nkind: PediaCluster\nmetadata: {name: broken}\nspec:\n  syncResources: pods\n  tokenData: not-base64!\n' \
  | "$PEDIA" validate -
code=$?
set -e
[ "$code" -eq 1 ] || { echo "expected exit code 1, got $code" >&2; exit 1; }
echo

echo "== 4. a simulated fleet (kubesim): a host cluster and two member clusters with workloads"
"$KUBESIM" fleet --members 2 --dir "$DEMO_DIR/fleet" > "$DEMO_DIR/fleet.log" 2>&1 &
fleet_pid=$!
for _ in $(seq 1 100); do grep -q 'fleet ready' "$DEMO_DIR/fleet.log" 2>/dev/null && break; sleep 0.1; done
grep 'fleet ready' "$DEMO_DIR/fleet.log" || { cat "$DEMO_DIR/fleet.log" >&2; exit 1; }
echo "-- the CRDs install on the host cluster:"
"$KUBECTL" --kubeconfig "$DEMO_DIR/fleet/host.kubeconfig" apply --server-side -f "$DEMO_DIR/crds"
echo "-- member-1, as kubectl sees it:"
"$KUBECTL" --kubeconfig "$DEMO_DIR/fleet/member-1.kubeconfig" get deployments,pods -n shop-0 -o wide
"$KUBECTL" --kubeconfig "$DEMO_DIR/fleet/member-1.kubeconfig" get widgets -A
echo

echo "Not built yet: syncing the fleet into SQLite and searching it with kubectl (see README, Status)."
