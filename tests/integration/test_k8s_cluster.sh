#!/bin/bash
# SPDX-License-Identifier: MIT
# The one-machine Kubernetes test cluster runs real pods on the xmesh
# datapath: a Deployment of 3 test servers and a client pod started by the
# kubelet (containerd + runc, CNI bridge + host-local + portmap + xmesh-cni),
# the agent serving the kubelet's cgroup root with a static service whose VIP
# points at the pod IPs. Asserts: xmesh-cni registered every pod, the client
# reaches the VIP byte-exact, over every backend, redirected socket to socket
# (same node), with no kube-proxy and no service rule in nftables/iptables;
# a pod annotated xmesh.io/redirect-skip-ports gets its opt-out from
# containerd through xmesh-cni (the pod-annotations capability of its conflist
# entry) and loses it at deletion; then the cluster is removed with nothing
# left behind.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/k8s_lib.sh"

xm_k8s_setup
VIP=10.96.250.10

cfg=$XM_K8S_DIR/xmesh.json
echo '{ "services": [] }' >"$cfg"
xm_agent_start --config "$cfg"
xm_log "agent serving $XM_CGROUP, pins $XM_PIN"

xm_kubectl apply -f "$XM_TOP/tests/k8s/manifests/echo.yaml" >&2
xm_k8s_wait_ready app=xm-echo 3
xm_k8s_wait_ready app=xm-client 1
mapfile -t ips < <(xm_k8s_pod_ips app=xm-echo)
client_ip=$(xm_k8s_pod_ips app=xm-client)
xm_log "backends ${ips[*]}, client $client_ip"

# runc put the containers into the kubelet's cgroup root in the cgroup2 mount
# too: that is what lets the agent serve them.
procs=$(find "$XM_CGROUP/kubepods" -name cgroup.procs -exec cat {} + | wc -l)
xm_assert "$procs" -ge 7 "container processes under $XM_CGROUP/kubepods (cgroup2)"

# xmesh-cni, called by containerd through the chain, registered every pod.
eps=$(xm_ctl -j endpoint list)
for ip in "${ips[@]}" "$client_ip"; do
	echo "$eps" | grep -q "\"$ip\"" || xm_fail "pod $ip not in xmeshctl endpoint list: $eps"
done
xm_log "ok: xmesh-cni registered the 4 pods"

# The VIP, written as a static service over the pod IPs.
python3 - "$cfg" "$VIP" "${ips[@]}" <<'EOF'
import json, sys
cfg, vip, ips = sys.argv[1], sys.argv[2], sys.argv[3:]
svc = lambda name, port, target: {"name": name, "vip": vip, "port": port,
	"algorithm": "round-robin", "backends": [{"address": ip, "port": target} for ip in ips]}
json.dump({"services": [svc("xm-echo-traffic", 80, 8080), svc("xm-echo-who", 81, 8081)]},
	open(cfg + ".new", "w"))
EOF
mv "$cfg.new" "$cfg"
kill -HUP "$XM_LAST_PID"
xm_lb_wait "$VIP:80" 3
xm_lb_wait "$VIP:81" 3

before_msgs=$(xm_stat redirect_msgs)
before_connects=$(xm_stat lb_connects)
xm_k8s_client /bin/xm-load traffic -t "$(xm_hostport "$VIP" 80)" -s 64K --answer 256K -c 4 -n 20 >&2 ||
	xm_fail "byte-exact traffic client -> $VIP:80 failed"
xm_log "ok: 20 connections client -> $VIP:80, 64 KiB up, 256 KiB down each, byte-exact"
xm_assert "$(($(xm_stat lb_connects) - before_connects))" -ge 20 "connect()s rewritten by xmesh"
xm_assert "$(($(xm_stat redirect_msgs) - before_msgs))" -gt 0 "messages redirected socket to socket"

answers=$(xm_k8s_client /bin/xm-whoami ask "$VIP" 81 -n 30)
mapfile -t names < <(xm_kubectl get pods -l app=xm-echo -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')
for n in "${names[@]}"; do
	c=$(echo "$answers" | grep -cx "$n" || true)
	xm_assert "$c" -gt 0 "connections to $VIP:81 answered by $n"
done

xm_k8s_no_service_rules "$VIP"

# The redirect opt-out annotation, as an operator writes it (docs/redirect-compat.md).
skips() {
	xm_ctl -j sock skip list |
		xm_json "sorted([e.get('port', 0), e.get('ports_only', False)] for e in j if e.get('netns_cookie'))"
}
xm_assert "$(skips)" = "[]" "no pod opt-out before the annotated pod"
xm_kubectl apply -f - >&2 <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: xm-optout
  labels: { app: xm-optout }
  annotations: { xmesh.io/redirect-skip-ports: "5432, 6379" }
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  containers:
    - { name: main, image: xm.local/testsrv:1, imagePullPolicy: Never,
        command: ["/bin/xm-whoami", "serve", "8081"] }
YAML
xm_k8s_wait_ready app=xm-optout 1
xm_assert "$(skips)" = "[[0, true], [5432, false], [6379, false]]" \
	"containerd passed the annotation to xmesh-cni: the pod's ports are opted out"
xm_kubectl delete pod xm-optout --wait=true --timeout=60s >&2
for _ in $(seq 150); do [ "$(skips)" = "[]" ] && break; sleep 0.2; done
xm_assert "$(skips)" = "[]" "deleting the pod removed its opt-out (xmesh-cni DEL)"

xm_kubectl delete -f "$XM_TOP/tests/k8s/manifests/echo.yaml" --wait=true --timeout=60s >&2
# The API object can go before the kubelet tore the sandbox's network down
# (CNI DEL): wait for the DEL, within a generous bound.
for _ in $(seq 150); do
	eps=$(xm_ctl -j endpoint list)
	left=0
	for ip in "${ips[@]}" "$client_ip"; do echo "$eps" | grep -q "\"$ip\"" && left=1; done
	[ $left = 0 ] && break
	sleep 0.2
done
[ $left = 0 ] || xm_fail "deleted pods still in the endpoint list after 30 s: $eps"
xm_log "ok: deleting the pods unregistered them (xmesh-cni DEL)"

xm_k8s_down_checked
