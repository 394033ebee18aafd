#!/bin/bash
# SPDX-License-Identifier: MIT
# Overlay cache against the kernel's own VXLAN: only node 1 runs xmesh, so
# every frame node 1's fast path builds is decapsulated by node 2's kernel,
# which checks the outer IP checksum and lengths, the UDP port and the VNI,
# and every frame node 1's fast path decapsulates was built by node 2's
# kernel. TCP and UDP must arrive byte for byte, with no header error on
# node 2.
set -eu
. "$(dirname "$0")/../../scripts/testbed.sh"
xm_tb_cluster vxlan 2
xm_tb_pod 1 a 10
xm_tb_pod 2 b 10
xm_tb_agent 1
B=$(xm_tb_pod_ip 2 10)
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" traffic --listen "$B:7001" --size 8M --answer 8M
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7002"
sleep 0.3

snmp() { # NODE PROTO FIELD: a counter of node NODE's /proc/net/snmp
	ip netns exec "$XM_PREFIX-n$1" awk -v p="$2:" -v f="$3" \
		'$1==p && !h {for(i=2;i<=NF;i++) c[$i]=i; h=1; next} $1==p {print $c[f]}' /proc/net/snmp
}
hdr0=$(snmp 2 Ip InHdrErrors)
csum0=$(snmp 2 Udp InCsumErrors)
udperr0=$(snmp 2 Udp InErrors)
e0=$(xm_tb_stat 1 overlay_encap_bytes)

xm_tb_nx a "$XM_TOOLS/xm-load" traffic -t "$(xm_hostport "$B" 7001)" -s 8M --answer 8M -c 2 >/dev/null ||
	xm_fail "TCP, cache on node 1 only: not byte-exact"
xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n 300 -s 8-1422 -b 44000 >/dev/null ||
	xm_fail "UDP, cache on node 1 only: not byte-exact"
xm_log "ok: TCP 2 x 8 MiB each way and 300 datagrams byte-exact"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_bytes) - e0 ))" -gt $((15 * 1024 * 1024)) \
	"node 1's fast path built the frames node 2's kernel accepted"
xm_assert "$(xm_tb_stat 1 overlay_decap_bytes)" -gt $((7 * 1024 * 1024)) \
	"node 1's fast path took apart frames node 2's kernel built"
xm_assert "$(snmp 2 Ip InHdrErrors)" -eq "$hdr0" "no IP header (or checksum) error on node 2"
xm_assert "$(snmp 2 Udp InCsumErrors)" -eq "$csum0" "no UDP checksum error on node 2"
xm_assert "$(snmp 2 Udp InErrors)" -eq "$udperr0" "no UDP error on node 2"
