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
pedia_pid=
cleanup() {
  [ -n "$pedia_pid" ] && kill "$pedia_pid" 2>/dev/null || true
  [ -n "$fleet_pid" ] && kill "$fleet_pid" 2>/dev/null || true
}
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

echo "== 4. a simulated fleet (kubesim): a host cluster and three member clusters with workloads and churn"
"$KUBESIM" fleet --members 3 --churn 1 --dir "$DEMO_DIR/fleet" > "$DEMO_DIR/fleet.log" 2>&1 &
fleet_pid=$!
for _ in $(seq 1 100); do grep -q 'fleet ready' "$DEMO_DIR/fleet.log" 2>/dev/null && break; sleep 0.1; done
grep 'fleet ready' "$DEMO_DIR/fleet.log" || { cat "$DEMO_DIR/fleet.log" >&2; exit 1; }
echo "-- the CRDs install on the host cluster:"
"$KUBECTL" --kubeconfig "$DEMO_DIR/fleet/host.kubeconfig" apply --server-side -f "$DEMO_DIR/crds"
echo "-- member-1, as kubectl sees it:"
"$KUBECTL" --kubeconfig "$DEMO_DIR/fleet/member-1.kubeconfig" get deployments,pods -n shop-0 -o wide
"$KUBECTL" --kubeconfig "$DEMO_DIR/fleet/member-1.kubeconfig" get widgets -A
echo

