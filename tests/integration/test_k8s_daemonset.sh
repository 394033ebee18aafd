#!/bin/bash
# SPDX-License-Identifier: MIT
# deploy/kubernetes/xmesh.yaml on the real test cluster: the DaemonSet with
# a locally built image (scripts/k8s-images.sh --agent), its ServiceAccount
# and ClusterRole; the agent runs as its pod (in-cluster config, RBAC), the
# init container installs and chains xmesh-cni into the node's conflist.
# The manifest is applied with only the node's paths pointed at the
# cluster's sandbox (cgroup root, pin root, CNI dirs) and --k8s-api (a
# hostNetwork agent on a cluster without kube-proxy). Then a ClusterIP
# service is reached byte-exact from a client pod, redirected.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/k8s_lib.sh"

export XM_K8S_CNI_CHAIN=0 # the DaemonSet's init container chains xmesh-cni
xm_k8s_setup
M=$XM_TOP/tests/k8s/manifests
grep -q xmesh-cni "$XM_K8S_DIR"/cni/net.d/*.conflist && xm_fail "xmesh-cni chained before the DaemonSet ran"

img=$("$XM_TOP/scripts/k8s-images.sh" --agent "$XM_K8S_DIR/images" | awk '{print $2}')
ctr --address "$XM_K8S_CONTAINERD_SOCK" -n k8s.io images import "$img" >/dev/null
xm_log "image xm.local/xmesh:dev imported ($(du -h "$img" | cut -f1))"

python3 - "$XM_TOP/deploy/kubernetes/xmesh.yaml" "$XM_K8S_DIR/xmesh.yaml" <<EOF
import sys, yaml
text = open(sys.argv[1]).read()
# The node's paths, as this cluster has them (host and container side alike).
for old, new in (("/sys/fs/bpf/xmesh", "$XM_K8S_PIN"),
                 ("--cgroup=/host/sys/fs/cgroup", "--cgroup=/host$XM_K8S_CGROUP"),
                 ("/opt/cni/bin", "$XM_K8S_DIR/cni/bin"),
                 ("/etc/cni/net.d", "$XM_K8S_DIR/cni/net.d"),
                 ("/var/lib/cni/xmesh", "$XM_K8S_CNI_STATE_DIR")):
    assert old in text, old
    text = text.replace(old, new)
docs = list(yaml.safe_load_all(text))
# A capability outside this machine's bounding set cannot be granted (runc:
# "unable to apply caps"); SYS_RESOURCE only lifts memlock on kernels < 5.11.
bnd = int([l.split()[1] for l in open("/proc/self/status") if l.startswith("CapBnd")][0], 16)
bits = {"NET_ADMIN": 12, "SYS_ADMIN": 21, "SYS_RESOURCE": 24, "PERFMON": 38, "BPF": 39}
have = lambda cap: cap not in bits or bool(bnd >> bits[cap] & 1)
for d in docs:
    if d and d["kind"] == "DaemonSet":
        spec = d["spec"]["template"]["spec"]
        for c in spec["initContainers"] + spec["containers"]:
            c["image"], c["imagePullPolicy"] = "xm.local/xmesh:dev", "Never"
            if c["name"] == "install-cni":
                c["env"] += [{"name": "CNI_BIN_DIR", "value": "$XM_K8S_DIR/cni/bin"},
                             {"name": "CNI_CONF_DIR", "value": "$XM_K8S_DIR/cni/net.d"}]
            if c["name"] == "agent":
                c["args"].append("--k8s-api=$XM_K8S_API")
                caps = c["securityContext"]["capabilities"]
                missing = [x for x in caps["add"] if not have(x)]
                if missing:
                    print("this machine's bounding set lacks", missing, "- not requested",
                          file=sys.stderr)
                    caps["add"] = [x for x in caps["add"] if have(x)]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
EOF
xm_kubectl apply -f "$XM_K8S_DIR/xmesh.yaml" >&2
xm_k8s_wait_ready app.kubernetes.io/name=xmesh 1 xmesh-system
agent_pod=$(xm_kubectl -n xmesh-system get pods -l app.kubernetes.io/name=xmesh -o 'jsonpath={.items[0].metadata.name}')
xm_log "ok: DaemonSet pod $agent_pod Ready (its /readyz: initial sync done)"
xm_kubectl -n xmesh-system logs "$agent_pod" -c install-cni >&2
grep -q '"xmesh-cni"' "$XM_K8S_DIR"/cni/net.d/*.conflist ||
	xm_fail "the init container did not chain xmesh-cni: $(cat "$XM_K8S_DIR"/cni/net.d/*)"
[ -x "$XM_K8S_DIR/cni/bin/xmesh-cni" ] || xm_fail "the init container did not install xmesh-cni"
xm_log "ok: xmesh-cni installed and chained by the init container"

xm_kubectl apply -f "$M/echo.yaml" -f "$M/echo-svc.yaml" >&2
xm_k8s_wait_ready app=xm-echo 3
xm_k8s_wait_ready app=xm-client 1
CIP=$(xm_kubectl get service xm-echo -o 'jsonpath={.spec.clusterIP}')
for _ in $(seq 50); do xm_ctl -j service show "$CIP:80" >/dev/null 2>&1 && break; sleep 0.2; done
xm_lb_wait "$CIP:80" 3
eps=$(xm_ctl -j endpoint list)
for ip in $(xm_k8s_pod_ips app=xm-echo) $(xm_k8s_pod_ips app=xm-client); do
	echo "$eps" | grep -q "\"$ip\"" || xm_fail "pod $ip not registered: $eps"
done
xm_log "ok: the pods were registered by the DaemonSet-installed xmesh-cni"
before_msgs=$(xm_stat redirect_msgs)
xm_k8s_client /bin/xm-load traffic "$CIP" 80 -q 64K -r 256K -c 4 -n 5 >&2 ||
	xm_fail "byte-exact traffic client -> $CIP:80 failed"
xm_log "ok: client -> ClusterIP $CIP:80 byte-exact through the DaemonSet's agent"
xm_assert "$(($(xm_stat redirect_msgs) - before_msgs))" -gt 0 "messages redirected socket to socket"
xm_k8s_no_service_rules "$CIP"

xm_kubectl delete -f "$XM_K8S_DIR/xmesh.yaml" --wait=true --timeout=60s >&2
xm_k8s_down_checked
