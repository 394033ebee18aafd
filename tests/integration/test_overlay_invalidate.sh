#!/bin/bash
# SPDX-License-Identifier: MIT
# Overlay cache invalidation, three nodes:
#  - the underlay neighbour of a cached remote node changes (the node's NIC
#    got a new MAC): the cached outer headers are dropped and relearned, and
#    the flow keeps working on the fast path with the new MAC;
#  - a route toward a remote node changes: flows whose copy of the outer
#    header goes to that node are dropped (relearned on the slow path);
#  - a pod is deleted and its IP reused by a new pod on another node: the
#    same 5-tuple then reaches the new pod, directly, never the stale node.
set -eu
. "$(dirname "$0")/../../scripts/testbed.sh"
xm_tb_cluster vxlan 3
xm_tb_pod 1 a 10
xm_tb_pod 2 b 10
for n in 1 2 3; do xm_tb_agent "$n"; done
A=$(xm_tb_pod_ip 1 10)
B=$(xm_tb_pod_ip 2 10)
xm_bg xm_tb_nx b "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7002"
sleep 0.2

remote_field() { # NODE POD FIELD -> field of the learned outer header toward POD
	xm_tb_ctl "$1" -j cache list | python3 -c "
import json,sys
r=[x for x in json.load(sys.stdin)['remote'] if x['pod']=='$2']
print(r[0]['$3'] if r else 'none')"
}
send() { xm_tb_nx a "$XM_TOOLS/xm-load" udp-send -t "$(xm_hostport "$B" 7002)" -n "$1" -b 42000 >/dev/null; }

send 20 || xm_fail "first exchange a -> b"
xm_assert "$(remote_field 1 "$B" node)" = 172.31.0.2 "node 1 learned: b is behind node 2"

# --- underlay neighbour change ---------------------------------------------
newmac=02:00:00:00:02:02
ip -n "$XM_PREFIX-n2" link set eth0 address $newmac
ip -n "$XM_PREFIX-n1" neigh replace 172.31.0.2 lladdr $newmac dev eth0 nud reachable
e0=$(xm_tb_stat 1 overlay_encap_pkts)
# Frames to the old MAC would reach node 2 as "other host" and die there.
send 100 || xm_fail "flow broken after the underlay neighbour changed (stale outer MAC?)"
xm_assert "$(remote_field 1 "$B" node_mac)" = $newmac "outer header relearned with the new MAC"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_pkts) - e0 ))" -ge 95 \
	"flow back on the fast path after the change"

# --- route toward the remote node changes ------------------------------------
flows_to_b() {
	xm_tb_ctl 1 -j cache list | python3 -c "
import json,sys
print(sum(1 for f in json.load(sys.stdin)['flows'] if f['remote']=='$B'))"
}
xm_assert "$(flows_to_b)" -ge 1 "a flow toward b is cached"
# Same path, but a route event for the node: b's pod prefix is not in it.
ip -n "$XM_PREFIX-n1" route add 172.31.0.2/32 dev eth0
for _ in $(seq 20); do [ "$(flows_to_b)" -eq 0 ] && break; sleep 0.05; done
xm_assert "$(flows_to_b)" -eq 0 "flows sent through node 2 dropped on its route change"
ip -n "$XM_PREFIX-n1" route del 172.31.0.2/32 dev eth0
send 20 || xm_fail "flow broken after the route change"

# --- pod deleted, IP reused on node 3 --------------------------------------
xm_tb_pod_del b
xm_tb_pod_at 3 c "$B"
xm_tb_pod_move_route "$B" 2 3
xm_bg xm_tb_nx c "$XM_TOOLS/xm-serve" udp-echo --listen "$B:7002"
sleep 0.3
rx0=$(ip netns exec "$XM_PREFIX-n2" cat /sys/class/net/eth0/statistics/rx_packets)
send 100 || xm_fail "same 5-tuple after the IP moved: new pod on node 3 not reached"
rx=$(( $(ip netns exec "$XM_PREFIX-n2" cat /sys/class/net/eth0/statistics/rx_packets) - rx0 ))
xm_assert "$rx" -lt 10 "old node 2 saw (almost) nothing of the 100 datagrams"
xm_assert "$(remote_field 1 "$B" node)" = 172.31.0.3 "node 1 now sends b's address to node 3"
e0=$(xm_tb_stat 1 overlay_encap_pkts)
send 50 || xm_fail "moved pod, second run"
xm_assert "$(( $(xm_tb_stat 1 overlay_encap_pkts) - e0 ))" -ge 50 "moved pod reached on the fast path"

# --- endpoint delete forgets the address (CNI DEL / xmeshctl endpoint del) ---
# A TCP connection held open: TCP between IPv4 pods is cached in its own map
# (12-byte key); cache list and the invalidation must see it as any other flow.
xm_bg xm_tb_nx c python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$B', 7004)); s.listen(1); c, _ = s.accept()
while True:
    d = c.recv(65536)
    if not d: break
    c.sendall(d)"
sleep 0.3
xm_bg xm_tb_nx a python3 -c "
import socket, time
c = socket.create_connection(('$B', 7004), timeout=5)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(40):
    c.sendall(b'x' * 100); n = 0
    while n < 100: n += len(c.recv(100 - n))
time.sleep(60)"
tcp_cached=
for _ in $(seq 50); do
	xm_tb_ctl 1 cache list | grep -q "tcp.*$A:[0-9]*.*$B:7004.*cached" && { tcp_cached=1; break; }
	sleep 0.1
done
[ -n "$tcp_cached" ] || xm_fail "cache list does not show the TCP flow as cached: $(xm_tb_ctl 1 cache list)"
sleep 0.3 # the exchange is over: only data (never a pure ACK) would cache the flow again
xm_tb_ctl 1 endpoint add "$A" netns "$(xm_netns_path a)" >/dev/null
xm_tb_ctl 1 endpoint del "$A" >/dev/null
left=$(xm_tb_ctl 1 -j cache list | python3 -c "
import json,sys
d=json.load(sys.stdin)
print(sum(1 for f in d['flows'] if f['local']=='$A')+sum(1 for l in d['local'] if l['pod']=='$A'))")
xm_assert "$left" -eq 0 "endpoint del removed every cache entry of that address"
