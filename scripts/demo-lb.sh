#!/bin/bash
# SPDX-License-Identifier: MIT
# xmesh LB demo: a service VIP with three backend pods in two "clusters"
# answering after 2, 5 and 20 ms (one fails 5% of its requests), a client
# pod sending HTTP requests to the VIP, and what the kernel measures per
# backend, live (`xmeshctl backend list`). Halfway, a weight changes through
# the agent. Runs until Ctrl-C (or DEMO_SECONDS=N); removes all it made.
set -eu
. "$(dirname "$0")/../tests/integration/lib.sh"
DEMO_SECONDS=${DEMO_SECONDS:-0}
b() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

xm_setup
b "node n1 with client pod c=10.77.0.2 and backend pods b1..b3=10.77.0.3-5"
xm_node n1
xm_pod n1 c 10.77.0.2/24
delays=(0 2 5 20) # ms
for i in 1 2 3; do
	xm_pod n1 b$i 10.77.0.$((i + 2))/24
	extra=()
	[ $i = 2 ] && extra=(--error-rate 0.05)
	xm_bg ip netns exec "$XM_PREFIX-b$i" "$XM_TOOLS/xm-serve" http --listen 10.77.0.$((i + 2)):8080 \
		--label b$i --delay 0.$(printf %03d ${delays[$i]}) "${extra[@]}"
done
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<EOC
{ "services": [ { "name": "web", "vip": "10.96.0.10", "port": 80,
    "backends": [
      { "address": "10.77.0.3", "port": 8080, "weight": 1, "cluster": "frankfurt" },
      { "address": "10.77.0.4", "port": 8080, "weight": 1, "cluster": "frankfurt" },
      { "address": "10.77.0.5", "port": 8080, "weight": 2, "cluster": "paris" } ] } ] }
EOC
b "xmesh-agent with config $CFG"
xm_agent_start --config "$CFG" 2>"$XM_RUN_DIR/agent.log"
xm_lb_wait 10.96.0.10:80 3
xm_ctl service show 10.96.0.10:80

b "client: 8 connections at a time to the VIP, 20 requests each, forever"
xm_bg bash -c "while :; do
	sh -c 'echo \$\$ > $XM_CGROUP/cgroup.procs; exec ip netns exec $XM_PREFIX-c \
		$XM_TOOLS/xm-load get -j -t 10.96.0.10:80 -n 800 -c 8 -k 20' >/dev/null || exit 1
done"
echo "(Ctrl-C to stop and clean up)"
start=$SECONDS
changed=0
while :; do
	sleep 2
	b "after $((SECONDS - start)) s: per backend, measured in the kernel (no proxy, no sidecar)"
	xm_ctl backend list 10.96.0.10:80 interval 1000
	if [ $changed = 0 ] && [ $((SECONDS - start)) -ge 6 ]; then
		b "the 20 ms backend gets weight 0.5: new connections only, live ones keep going"
		xm_ctl backend set 10.96.0.10:80 10.77.0.5:8080 weight 0.5
		xm_ctl service show 10.96.0.10:80
		changed=1
	fi
	[ "$DEMO_SECONDS" -gt 0 ] && [ $((SECONDS - start)) -ge "$DEMO_SECONDS" ] && break
done
b "stopping: everything the demo made is removed"
