#!/bin/bash
# SPDX-License-Identifier: MIT
# xmesh demo: a node built from network namespaces, pods on it, the agent
# running, real traffic, and what xmesh did with it. Runs until Ctrl-C
# (or DEMO_SECONDS=N) and removes everything it made on exit.
set -eu
. "$(dirname "$0")/../tests/integration/lib.sh"
DEMO_SECONDS=${DEMO_SECONDS:-0}
b() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

xm_setup
b "building node n1 (netns $XM_PREFIX-n1, bridge br0) with pods a=10.77.0.2 and b=10.77.0.3"
xm_node n1
xm_pod n1 a 10.77.0.2/24
xm_pod n1 b 10.77.0.3/24

b "starting xmesh-agent on cgroup $XM_CGROUP, pin root $XM_PIN"
xm_agent_start --log-level info 2>"$XM_RUN_DIR/agent.log"
xm_ctl status

b "registering the pods' addresses (what the CNI plugin does on pod creation)"
xm_ctl endpoint add 10.77.0.2 netns "$(xm_netns_path a)"
xm_ctl endpoint add 10.77.0.3 netns "$(xm_netns_path b)"
xm_ctl endpoint list

b "pod b serves; pod a sends 1 MiB requests and gets 1 MiB answers, 4 connections at a time"
xm_bg xm_pod_exec b "$XM_TOOLS/xm-traffic" server 10.77.0.3 8080 -q 1M -r 1M >/dev/null
sleep 0.3
xm_bg bash -c "while :; do
	ip netns exec $XM_PREFIX-a true
	sh -c 'echo \$\$ > $XM_CGROUP/cgroup.procs; exec ip netns exec $XM_PREFIX-a \
		$XM_TOOLS/xm-traffic client 10.77.0.3 8080 -q 1M -r 1M -c 4 -d 1500' >/dev/null || exit 1
done"

echo "(Ctrl-C to stop and clean up)"
start=$SECONDS
prev=0
while :; do
	sleep 2
	now=$(xm_stat redirect_bytes)
	b "after $((SECONDS - start)) s"
	echo "bytes handed socket-to-socket (skipping TCP/IP, veth, bridge): $now" \
	     "(+$(( (now - prev) / 2 / 1024 / 1024 )) MiB/s)"
	prev=$now
	xm_ctl stats | grep -E 'redirect|sock_'
	echo "-- sockets in the redirect map right now:"
	xm_ctl sock list | head -n 6
	[ "$DEMO_SECONDS" -gt 0 ] && [ $((SECONDS - start)) -ge "$DEMO_SECONDS" ] && break
done
b "stopping: everything the demo made is removed"
