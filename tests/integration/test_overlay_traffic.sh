#!/bin/bash
# SPDX-License-Identifier: MIT
# Overlay cache, two nodes over a real VXLAN overlay: TCP and UDP between
# pods on different nodes arrive byte for byte, and the cache's counters
# show that the fast path (BPF encap/decap), not the kernel's tunnel,
# carried them. Large transfers (iperf3, GSO-sized TCP) and datagrams from
# 8 B to past the MTU (fragments take the slow path) get through.
set -eu
. "$(dirname "$0")/../../scripts/testbed.sh"
xm_tb_cluster vxlan 2
xm_tb_pod 1 a 10
xm_tb_pod 2 b 10
xm_tb_agent 1
xm_tb_agent 2
B=$(xm_tb_pod_ip 2 10)

xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" traffic --listen "$B:7001" --size 16M --answer 16M
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7002"
xm_bg xm_tb_nx b iperf3 -s -B "$B" -p 7003 >/dev/null
sleep 0.3

# TCP: 4 connections x 16 MiB each way.
enc0=$(xm_tb_stat 1 overlay_encap_bytes)
dec0=$(xm_tb_stat 1 overlay_decap_bytes)
encp0=$(xm_tb_stat 1 overlay_encap_pkts)
dec20=$(xm_tb_stat 2 overlay_decap_bytes)
decp20=$(xm_tb_stat 2 overlay_decap_pkts)
xm_tb_nx a "$XM_TOOLS/xm-load" traffic -t "$(xm_hostport "$B" 7001)" -s 16M --answer 16M -c 4 >/dev/null ||
	xm_fail "TCP across nodes: 4 x 16 MiB each way not delivered byte for byte"
xm_log "ok: TCP 4 x 16 MiB each way byte-exact"
enc=$(( $(xm_tb_stat 1 overlay_encap_bytes) - enc0 ))
dec=$(( $(xm_tb_stat 1 overlay_decap_bytes) - dec0 ))
# 64 MiB each way; the handshakes and FINs take the slow path, data the fast one.
xm_assert "$enc" -gt $((60 * 1024 * 1024)) "node 1 encapsulated the TCP data itself (bytes)"
xm_assert "$dec" -gt $((60 * 1024 * 1024)) "node 1 decapsulated the TCP data itself (bytes)"
xm_assert "$(xm_tb_stat 2 overlay_decap_bytes)" -gt $((60 * 1024 * 1024)) \
	"node 2 decapsulated the TCP data itself (bytes)"
# GSO super-packets (TSO on the pod veths: up to 64 KiB per skb) went through
# the encap whole, as UDP-tunnel GSO packets, and through the decap on the
# other node: the mean packet the fast paths carried is bigger than the pod
# MTU (1450), which no single segment can be.
encp=$(( $(xm_tb_stat 1 overlay_encap_pkts) - encp0 ))
xm_assert "$(( enc / (encp > 0 ? encp : 1) ))" -gt 1450 \
	"mean packet node 1 encapsulated ($enc B in $encp): GSO packets through the encap"
dec2=$(( $(xm_tb_stat 2 overlay_decap_bytes) - dec20 ))
decp2=$(( $(xm_tb_stat 2 overlay_decap_pkts) - decp20 ))
xm_assert "$(( dec2 / (decp2 > 0 ? decp2 : 1) ))" -gt 1450 \
	"mean packet node 2 decapsulated ($dec2 B in $decp2): GSO packets through the decap"

# UDP: one flow (fixed source port), sizes 8 B .. 1422 B (the largest
# unfragmented datagram at pod MTU 1450), then up to 4000 B (fragments).
u0=$(xm_tb_stat 1 overlay_encap_pkts)
xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n 400 -s 8-1422 -b 40001 >/dev/null ||
	xm_fail "UDP across nodes not echoed byte for byte"
u=$(( $(xm_tb_stat 1 overlay_encap_pkts) - u0 ))
# The first datagram and its echo teach the slow path's verdict both ways.
xm_assert "$u" -ge 390 "UDP datagrams encapsulated by the cache (of 400)"
xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n 60 -s 1400-4000 -b 40002 >/dev/null ||
	xm_fail "UDP datagrams past the MTU (IP fragments, slow path) not echoed"
xm_log "ok: UDP 8 B .. 4000 B byte-exact"
xm_tb_ctl 1 cache list | grep -q "udp.*10.244.1.10:40001.*$B:7002.*cached" ||
	xm_fail "cache list does not show the UDP flow as cached: $(xm_tb_ctl 1 cache list)"

# iperf3: large transfers, no corruption (TCP checksums) and no MTU black hole.
# A fixed amount (smaller with XM_SMALL), not a time: the assertion is about bytes, never speed.
mib=$(xm_size 128 16)
out=$(xm_tb_nx a iperf3 -c "$B" -p 7003 -n "${mib}M" -J) || xm_fail "iperf3 failed"
bytes=$(echo "$out" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bytes"]))')
# (the receiver's count is taken when the sender is done: what is still in
# its socket buffer, several MiB on a loaded machine, is not in it)
xm_assert "$bytes" -ge $((mib * 1024 * 1024 / 2)) "iperf3 moved $mib MiB through the cache"
out=$(xm_tb_nx a iperf3 -c "$B" -p 7003 -n "${mib}M" -R -J) || xm_fail "iperf3 -R failed"
xm_assert "$(xm_tb_stat 1 overlay_decap_pkts)" -gt 1000 "reverse iperf3 decapsulated by the cache"
xm_assert "$(xm_tb_stat 1 overlay_decap_rejected)" -eq 0 "no packet rejected by outer checks"
