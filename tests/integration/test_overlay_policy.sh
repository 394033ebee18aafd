#!/bin/bash
# SPDX-License-Identifier: MIT
# Overlay cache and policy: a flow the node's nftables refuses is never
# cached, and a drop rule added while a flow is cached blocks it within 1 s
# (the agent watches the ruleset over netlink and retires every flow).
# Removing the rule lets the flow back onto the fast path.
set -eu
. "$(dirname "$0")/../../scripts/testbed.sh"
xm_tb_cluster vxlan 2
xm_tb_pod 1 a 10
xm_tb_pod 2 b 10
xm_tb_agent 1
xm_tb_agent 2
A=$(xm_tb_pod_ip 1 10)
B=$(xm_tb_pod_ip 2 10)
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7002"
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7003"
sleep 0.2

flow_state() { # NODE LOCAL_PORT -> state of the UDP flow from pod a's port, or "none"
	xm_tb_ctl "$1" -j cache list | python3 -c "
import json,sys
fl=[f for f in json.load(sys.stdin)['flows'] if f['proto']=='udp' and f['local_port']==$2]
print(fl[0]['state'] if fl else 'none')"
}

# 1. A flow whose replies node 1 drops is never cached: its requests left
#    encapsulated by the kernel, its replies never reached the pod.
xm_tb_policy 1 ip saddr "$B" udp sport 7003 drop
sleep 0.3
out=$(xm_tb_nx a "$XM_TOOLS/xm-load" udp-probe -t "$(xm_hostport "$B" 7003)" -b 41003 -d 0.5 --interval 0.005)
xm_assert "$(xm_kv ok "$out")" -eq 0 "refused flow: no reply reaches the pod"
xm_assert "$(flow_state 1 41003)" = seen-out "refused flow is not cached (seen one way only)"

# 2. An allowed flow gets cached and carried by the fast path.
xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n 50 -b 41002 >/dev/null || xm_fail "allowed flow"
xm_assert "$(flow_state 1 41002)" = cached "allowed flow cached on node 1"
e0=$(xm_tb_stat 1 overlay_encap_pkts)
xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n 50 -b 41002 >/dev/null || xm_fail "allowed flow"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_pkts) - e0 ))" -ge 50 "cached flow on the fast path"

# 3. Drop rule for that flow while it is cached: blocked within 1 s.
xm_tb_policy 1 ip daddr "$B" udp dport 7002 drop
sleep 1
e0=$(xm_tb_stat 1 overlay_encap_pkts)
out=$(xm_tb_nx a "$XM_TOOLS/xm-load" udp-probe -t "$(xm_hostport "$B" 7002)" -b 41002 -d 1 --interval 0.005)
xm_assert "$(xm_kv ok "$out")" -eq 0 "1 s after the drop rule, no datagram gets through"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_pkts) - e0 ))" -eq 0 "fast path no longer carries it"
xm_assert "$(flow_state 1 41002)" != cached "flow no longer cached"

# 4. Rule gone: the slow path lets it through again and it is re-cached.
xm_tb_policy_flush 1
sleep 0.3
xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n 50 -b 41002 >/dev/null ||
	xm_fail "flow after the rule was removed"
xm_assert "$(flow_state 1 41002)" = cached "flow cached again once allowed"

# 5. xmeshctl cache flush retires every flow at once.
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7004"
sleep 0.1
xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7004)" -n 20 -b 41004 >/dev/null || xm_fail "flow 7004"
xm_tb_ctl 1 cache flush >/dev/null
xm_assert "$(flow_state 1 41004)" = none "cache flush removes every flow"
