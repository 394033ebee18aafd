#!/bin/bash
# SPDX-License-Identifier: MIT
# Overlay cache across agent restarts, and no leftovers:
#  - SIGKILL the agent: its pinned TCX links keep the fast path running;
#  - a new agent adopts the pinned links (program swapped in place, no second
#    attachment), drops those of a pod deleted while it was down, and the
#    fast path carries the flow again;
#  - once the testbed exits, nothing named after it remains: netns, pins,
#    cgroups, run files.
set -eu
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
ID=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')

XM_ID=$ID bash -c '
set -eu
. "$1/../../scripts/testbed.sh"
xm_tb_cluster vxlan 2
xm_tb_pod 1 a 10
xm_tb_pod 2 b 10
xm_tb_pod 1 c 11
xm_tb_agent 1
xm_tb_agent 2
B=$(xm_tb_pod_ip 2 10)
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7002"
sleep 0.2
send() { xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n "$1" -b 43000 >/dev/null; }
send 20 || xm_fail "first exchange"

kill -9 "${XM_TB_AGENT_PID[1]}"
wait "${XM_TB_AGENT_PID[1]}" 2>/dev/null || true
e0=$(xm_tb_stat 1 overlay_encap_pkts)
send 50 || xm_fail "traffic while the agent is down"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_pkts) - e0 ))" -ge 50 \
	"fast path runs while the agent is down (pinned links)"

# The program behind the pinned attachment (a TCX link, or a cls_bpf filter without TCX).
link_prog() { "$XM_BIN/xmeshctl" -j --pin-root "$XM_PIN/n1" status | python3 -c \
	"import json,sys; print([l[\"prog_id\"] for l in json.load(sys.stdin)[\"links\"] if l[\"name\"] == \"ovl_ul_ingress\"][0])"; }
links=$(ls "$XM_PIN/n1/links" | grep -c ovl_)
old=$(link_prog)
xm_tb_pod_del c # while no agent watches
xm_tb_agent 1
xm_assert "$(ls "$XM_PIN/n1/links" | grep -c ovl_)" -eq $((links - 2)) \
	"restarted agent adopted its links and dropped those of the pod deleted meanwhile"
new=$(link_prog)
xm_assert "$new" -ne "$old" "new program swapped into the pinned underlay link"
# Nothing else held the old program: it was attached only through that link.
bpftool prog show id "$old" >/dev/null 2>&1 && xm_fail "old program $old still loaded (attached twice?)"
xm_log "ok: old program $old gone"
send 20 || xm_fail "exchange after restart (flows relearned)"
e0=$(xm_tb_stat 1 overlay_encap_pkts)
send 50 || xm_fail "traffic after restart"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_pkts) - e0 ))" -ge 50 "fast path after restart"

# Another --overlay-max-flows than the pinned flow maps were made with: the
# agent keeps their size and says so (it exited before: libbpf refuses a pinned
# map of another max_entries), and the fast path keeps its flows.
tcp4_size() { bpftool -j map show pinned "$XM_PIN/n1/maps/xm_ovl_tcp4" |
	python3 -c "import json,sys; print(json.load(sys.stdin)[\"max_entries\"])"; }
s0=$(tcp4_size)
kill "${XM_TB_AGENT_PID[1]}"
wait "${XM_TB_AGENT_PID[1]}" 2>/dev/null || true
xm_tb_agent 1 --overlay-max-flows 1024
xm_assert "$(tcp4_size)" -eq "$s0" "pinned flow map kept its size"
xm_assert "$(grep -c "pinned map xm_ovl_flows keeps its $s0 entries (this agent asked for 1024)" \
	"$XM_RUN_DIR/agent-n1.log")" -eq 1 "the agent says the new size waits for an uninstall"
send 20 || xm_fail "exchange after the restart with another size"
e0=$(xm_tb_stat 1 overlay_encap_pkts)
send 50 || xm_fail "traffic after the restart with another size"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_pkts) - e0 ))" -ge 50 "fast path after that restart"
' _ "$HERE" || exit 1

left=$( { ip netns list | grep -c "^xm-$ID-" || true; } )
[ "$left" -eq 0 ] || { echo "FAIL: $left netns of xm-$ID left"; exit 1; }
[ ! -e "/sys/fs/bpf/xm-$ID" ] || { echo "FAIL: pin root /sys/fs/bpf/xm-$ID left"; exit 1; }
cg=$(awk '$3=="cgroup2"{print $2; exit}' /proc/mounts)
[ ! -e "$cg/xm-$ID" ] || { echo "FAIL: cgroup $cg/xm-$ID left"; exit 1; }
[ ! -e "/run/xmesh-test/xm-$ID" ] || { echo "FAIL: run dir left"; exit 1; }
echo "ok: no leftovers of xm-$ID"