echo "== 5. import policies: Argo CD cluster secrets on the host become PediaClusters (pedia run)"
HOST=("$KUBECTL" --kubeconfig "$DEMO_DIR/fleet/host.kubeconfig")
"${HOST[@]}" apply -f templates/argocd.yaml
"${HOST[@]}" apply -f - <<<'{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}'
for m in member-1 member-2; do
  kc="$DEMO_DIR/fleet/$m.kubeconfig"
  server=$("$KUBECTL" --kubeconfig "$kc" config view --raw -o jsonpath='{.clusters[0].cluster.server}')
  ca=$("$KUBECTL" --kubeconfig "$kc" config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  token=$("$KUBECTL" --kubeconfig "$kc" config view --raw -o jsonpath='{.users[0].user.token}')
  config=$(printf '{"bearerToken":"%s","tlsClientConfig":{"insecure":false,"caData":"%s"}}' "$token" "$ca")
  "${HOST[@]}" apply -f - <<<"{\"apiVersion\": \"v1\", \"kind\": \"Secret\",
 \"metadata\": {\"name\": \"cluster-$m\", \"namespace\": \"argocd\",
              \"labels\": {\"argocd.argoproj.io/secret-type\": \"cluster\", \"env\": \"demo\"}},
 \"data\": {\"name\": \"$(printf %s "$m" | base64 -w0)\", \"server\": \"$(printf %s "$server" | base64 -w0)\",
          \"config\": \"$(printf %s "$config" | base64 -w0)\"}}"
done
"${HOST[@]}" apply -f - <<<'{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "clusterpedia-system"}}' >/dev/null
echo "-- member-3 is a PediaCluster written by hand (token and CA inline):"
kc="$DEMO_DIR/fleet/member-3.kubeconfig"
"${HOST[@]}" apply -f - <<<"{\"apiVersion\": \"cluster.clusterpedia.io/v1alpha2\", \"kind\": \"PediaCluster\", \"metadata\": {\"name\": \"member-3\"},
 \"spec\": {\"apiserver\": \"$("$KUBECTL" --kubeconfig "$kc" config view --raw -o jsonpath='{.clusters[0].cluster.server}')\",
          \"caData\": \"$("$KUBECTL" --kubeconfig "$kc" config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')\",
          \"tokenData\": \"$("$KUBECTL" --kubeconfig "$kc" config view --raw -o jsonpath='{.users[0].user.token}' | base64 -w0)\",
          \"syncResources\": [{\"group\": \"\", \"resources\": [\"pods\", \"configmaps\", \"services\"]},
                            {\"group\": \"apps\", \"resources\": [\"deployments\", \"replicasets\"]}]}}"
SEARCH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PEDIA" run --kubeconfig "$DEMO_DIR/fleet/host.kubeconfig" --storage "sqlite://$DEMO_DIR/pedia.db" \
  --metrics-bind-address 127.0.0.1:0 --bind-address 127.0.0.1 --secure-port "$SEARCH_PORT" > "$DEMO_DIR/pedia.log" 2>&1 &
pedia_pid=$!
for _ in $(seq 1 100); do
  [ "$("${HOST[@]}" get pediaclusters -o name 2>/dev/null | wc -l)" -eq 3 ] && break
  sleep 0.2
done
"${HOST[@]}" get clusterimportpolicies,pediaclusterlifecycles,pediaclusters
[ "$("${HOST[@]}" get pediaclusters -o name | wc -l)" -eq 3 ] || { cat "$DEMO_DIR/pedia.log" >&2; exit 1; }
echo "-- the imported member-1, with the server and token from its Argo CD secret:"
"${HOST[@]}" get pediacluster argocd-cluster-member-1 -o jsonpath='{.spec.apiserver}{"\n"}'
echo

echo "== 6. the sync engine: every member's resources are kept in SQLite ($DEMO_DIR/pedia.db)"
ready() { "${HOST[@]}" get pediaclusters -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True; }
for _ in $(seq 1 150); do [ "$(ready)" -eq 3 ] && break; sleep 0.2; done
"${HOST[@]}" get pediaclusters -o wide
[ "$(ready)" -eq 3 ] || { cat "$DEMO_DIR/pedia.log" >&2; exit 1; }
sleep 1
"$PEDIA" storage stats --storage "sqlite://$DEMO_DIR/pedia.db"
echo "-- a ConfigMap created on member-1 reaches the store within a second:"
M1=("$KUBECTL" --kubeconfig "$DEMO_DIR/fleet/member-1.kubeconfig")
"${M1[@]}" apply -f - <<<'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hello", "namespace": "default"}, "data": {"from": "demo"}}'
sleep 1
"$PEDIA" storage stats --storage "sqlite://$DEMO_DIR/pedia.db" | grep -E 'CLUSTER|member-1 .*configmaps'
echo

echo "== 7. multi-cluster search with plain kubectl: kubectl -> host (aggregated API) -> pedia -> SQLite"
"${HOST[@]}" apply -f - <<<"{\"apiVersion\": \"apiregistration.k8s.io/v1\", \"kind\": \"APIService\",
 \"metadata\": {\"name\": \"v1beta1.clusterpedia.io\", \"annotations\": {\"kubesim.pedia.io/url\": \"https://127.0.0.1:$SEARCH_PORT\"}},
 \"spec\": {\"group\": \"clusterpedia.io\", \"version\": \"v1beta1\", \"insecureSkipTLSVerify\": true,
          \"service\": {\"namespace\": \"clusterpedia-system\", \"name\": \"pedia-apiserver\"},
          \"groupPriorityMinimum\": 1000, \"versionPriority\": 100}}"
"$PEDIA" kubeconfig --kubeconfig "$DEMO_DIR/fleet/host.kubeconfig" --output "$DEMO_DIR/pedia.kubeconfig"
P=("$KUBECTL" --kubeconfig "$DEMO_DIR/pedia.kubeconfig")
show() { echo "\$ kubectl --kubeconfig $DEMO_DIR/pedia.kubeconfig $*"; "${P[@]}" "$@"; echo; }
show get pods -A -l app.kubernetes.io/name=web
show get deployments -A -l 'search.clusterpedia.io/clusters in (argocd-cluster-member-2,member-3),search.clusterpedia.io/orderby=name_desc'
show --context member-3 get pods -n shop-0 -o wide
show get pods -A -l 'internalstorage.clusterpedia.io/fuzzy-name=api' --chunk-size=3
echo "\$ kubectl --kubeconfig $DEMO_DIR/fleet/host.kubeconfig get collectionresources"
"${HOST[@]}" get collectionresources
echo "\$ kubectl --kubeconfig $DEMO_DIR/fleet/host.kubeconfig get collectionresources workloads"
"${HOST[@]}" get collectionresources workloads
echo
echo "-- kubectl get -w through pedia sees a ConfigMap created on member-3:"
"${P[@]}" get configmaps -A -w -l 'search.clusterpedia.io/clusters=member-3' --watch-only > "$DEMO_DIR/watch.out" 2>&1 &
watch_pid=$!
sleep 1
"$KUBECTL" --kubeconfig "$DEMO_DIR/fleet/member-3.kubeconfig" create configmap hello-from-member-3 -n default --from-literal=from=demo
for _ in $(seq 1 50); do grep -q hello-from-member-3 "$DEMO_DIR/watch.out" && break; sleep 0.1; done
kill "$watch_pid" 2>/dev/null || true
cat "$DEMO_DIR/watch.out"
grep -q hello-from-member-3 "$DEMO_DIR/watch.out" || { echo "the watch did not see the change" >&2; exit 1; }
echo
echo "Try it yourself:  kubectl --kubeconfig $DEMO_DIR/pedia.kubeconfig get pods -A"
echo "                  kubectl --kubeconfig $DEMO_DIR/pedia.kubeconfig --context member-3 get deployments -A"
if [ -t 0 ] && [ -z "${CI:-}" ]; then
  echo "The fleet and pedia keep running; press Ctrl-C to stop everything."
  wait "$pedia_pid"
fi
