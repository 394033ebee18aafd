#!/bin/bash
# SPDX-License-Identifier: MIT
# xmesh demo: a two-node cluster built from network namespaces on this
# machine, with a real VXLAN overlay, an xmesh-agent per node and live traffic.
#
#   node 1: pod "client" (10.244.1.10) and backend pod "web-1" (10.244.1.20)
#   node 2: backend pods "web-2" (10.244.2.20) and "web-3" (10.244.2.21)
#   service 10.96.0.10:80 -> web-1..3:8080, algorithm l3x (latency-aware)
#
# The client sends 200 HTTP requests/s to the VIP. What to watch:
#   - connect() to the VIP is rewritten in the kernel (lb_connects);
#   - client <-> web-1 is on one node: bytes go socket to socket (redirect_bytes);
#   - client <-> web-2/3 crosses nodes: cached VXLAN fast path (xmeshctl cache list);
#   - every backend is measured in the kernel (p50/p99, rps, in-flight);
#   - at t = 20 s web-3 turns 30x slower: its weight and share fall within
#     seconds; at t = 50 s it recovers and gets traffic back.
# Runs until Ctrl-C (or DEMO_SECONDS=N) and removes everything it made.
set -eu
XM_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$XM_TOP/tests/integration/lib.sh"
. "$XM_TOP/scripts/testbed.sh"
DEMO_SECONDS=${DEMO_SECONDS:-0}
SCN=$XM_TOP/scripts/demo-scenario.json
VIP=10.96.0.10
b() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Run a command in pod POD, as a process of node N (its agent's cgroup);
# replaces the calling (background) shell.
in_pod() {
	local n=$1 pod=$2; shift 2
	exec sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' \
		"$XM_CGROUP/n$n" "$XM_PREFIX-$pod" "$@"
}

xm_tb_cluster vxlan 2
b "built a 2-node cluster (netns $XM_PREFIX-*): underlay, VXLAN overlay, 4 pods"
xm_tb_pod 1 client 10
xm_tb_pod 1 web-1 20
xm_tb_pod 2 web-2 20
xm_tb_pod 2 web-3 21

cat >"$XM_RUN_DIR/config.json" <<EOC
{
  "weighting": {"tick_ms": 500},
  "services": [
    {"name": "web", "vip": "$VIP", "port": 80, "algorithm": "l3x",
     "backends": [
       {"address": "10.244.1.20", "port": 8080, "cluster": "node-1"},
       {"address": "10.244.2.20", "port": 8080, "cluster": "node-2"},
       {"address": "10.244.2.21", "port": 8080, "cluster": "node-2"}]}
  ]
}
EOC
b "starting xmesh-agent on each node (node 1 with the service config)"
xm_tb_agent 1 --config "$XM_RUN_DIR/config.json" 2>/dev/null
xm_tb_agent 2 2>/dev/null
xm_tb_ctl 1 status

b "registering node 1's pods (what xmesh-cni does when a pod is created)"
xm_tb_ctl 1 endpoint add 10.244.1.10 netns "/var/run/netns/$XM_PREFIX-client"
xm_tb_ctl 1 endpoint add 10.244.1.20 netns "/var/run/netns/$XM_PREFIX-web-1"
xm_tb_ctl 1 endpoint list
xm_tb_ctl 1 service list

b "backends answer per $SCN; the client sends 200 req/s to $VIP:80"
start=$(python3 -c 'import time; print(f"{time.time() + 1:.3f}")')
i=0
for pod in web-1 web-2 web-3; do
	n=1; [ "$pod" = web-1 ] || n=2
	ip=$(ip -n "$XM_PREFIX-$pod" -4 -br addr show eth0 | awk '{print $3}' | cut -d/ -f1)
	xm_bg in_pod "$n" "$pod" "$XM_TOOLS/xm-serve" scenario --listen "$ip:8080" --replica $i \
		--scenario "$SCN" --start "$start" --label "$pod"
	i=$((i + 1))
done
duration=$([ "$DEMO_SECONDS" -gt 0 ] && echo $((DEMO_SECONDS + 5)) || echo 3600)
xm_bg in_pod 1 client "$XM_TOOLS/xm-load" rr --target "$VIP:80" --rate 200 --duration "$duration" \
	--start "$start" --per-conn 50 --max-age 10 --proto http --timeout 3 \
	--csv "$XM_RUN_DIR/requests.csv" >"$XM_RUN_DIR/xm-load.out"

echo "(Ctrl-C to stop and clean up)"
t0=$SECONDS
prev_redir=0
while :; do
	sleep 3
	t=$((SECONDS - t0))
	b "t = ${t} s   (web-3 is slow from t = 20 s to t = 50 s)"
	xm_tb_ctl 1 backend list "$VIP:80"
	redir=$(xm_tb_stat 1 redirect_bytes)
	echo
	echo "node 1: connect()s balanced in the kernel: $(xm_tb_stat 1 lb_connects);" \
	     "bytes client<->web-1 handed socket to socket: $redir (+$((redir - prev_redir)))"
	prev_redir=$redir
	echo "node 1: overlay fast path: $(xm_tb_ctl 1 -j stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(", ".join(f"{k}={v}" for k, v in s.items() if k.startswith("overlay_") and v))')"
	echo "node 1: cross-node flows in the overlay cache (first 4):"
	xm_tb_ctl 1 cache list | head -n 5
	[ "$DEMO_SECONDS" -gt 0 ] && [ "$t" -ge "$DEMO_SECONDS" ] && break
done
b "stopping: everything the demo made is removed"
