#!/usr/bin/env bash
# make demo: start the local testbed, run burstlet against it, burst a workload, show where
# its pods run, and stop everything on exit (also on Ctrl-C or failure).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
state="$root/.state/demo"
burstlet="$root/build/release/src/cmd/burstlet/burstlet"

cleanup() {
  echo "demo: stopping the testbed"
  "$bin/testbed" down --state "$state" --wipe >/dev/null || true
}
trap cleanup EXIT

backend_mode="${TESTBED_BACKEND:-cci}"
echo "demo: starting the testbed (cluster + backend control planes, kwok nodes; backend mode $backend_mode)"
# --metrics: metrics-server on both planes (metrics.k8s.io, kubectl top).
"$bin/testbed" up --state "$state" --backend "$backend_mode" --metrics
# The virtual node's address: the testbed's veth address, which the API server proxies to (it
# refuses loopback); burstlet's kubelet API listens there.
node_ip=$(sed -n 's/^node address \([^ ]*\) .*/\1/p' <<<"$("$bin/testbed" status --state "$state")")
if [ -z "$node_ip" ]; then
  echo "demo: the testbed reports no node address" >&2
  exit 1
fi
export KUBECONFIG="$state/cluster/admin.kubeconfig"
kubectl="$bin/kubectl"

echo
echo "demo: cluster nodes"
"$kubectl" get nodes -o wide
echo
echo "demo: backend (CCI stand-in) nodes"
"$kubectl" --kubeconfig "$state/backend/admin.kubeconfig" get nodes

# --- burstlet ---------------------------------------------------------------------------
health=127.0.0.1:10355
log="$state/burstlet.log"
config="$state/burstlet.yaml"
backend_kubeconfig="$state/backend/admin.kubeconfig"
# The cci provider against the backend plane (a real API server standing in for CCI). In CCI
# mode burstlet speaks CCI's API: the backend namespace gets a Network on the cluster's subnet
# (given here; on CCE it is read from the cluster, docs/cci.md), and no pod goes there before
# the Network is Active.
cat >"$config" <<YAML
provider:
  name: cci
  cci:
    clusterID: demo
    sweepInterval: 2s
YAML
if [ "$backend_mode" = cci ]; then
  # CCI is reached as on Huawei Cloud: its endpoint (the testbed's CCI gateway in front of the
  # backend plane) with AK/SK request signing; the gateway answers as CCI's 1.19 API does.
  status=$("$bin/testbed" status --state "$state")
  gateway=$(sed -n 's/^ *cci gateway: \([^ ]*\) (CA \([^,]*\),.*/\1/p' <<<"$status")
  gateway_ca=$(sed -n 's/^ *cci gateway: \([^ ]*\) (CA \([^,]*\),.*/\2/p' <<<"$status")
  if [ -z "$gateway" ] || [ -z "$gateway_ca" ]; then
    echo "demo: the testbed reports no CCI gateway:" >&2
    echo "$status" >&2
    exit 1
  fi
  echo "demo: CCI endpoint (the testbed's CCI gateway): $gateway"
  cat >>"$config" <<YAML
    endpoint: $gateway
    caFile: $gateway_ca
    akskFile: $state/backend/cci-gateway/e2e.aksk
    projectID: fedcba9876543210fedcba9876543210
    api: cci
    network:
      vpcID: 0c0ffee0-5b1e-4a8e-9d6f-00000000a0c0
      subnetID: 0c0ffee0-5b1e-4a8e-9d6f-000000000001
      networkID: 1c0ffee0-5b1e-4a8e-9d6f-000000000001
      securityGroupID: 0c0ffee0-5b1e-4a8e-9d6f-0000000056a0
      availabilityZone: testbed-1a
      cidr: 192.168.0.0/24
      domainID: 0123456789abcdef0123456789abcdef
      projectID: fedcba9876543210fedcba9876543210
YAML
else
  cat >>"$config" <<YAML
    kubeconfig: $state/backend/burstlet.kubeconfig
    api: kubernetes
YAML
fi
# The burst-policy webhook: the API server calls it for every new pod (docs/burst-policy.md).
cat >>"$config" <<YAML
admission:
  listen: 127.0.0.1:10356
  hosts: [127.0.0.1]
YAML
echo
echo "demo: starting burstlet (cci provider: pods run on the backend plane; log: $log)"
"$burstlet" run --config "$config" --kubeconfig "$state/cluster/burstlet.kubeconfig" \
  --node-name burstlet --node-ip "$node_ip" --kubelet-port 10250 --health-listen "$health" \
  --kubelet-client-ca-file "$state/cluster/pki/ca.crt" >"$log" 2>&1 &
burstlet_pid=$!
cleanup() {
  if kill -0 "$burstlet_pid" 2>/dev/null; then
    echo "demo: stopping burstlet (SIGTERM: in-flight syncs finish, the lease is released)"
    kill -TERM "$burstlet_pid" 2>/dev/null || true
    wait "$burstlet_pid" 2>/dev/null || true
  fi
  echo "demo: stopping the testbed"
  "$bin/testbed" down --state "$state" --wipe >/dev/null || true
}
for _ in $(seq 1 150); do
  if curl -fsS "http://$health/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$burstlet_pid" 2>/dev/null; then
    echo "demo: burstlet exited:"; cat "$log"; exit 1
  fi
  sleep 0.2
