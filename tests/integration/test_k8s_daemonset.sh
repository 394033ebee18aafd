#!/bin/bash
# SPDX-License-Identifier: MIT
# deploy/kubernetes/xmesh.yaml on the real test cluster: the DaemonSet with
# a locally built image (scripts/k8s-images.sh --agent), its ServiceAccount
# and ClusterRole; the agent runs as its pod (in-cluster config, RBAC), the
# init container installs and chains xmesh-cni into the node's conflist.
# The manifest is applied with only the node's paths pointed at the
# cluster's sandbox (cgroup root, pin root, CNI dirs) and --k8s-api (a
# hostNetwork agent on a cluster without kube-proxy). Then a ClusterIP
# service is reached byte-exact from a client pod, redirected. Then the
# uninstall DaemonSet (deploy/kubernetes/xmesh-uninstall.yaml) takes xmesh off
# the node: an open redirected connection drains, nothing of xmesh is left,
# pods talk through plain routing.
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

# local_manifest NAME: deploy/kubernetes/NAME.yaml into $XM_K8S_DIR/NAME.yaml,
# pointed at this cluster.
local_manifest() {
	python3 - "$XM_TOP/deploy/kubernetes/$1.yaml" "$XM_K8S_DIR/$1.yaml" <<EOF
import sys, yaml
text = open(sys.argv[1]).read()
# The node's paths, as this cluster has them (host and container side alike).
subs = (("/sys/fs/bpf/xmesh", "$XM_K8S_PIN"),
        ("--cgroup=/host/sys/fs/cgroup", "--cgroup=/host$XM_K8S_CGROUP"),
        ("value: /host/sys/fs/cgroup", "value: /host$XM_K8S_CGROUP"),
        ("/opt/cni/bin", "$XM_K8S_DIR/cni/bin"),
        ("/etc/cni/net.d", "$XM_K8S_DIR/cni/net.d"),
        ("/var/lib/cni/xmesh", "$XM_K8S_CNI_STATE_DIR"),
        ("/var/lib/cni", "$XM_K8S_DIR/cni"))
hits = [old for old, new in subs if old in text]
assert "/sys/fs/bpf/xmesh" in hits and any(h.endswith("/host/sys/fs/cgroup") for h in hits) and \
    "/etc/cni/net.d" in hits, "the manifest's node paths changed: %s" % hits
for old, new in subs:
    text = text.replace(old, new)
docs = list(yaml.safe_load_all(text))
# A capability outside this machine's bounding set cannot be granted (runc:
# "unable to apply caps"); SYS_RESOURCE only lifts memlock on kernels < 5.11.
bnd = int([l.split()[1] for l in open("/proc/self/status") if l.startswith("CapBnd")][0], 16)
bits = {"NET_ADMIN": 12, "SYS_ADMIN": 21, "SYS_RESOURCE": 24, "PERFMON": 38, "BPF": 39}
have = lambda cap: cap not in bits or bool(bnd >> bits[cap] & 1)
host_dirs = [{"name": "CNI_BIN_DIR", "value": "$XM_K8S_DIR/cni/bin"},
             {"name": "CNI_CONF_DIR", "value": "$XM_K8S_DIR/cni/net.d"}]
for d in docs:
    if d and d["kind"] == "DaemonSet":
        spec = d["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            # the uninstall DaemonSet's "done" marker is a pause container
            c["image"] = "xm.local/pause:1" if "pause" in c["image"] else "xm.local/xmesh:dev"
            c["imagePullPolicy"] = "Never"
            if c["name"] == "install-cni":
                c["env"] += host_dirs
            if c["name"] == "uninstall":
                c["env"] += host_dirs + [{"name": "XMESH_STATE_DIR", "value": "$XM_K8S_CNI_STATE_DIR"}]
            if c["name"] == "agent":
                c["args"].append("--k8s-api=$XM_K8S_API")
            caps = c.get("securityContext", {}).get("capabilities", {})
            missing = [x for x in caps.get("add", []) if not have(x)]
            if missing:
                print("this machine's bounding set lacks", missing, "- not requested",
                      file=sys.stderr)
                caps["add"] = [x for x in caps["add"] if have(x)]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
EOF
}
local_manifest xmesh
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
xm_k8s_client /bin/xm-load traffic -t "$(xm_hostport "$CIP" 80)" -s 64K --answer 256K -c 4 -n 20 >&2 ||
	xm_fail "byte-exact traffic client -> $CIP:80 failed"
xm_log "ok: client -> ClusterIP $CIP:80 byte-exact through the DaemonSet's agent"
xm_assert "$(($(xm_stat redirect_msgs) - before_msgs))" -gt 0 "messages redirected socket to socket"
xm_k8s_no_service_rules "$CIP"

# Uninstall, as deploy/kubernetes/xmesh-uninstall.yaml says: the agent's
# DaemonSet deleted (its pod leaves the datapath in place), then the uninstall
# DaemonSet: xmesh-cni unchained, programs detached, pins and records
# removed. A redirected connection open meanwhile drains: it stays byte-exact
# until it closes, and the rollout waits for it. Afterwards pods talk through
# plain routing, and a new pod gets its network without xmesh-cni.
xm_bg xm_k8s_client /bin/xm-load traffic -t "$(xm_hostport "$CIP" 80)" -s 64K --answer 256K -c 1 -n 1 -d 20 \
	>"$XM_K8S_DIR/drain.out" 2>&1
long=$XM_LAST_PID
socks() { xm_ctl -j sock list 2>/dev/null | xm_json 'len(j)' 2>/dev/null || echo 0; }
for _ in $(seq 100); do [ "$(socks)" -gt 0 ] && break; sleep 0.1; done
xm_assert "$(socks)" -gt 0 "redirected sockets of the long connection"
xm_kubectl -n xmesh-system delete daemonset xmesh-agent --wait=true --timeout=60s >&2
local_manifest xmesh-uninstall
xm_kubectl apply -f "$XM_K8S_DIR/xmesh-uninstall.yaml" >&2
upod=
for _ in $(seq 100); do
	upod=$(xm_kubectl -n xmesh-system get pods -l app.kubernetes.io/component=uninstall \
		-o 'jsonpath={.items[0].metadata.name}')
	[ -n "$upod" ] && break
	sleep 0.2
done
if ! xm_kubectl -n xmesh-system rollout status daemonset/xmesh-uninstall --timeout=240s >&2; then
	xm_kubectl -n xmesh-system describe pods >&2
	xm_kubectl -n xmesh-system logs "$upod" -c uninstall --previous >&2 || true
	xm_kubectl -n xmesh-system logs "$upod" -c uninstall >&2 || true
	echo "long connection: $(cat "$XM_K8S_DIR/drain.out"); redirected sockets: $(xm_ctl -j sock list)" >&2
	xm_fail "the uninstall DaemonSet did not complete"
fi
ulog=$(xm_kubectl -n xmesh-system logs "$upod" -c uninstall)
echo "$ulog" | sed 's/^/uninstall said: /' >&2
wait "$long" || xm_fail "the connection open across the uninstall failed: $(cat "$XM_K8S_DIR/drain.out")"
echo "$ulog" | grep -q 'draining: [0-9]* redirected sockets still open' ||
	xm_fail "the uninstall did not wait for the open redirected connection"
xm_log "ok: a redirected connection open across the uninstall drained byte-exact; the uninstall waited for it"
[ -z "$(ls -A "$XM_K8S_PIN" 2>/dev/null)" ] || xm_fail "pins left after the uninstall: $(ls "$XM_K8S_PIN")"
progs=$(bpftool cgroup show "$XM_K8S_CGROUP" 2>&1)
echo "$progs" | grep -q xm_ && xm_fail "xmesh programs still attached to $XM_K8S_CGROUP: $progs"
grep -q xmesh-cni "$XM_K8S_DIR"/cni/net.d/*.conflist &&
	xm_fail "xmesh-cni still chained: $(cat "$XM_K8S_DIR"/cni/net.d/*.conflist)"
[ -e "$XM_K8S_CNI_STATE_DIR" ] && xm_fail "xmesh-cni's records left in $XM_K8S_CNI_STATE_DIR"
xm_log "ok: uninstalled: no pins, no program on the cgroup, xmesh-cni unchained, its records gone"
ip=$(xm_k8s_pod_ips app=xm-echo | head -n 1)
xm_k8s_client /bin/xm-load traffic -t "$(xm_hostport "$ip" 8080)" -s 64K --answer 256K -c 2 -n 4 >&2 ||
	xm_fail "byte-exact traffic client -> pod $ip by plain routing failed"
xm_kubectl run xm-after --image xm.local/testsrv:1 --image-pull-policy Never --labels app=xm-after \
	--command -- /bin/xm-whoami serve 8081 >&2
xm_k8s_wait_ready app=xm-after 1
answer=$(xm_k8s_client /bin/xm-whoami ask "$(xm_k8s_pod_ips app=xm-after)" 8081)
xm_assert "$answer" = xm-after "a pod created after the uninstall, reached by plain routing, answers"
xm_log "ok: pods talk through plain routing after the uninstall; a new pod got its network without xmesh-cni"
xm_kubectl delete -f "$XM_K8S_DIR/xmesh-uninstall.yaml" -f "$XM_K8S_DIR/xmesh.yaml" --wait=true --timeout=60s \
	--ignore-not-found >&2
xm_k8s_down_checked
