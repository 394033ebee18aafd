#!/bin/bash
# SPDX-License-Identifier: MIT
# Kernel feature detection and the tc/sockmap fallbacks (docs/kernels.md),
# with the agent made to act as on an older kernel (XMESH_DISABLE_FEATURES;
# on a kernel that really lacks a feature the same paths run without it):
#  - status lists every feature, with the fallback in use for missing ones,
#    and the agent logs one line per fallback;
#  - no TCX (< 6.6): the overlay cache runs as clsact/cls_bpf filters, on
#    the underlay and on pod veths; a restart replaces the filter's program
#    in place (one filter, new program); uninstall removes the filters;
#  - no sockmap links (< 6.10): sk_msg attached to the map without a link;
#  - no sockmap iterator (refused by some builds): the redirect module loads
#    without it (bulk senders stay redirected: test_redirect_semantics.sh).
# test_kernel_features_lb.sh: the LB and module-refusal side.
set -eu
. "$(dirname "$0")/../../scripts/testbed.sh"
xm_tb_cluster vxlan 2
xm_tb_pod 1 a 10
xm_tb_pod 2 b 10
feat() { # NODE NAME: "present fallback" of one feature in status
	xm_tb_ctl "$1" -j status | python3 -c "import json,sys
f = [f for f in json.load(sys.stdin)[\"kernel_features\"] if f[\"name\"] == \"$2\"][0]
print(int(f[\"present\"]), \"fallback\" in f)"
}
filters() { # NODE DEV DIR: xmesh cls_bpf filters (direct-action) on DEV
	xm_tb_nx "n$1" tc filter show dev "$2" "$3" | grep -c "direct-action" || true
}

export XMESH_DISABLE_FEATURES=tcx,sockmap_link,set_retval,sockmap_iter,sock_recv_tp
# node 1 asks for the recvmsg counters, which a kernel without the tracepoint cannot give
echo '{"redirect_recv_counters": true}' >"$XM_RUN_DIR/n1.json"
xm_tb_agent 1 --config "$XM_RUN_DIR/n1.json"
xm_tb_agent 2
unset XMESH_DISABLE_FEATURES
xm_assert "$(feat 1 tcx)" = "0 True" "status: tcx missing, with its fallback"
xm_assert "$(feat 1 sockmap_link)" = "0 True" "status: sockmap_link missing, with its fallback"
xm_assert "$(feat 1 sockmap_iter)" = "0 True" "status: sockmap_iter missing, with its fallback"
xm_assert "$(feat 1 sock_recv_tp)" = "0 True" "status: sock_recv_tp missing, with its fallback"
grep -q "kernel: no sockmap_iter .*bulk senders between pods stay redirected" "$XM_RUN_DIR/agent-n1.log" ||
	xm_fail "the agent names the bulk senders' fallback"
xm_tb_ctl 1 -j status | python3 -c "import json,sys
names = [l['name'] for l in json.load(sys.stdin)['links']]
assert 'sockops' in names, names" || xm_fail "redirect module loaded without the sockmap iterator"
for _ in $(seq 50); do grep -q "config .* applied" "$XM_RUN_DIR/agent-n1.log" && break; sleep 0.1; done
grep -q "config .* applied" "$XM_RUN_DIR/agent-n1.log" || xm_fail "node 1's config was not applied"
[ ! -e "$XM_PIN/n1/links/redirect_recv" ] || xm_fail "no recvmsg counters without the tracepoint"
xm_assert "$(xm_tb_ctl 1 -j status | python3 -c "import json,sys; print(len(json.load(sys.stdin)[\"kernel_features\"]))")" \
	-eq 9 "status lists every kernel feature"
xm_tb_ctl 1 status | grep -q "tcx .*no .*cls_bpf" || xm_fail "plain status names the tc fallback"
grep -q "kernel: no tcx (Linux >= 6.6)" "$XM_RUN_DIR/agent-n1.log" || xm_fail "one log line per fallback"
xm_assert "$(filters 1 eth0 ingress)" -eq 1 "underlay ingress: one cls_bpf filter"
xm_assert "$(filters 1 eth0 egress)" -eq 1 "underlay egress: one cls_bpf filter"
pod_if=$(xm_tb_nx n1 ip -o link show type veth | awk -F": " "{sub(/@.*/, \"\", \$2); print \$2; exit}")
xm_assert "$(filters 1 "$pod_if" ingress)$(filters 1 "$pod_if" egress)" = "11" "pod veth: cls_bpf filters both ways"
[ ! -e "$XM_PIN/n1/links/sk_msg" ] || xm_fail "no sk_msg link without sockmap links"

# The cache works through the filters.
B=$(xm_tb_pod_ip 2 10)
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7002"
sleep 0.2
send() { xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n "$1" -b 43000 >/dev/null; }
send 20 || xm_fail "first exchange"
e0=$(xm_tb_stat 1 overlay_encap_pkts)
d0=$(xm_tb_stat 2 overlay_decap_pkts)
send 50 || xm_fail "traffic over the cls_bpf fast path"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_pkts) - e0 ))" -ge 50 "encap through cls_bpf"
xm_assert "$(( $(xm_tb_stat 2 overlay_decap_pkts) - d0 ))" -ge 50 "decap through cls_bpf"

# Restart: the filter is adopted, its program replaced in place.
prog() { xm_tb_ctl 1 -j status | python3 -c "import json,sys
print([l for l in json.load(sys.stdin)[\"links\"] if l[\"name\"] == \"ovl_ul_ingress\"][0][\"prog_id\"])"; }
old=$(prog)
kill "${XM_TB_AGENT_PID[1]}"; wait "${XM_TB_AGENT_PID[1]}" 2>/dev/null || true
XMESH_DISABLE_FEATURES=tcx,sockmap_link,set_retval xm_tb_agent 1
grep -q "adopted link ovl_ul_ingress" "$XM_RUN_DIR/agent-n1.log" || xm_fail "restart adopted the filter"
xm_assert "$(filters 1 eth0 ingress)" -eq 1 "still one filter after the restart"
xm_assert "$(prog)" -ne "$old" "the filter runs the new program"
bpftool prog show id "$old" >/dev/null 2>&1 && xm_fail "old program $old still loaded"
send 20 || xm_fail "exchange after restart"
e0=$(xm_tb_stat 1 overlay_encap_pkts)
send 50 || xm_fail "traffic after restart"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_pkts) - e0 ))" -ge 50 "fast path after restart"

# Uninstall removes the filters (a filter, unlike a link, outlives its pin).
kill "${XM_TB_AGENT_PID[1]}"; wait "${XM_TB_AGENT_PID[1]}" 2>/dev/null || true
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP/n1" --pin-root "$XM_PIN/n1" \
	--netns "/var/run/netns/$XM_PREFIX-n1" 2>/dev/null
xm_assert "$(filters 1 eth0 ingress)$(filters 1 eth0 egress)" = "00" "uninstall removed the cls_bpf filters"
xm_assert "$(filters 1 "$pod_if" ingress)$(filters 1 "$pod_if" egress)" = "00" "uninstall removed the pod veth filters"