done
curl -fsS "http://$health/readyz" >/dev/null || { echo "demo: burstlet not ready:"; tail -20 "$log"; exit 1; }
echo
echo "demo: the virtual node next to the kwok workers"
"$kubectl" get nodes -o wide
if [ "$backend_mode" = cci ]; then
  echo
  echo "demo: the backend namespace's Network, Active before any pod is sent (burstlet was not ready before)"
  "$kubectl" --kubeconfig "$backend_kubeconfig" -n cce-burst-demo get networks.networking.cci.io \
    -o 'custom-columns=NAME:.metadata.name,STATE:.status.state,SUBNET:.spec.subnetID,CIDR:.spec.cidr,OWNER:.metadata.labels.burstlet\.io/managed-by'
  echo "  backend pods so far: $("$kubectl" --kubeconfig "$backend_kubeconfig" -n cce-burst-demo get pods --no-headers 2>/dev/null | wc -l)"
  "$kubectl" get events -n default --field-selector involvedObject.name=burstlet,reason=BackendNetworkActive \
    -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message
fi

echo
echo "demo: a Deployment of 3 with a ConfigMap (volume and environment), targeted at the virtual node"
"$kubectl" create namespace demo >/dev/null
"$kubectl" apply -f - <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: demo}
data: {GREETING: "hello from the cluster", index.html: "<h1>v1</h1>"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web, virtual-kubelet.io/burst-to-cci: enforce}
    spec:
      nodeSelector: {type: virtual-kubelet}
      tolerations:
      - {key: virtual-kubelet.io/provider, operator: Exists, effect: NoSchedule}
      containers:
      - name: web
        image: nginx:1.27
        resources: {requests: {cpu: 300m, memory: 512Mi}}
        envFrom: [{configMapRef: {name: web-config}}]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: MESSAGE, value: "$(GREETING), I am $(POD_NAME)"}
        volumeMounts: [{name: html, mountPath: /usr/share/nginx/html}]
      volumes:
      - {name: html, configMap: {name: web-config, items: [{key: index.html, path: index.html}]}}
YAML
"$kubectl" -n demo rollout status deployment/web --timeout=90s
echo
echo "demo: in the cluster: the pods run on the virtual node, with the backend's pod IPs"
"$kubectl" -n demo get pods -o wide
pod=$("$kubectl" -n demo get pods -o jsonpath='{.items[0].metadata.name}')
echo
echo "demo: $pod as the cluster sees it"
"$kubectl" -n demo get pod "$pod" -o jsonpath='{"phase: "}{.status.phase}{"\nhostIP: "}{.status.hostIP}{"\npodIP: "}{.status.podIP}{"\nconditions: "}{range .status.conditions[*]}{.type}={.status} {end}{"\ncontainer: "}{.status.containerStatuses[0].name} ready={.status.containerStatuses[0].ready} image={.status.containerStatuses[0].image}{"\n"}'
echo
echo "demo: on the backend (namespace cce-burst-demo): the pods on the CCI fleet, and the ConfigMap copy"
"$kubectl" --kubeconfig "$backend_kubeconfig" -n cce-burst-demo get pods,configmaps -o wide \
  -l burstlet.io/managed-by=burstlet,burstlet.io/node
bpod=$("$kubectl" --kubeconfig "$backend_kubeconfig" -n cce-burst-demo get pods -o jsonpath='{.items[0].metadata.name}')
echo
echo "demo: backend pod $bpod: normalized to CCI sizes, environment resolved like a kubelet does"
"$kubectl" --kubeconfig "$backend_kubeconfig" -n cce-burst-demo get pod "$bpod" -o json |
  python3 -c 'import json,sys; p=json.load(sys.stdin); a=p["metadata"]["annotations"]; c=p["spec"]["containers"][0]
print("  source: %s/%s" % (a["burstlet.io/source-namespace"], a["burstlet.io/source-name"]))
print("  pod size: cpu=%s memory=%s" % (a.get("virtual-kubelet.cci.io/burst-pod-cpu"), a.get("virtual-kubelet.cci.io/burst-pod-memory")))
print("  container resources: %s" % json.dumps(c.get("resources")))
[print("  env %s=%s" % (e["name"], e.get("value", e.get("valueFrom")))) for e in c.get("env", [])]'
echo
echo "demo: events of $pod (burstlet's and the backend's)"
"$kubectl" -n demo get events --field-selector involvedObject.name="$pod" \
  -o custom-columns=TYPE:.type,REASON:.reason,FROM:.source.component,MESSAGE:.message
echo
echo "demo: editing the ConfigMap: the backend copy follows within seconds"
"$kubectl" -n demo patch configmap web-config --type merge -p '{"data":{"index.html":"<h1>v2</h1>"}}' >/dev/null
for _ in $(seq 1 50); do
  got=$("$kubectl" --kubeconfig "$backend_kubeconfig" -n cce-burst-demo get configmaps \
    -l burstlet.io/managed-by=burstlet,burstlet.io/node -o jsonpath='{.items[0].data.index\.html}')
  [ "$got" = "<h1>v2</h1>" ] && break
  sleep 0.2
