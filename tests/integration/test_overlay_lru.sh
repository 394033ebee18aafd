#!/bin/bash
# SPDX-License-Identifier: MIT
# Overlay cache bounds: with a flow cache of 64 entries, 300 flows evict the
# least recently used ones (counted as evictions), the cache never holds
# more than its size, and every flow still works (a miss is the slow path).
set -eu
. "$(dirname "$0")/../../scripts/testbed.sh"
xm_tb_cluster vxlan 2
xm_tb_pod 1 a 10
xm_tb_pod 2 b 10
xm_tb_agent 1 --overlay-max-flows 64
xm_tb_agent 2
B=$(xm_tb_pod_ip 2 10)
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7002"
sleep 0.2

xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n 3 --flows 300 -b 46000 >/dev/null ||
	xm_fail "300 flows through a 64-entry cache: some datagram lost"
xm_log "ok: 300 flows x 3 datagrams echoed"
n=$(xm_tb_ctl 1 -j cache list | python3 -c "import json,sys; print(len(json.load(sys.stdin)['flows']))")
xm_assert "$n" -le 64 "flow cache holds at most its 64 entries"
ev=0
for _ in $(seq 30); do # the agent estimates evictions once a second
	ev=$(xm_tb_stat 1 overlay_evictions)
	[ "$ev" -gt 0 ] && break
	sleep 0.1
done
xm_assert "$ev" -ge 200 "evictions counted (300 flows, 64 slots)"
xm_assert "$(xm_tb_stat 1 overlay_encap_pkts)" -gt 0 "cached flows used the fast path"
