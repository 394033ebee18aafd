#!/bin/bash
# SPDX-License-Identifier: MIT
# Overlay cache when the agents start before the overlay exists (the CNI
# creates the VXLAN device later) and before the pods: the cache stays off,
# then turns on when the device appears, and attaches to the pods' veths as
# they are created.
set -eu
. "$(dirname "$0")/../../scripts/testbed.sh"
xm_tb_setup
xm_tb_node 1
xm_tb_node 2
xm_tb_agent 1
xm_tb_agent 2
xm_assert "$(xm_tb_ctl 1 -j cache list | python3 -c 'import json,sys; print(json.load(sys.stdin)["enabled"])')" \
	= False "cache off while there is no VXLAN device"
xm_tb_overlay vxlan
xm_tb_pod 1 a 10
xm_tb_pod 2 b 10
B=$(xm_tb_pod_ip 2 10)
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7002"
sleep 0.3
xm_assert "$(xm_tb_ctl 1 -j cache list | python3 -c 'import json,sys; print(json.load(sys.stdin)["enabled"])')" \
	= True "cache on once the VXLAN device appeared"
xm_assert "$(ls "$XM_PIN/n1/links" | grep -c '^ovl_pod_')" -eq 2 "pod veth created later was attached"
xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n 100 -b 48000 >/dev/null || xm_fail "traffic"
xm_assert "$(xm_tb_stat 1 overlay_encap_pkts)" -ge 95 "fast path carried the flow"