done
echo "  backend copy now serves: $got"
echo
echo "demo: kubectl logs and exec of $pod: the cluster's API server -> burstlet's kubelet API ($node_ip:10250) -> the backend"
streams_log=$("$bin/testbed" status --state "$state" | sed -n 's/^  pod streams: logs \([^ ]*\) .*/\1/p')
if [ -n "$streams_log" ]; then
  printf '%s stdout F hello from the backend, logged at %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$(date -u +%T)" >>"$streams_log"
fi
"$kubectl" -n demo logs "$pod" --tail=3
"$kubectl" -n demo exec "$pod" -- sh -c 'echo "exec ran in backend pod $TESTBED_POD_NAMESPACE/$TESTBED_POD_NAME"; exit 0'
echo
echo "demo: burstlet's metrics (excerpt of http://$health/metrics)"
curl -fsS "http://$health/metrics" | grep -E '^burstlet_(pods|provider_creates_total|pod_status_patches_total|node_ready|backend_requests_total)' | head -20
echo
echo "demo: scaling to 1: burstlet deletes on the backend, then finishes the API delete"
"$kubectl" -n demo scale deployment/web --replicas=1 >/dev/null
for _ in $(seq 1 100); do
  n=$("$kubectl" -n demo get pods --no-headers 2>/dev/null | wc -l)
  [ "$n" -le 1 ] && break
  sleep 0.2
done
"$kubectl" -n demo get pods -o wide
"$kubectl" --kubeconfig "$backend_kubeconfig" -n cce-burst-demo get pods -o wide
echo
echo "demo: the label alone: a Deployment labelled virtual-kubelet.io/burst-to-cci=auto, 12 x 1 CPU,"
echo "      no selector or toleration; the two 4-CPU kwok workers fill first, the rest bursts"
for _ in $(seq 1 50); do
  "$kubectl" get mutatingwebhookconfiguration burstlet-burstlet >/dev/null 2>&1 && break
  sleep 0.2
done
"$kubectl" apply -f - <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: peak
  namespace: demo
  labels: {virtual-kubelet.io/burst-to-cci: auto}
spec:
  replicas: 12
  selector: {matchLabels: {app: peak}}
  template:
    metadata: {labels: {app: peak}}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        resources: {requests: {cpu: "1", memory: 1Gi}}
YAML
"$kubectl" -n demo rollout status deployment/peak --timeout=90s
echo "  pods per node:"
"$kubectl" -n demo get pods -l app=peak -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort | uniq -c
bursted=$("$kubectl" -n demo get pods -l app=peak --field-selector spec.nodeName=burstlet -o jsonpath='{.items[0].metadata.name}')
echo "  $bursted: $("$kubectl" -n demo get pod "$bursted" -o jsonpath='{.metadata.annotations.burstlet\.io/burst-rule}')"
echo "  backend pods of the peak: $("$kubectl" --kubeconfig "$backend_kubeconfig" -n cce-burst-demo get pods --no-headers -l burstlet.io/managed-by=burstlet 2>/dev/null | grep -c '^demo-peak' || true)"
echo
echo "demo: the peak is over: scaling to 8 removes the burst pods first (their deletion cost is lower)"
for _ in $(seq 1 50); do
  costed=$("$kubectl" -n demo get pods -l app=peak --field-selector spec.nodeName=burstlet \
    -o jsonpath='{range .items[*]}{.metadata.annotations.controller\.kubernetes\.io/pod-deletion-cost}{"\n"}{end}' | grep -c -- -100 || true)
  [ "$costed" -ge 4 ] && break
  sleep 0.2
done
"$kubectl" -n demo scale deployment/peak --replicas=8 >/dev/null
for _ in $(seq 1 100); do
  n=$("$kubectl" -n demo get pods -l app=peak --field-selector spec.nodeName=burstlet --no-headers 2>/dev/null | wc -l)
  [ "$n" -eq 0 ] && break
  sleep 0.2
done
echo "  pods per node:"
"$kubectl" -n demo get pods -l app=peak -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort | uniq -c
echo
echo "demo: uninstall: stop burstlet, then 'burstlet cleanup' removes the backend namespace (its Network first)"
echo "      and the webhook's registration"
kill -TERM "$burstlet_pid" 2>/dev/null || true
wait "$burstlet_pid" 2>/dev/null || true
"$burstlet" cleanup --config "$config" --timeout 2m \
  --kubeconfig "$state/cluster/burstlet.kubeconfig" --node-name burstlet
"$kubectl" --kubeconfig "$backend_kubeconfig" get namespaces
if [ "$backend_mode" = cci ]; then
  echo "  Networks left: $("$kubectl" --kubeconfig "$backend_kubeconfig" get networks.networking.cci.io -A --no-headers 2>/dev/null | wc -l)"
fi
echo
echo "demo: done."
