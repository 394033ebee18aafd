#!/bin/bash
# SPDX-License-Identifier: MIT
# A multi-node "cluster" built from network namespaces on one machine, with a
# real VXLAN overlay as the slow path. Source it (after tests/integration/
# lib.sh) and call the xm_tb_* functions, or run it directly for a shell in a
# ready-made cluster:  scripts/testbed.sh [vxlan|route] [NODES]
# or for a short non-interactive showing of the cache:  scripts/testbed.sh demo
#
#   underlay   netns xm-<id>-ul, bridge "br-ul"; every node plugs its "eth0"
#              into it. Node N owns 172.31.0.N/24 (MTU 1500).
#   node N     netns xm-<id>-nN (lib.sh xm_node): bridge "br0" with the pod
#              gateway 10.244.N.1/24, ip_forward on, nftables table
#              "inet xm-<id>-pol" with a forward chain (the policy point).
#   pod        netns xm-<id>-<name>: eth0 10.244.N.I/24 and fd44:N::I/64 (MTU
#              1450), default routes via 10.244.N.1 and fd44:N::1; host veth on
#              the node's br0.
#   overlay    vxlan: flannel-style routed L3 over VXLAN. Each node has "vx0"
#              (VNI 42, UDP 4789, local 172.31.0.N, no learning, MTU 1450,
#              address 10.244.N.0/32); for every other node M:
#                route 10.244.M.0/24 via 10.244.M.0 dev vx0 onlink
#                neigh 10.244.M.0 lladdr <vx0 MAC of M> (permanent)
#                fdb   <vx0 MAC of M> dst 172.31.0.M
#              and the same for IPv6 (vx0 has fd44:ffff::N/128; fd44:M::/64 via
#              fd44:ffff::M, a permanent neighbour): IPv6 inside IPv4 VXLAN;
#              so a cross-node packet goes pod -> veth -> br0 -> routing and
#              netfilter -> vx0 (encap) -> eth0 -> underlay -> eth0 -> vx0
#              (decap) -> routing and netfilter -> br0 -> veth -> pod.
#              route: plain routing, no overlay (10.244.M.0/24 via
#              172.31.0.M dev eth0): the limit an overlay is measured against.
#
# Node agents: xm_tb_agent N [ARGS] runs xmesh-agent for node N (its own
# cgroup $XM_CGROUP/nN and pin root $XM_PIN/nN) inside the node netns
# (--netns), with the overlay cache on eth0. xm_tb_ctl N ... runs xmeshctl
# against that node's pin root.
#
# Everything is named xm-<id>-* and removed on exit by xm_tb_cleanup, which
# replaces lib.sh's trap (and calls its cleanup).

[ -n "${XM_TOP:-}" ] || . "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/integration/lib.sh"

XM_TB_NODES=()
XM_TB_VNI=${XM_TB_VNI:-42}
XM_TB_PORT=${XM_TB_PORT:-4789}
XM_TB_POD_MTU=${XM_TB_POD_MTU:-1450}

xm_tb_ns() { echo "$XM_PREFIX-$1"; }           # netns name of node or pod
xm_tb_nx() { ip netns exec "$XM_PREFIX-$1" "${@:2}"; } # run in a node/pod netns
xm_tb_underlay_ip() { echo "172.31.0.$1"; }
xm_tb_pod_ip() { echo "10.244.$1.$2"; }         # NODE INDEX -> pod address
xm_tb_pod_ip6() { echo "fd44:$1::$2"; }         # NODE INDEX -> pod IPv6 address

# xm_tb_setup: lib.sh xm_setup, the underlay, and the testbed's cleanup trap.
xm_tb_setup() {
	xm_setup
	trap xm_tb_cleanup EXIT
	xm_tb_underlay
}

# xm_tb_underlay: the underlay netns of the cluster named by XM_PREFIX. Several
# clusters can live side by side (benchmarks): run the xm_tb_* calls of each
# with its own XM_PREFIX=xm-<id>-<cluster> (`local` in a function will do).
xm_tb_underlay() {
	local ul=$XM_PREFIX-ul
	ip netns add "$ul"
	ip -n "$ul" link set lo up
	ip -n "$ul" link add br-ul type bridge
	ip -n "$ul" link set br-ul up
}

xm_tb_cleanup() {
	local rc=$? n
	set +e
	disown -a 2>/dev/null # no "Killed" notices for the jobs killed below
	for n in "${XM_TB_NODES[@]}"; do
		[ -n "${XM_TB_AGENT_PID[$n]:-}" ] && kill "${XM_TB_AGENT_PID[$n]}" 2>/dev/null
	done
	for n in "${XM_TB_NODES[@]}"; do
		local pid=${XM_TB_AGENT_PID[$n]:-}
		if [ -n "$pid" ]; then
			for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null
		fi
		if [ -d "$XM_PIN/n$n" ]; then
			"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP/n$n" \
				--pin-root "$XM_PIN/n$n" >/dev/null 2>&1
		fi
		rm -rf "$XM_PIN/n$n"
	done
	# Netns go first so that tc links die with their devices.
	for n in $(ip netns list | awk '{print $1}' | grep "^$XM_PREFIX-"); do
		ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$n"
	done
	for n in "${XM_TB_NODES[@]}"; do
		if [ -f "$XM_CGROUP/n$n/cgroup.procs" ]; then
			for p in $(cat "$XM_CGROUP/n$n/cgroup.procs"); do kill -9 "$p" 2>/dev/null; done
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				rmdir "$XM_CGROUP/n$n" 2>/dev/null && break
				sleep 0.1
			done
		fi
	done
	(exit $rc)
	xm_cleanup
}

# xm_tb_node N: node netns nN with br0, gateway address, underlay eth0, policy table.
xm_tb_node() {
	local n=$1 ns=$XM_PREFIX-n$1 ul=$XM_PREFIX-ul
	xm_node "n$n"
	ip link add eth0 netns "$ns" type veth peer name "n$n" netns "$ul"
	ip -n "$ul" link set "n$n" master br-ul up
	ip -n "$ns" addr add "$(xm_tb_underlay_ip "$n")/24" dev eth0
	ip -n "$ns" link set eth0 up
	# A fixed bridge MAC: by default a bridge takes its lowest port's, so deleting
	# a pod would change the gateway MAC under the other pods' ARP entries.
	ip -n "$ns" link set br0 address "02:00:0a:f4:$(printf %02x "$n"):01"
	ip -n "$ns" addr add "10.244.$n.1/24" dev br0
	ip -n "$ns" addr add "fd44:$n::1/64" dev br0 nodad
	ip -n "$ns" addr add "fd31::$n/64" dev eth0 nodad
	ip netns exec "$ns" nft -f - <<-EOF
		table inet $XM_PREFIX-pol {
			chain pod_fwd { type filter hook forward priority 0; policy accept; }
		}
	EOF
	[[ " ${XM_TB_NODES[*]} " == *" $n "* ]] || XM_TB_NODES+=("$n")
}

# xm_tb_overlay vxlan|route: connect every pair of nodes (call after all nodes).
xm_tb_overlay() {
	local mode=$1 n m ns mac
	declare -A vxmac
	XM_TB_MODE=$mode
	if [ "$mode" = vxlan ]; then
		for n in "${XM_TB_NODES[@]}"; do
			ns=$XM_PREFIX-n$n
			ip -n "$ns" link add vx0 type vxlan id "$XM_TB_VNI" dstport "$XM_TB_PORT" \
				local "$(xm_tb_underlay_ip "$n")" dev eth0 nolearning
			ip -n "$ns" link set vx0 mtu 1450
			ip -n "$ns" addr add "10.244.$n.0/32" dev vx0
			ip -n "$ns" addr add "fd44:ffff::$n/128" dev vx0 nodad
			ip -n "$ns" link set vx0 up
			vxmac[$n]=$(ip -n "$ns" -br link show vx0 | awk '{print $3}')
		done
	fi
	for n in "${XM_TB_NODES[@]}"; do
		ns=$XM_PREFIX-n$n
		for m in "${XM_TB_NODES[@]}"; do
			[ "$n" = "$m" ] && continue
			if [ "$mode" = vxlan ]; then
				mac=${vxmac[$m]}
				ip -n "$ns" neigh add "10.244.$m.0" lladdr "$mac" dev vx0 nud permanent
				bridge -n "$ns" fdb append "$mac" dev vx0 dst "$(xm_tb_underlay_ip "$m")"
				ip -n "$ns" route add "10.244.$m.0/24" via "10.244.$m.0" dev vx0 onlink
				ip -n "$ns" neigh add "fd44:ffff::$m" lladdr "$mac" dev vx0 nud permanent
				ip -n "$ns" -6 route add "fd44:$m::/64" via "fd44:ffff::$m" dev vx0 onlink
			else
				ip -n "$ns" route add "10.244.$m.0/24" via "$(xm_tb_underlay_ip "$m")" dev eth0
				ip -n "$ns" -6 route add "fd44:$m::/64" via "fd31::$m" dev eth0
			fi
		done
	done
}

# xm_tb_cluster MODE N: underlay, N nodes, overlay MODE.
xm_tb_cluster() {
	local i
	xm_tb_setup
	for i in $(seq "$2"); do xm_tb_node "$i"; done
	xm_tb_overlay "$1"
}

# xm_tb_pod NODE NAME INDEX: pod NAME on node NODE with address 10.244.NODE.INDEX.
# Prints nothing; the host veth name is in XM_TB_HOSTIF[NAME].
declare -A XM_TB_HOSTIF XM_TB_AGENT_PID
xm_tb_pod() {
	local n=$1 name=$2 idx=$3 ns=$XM_PREFIX-$2
	xm_pod "n$n" "$name" "$(xm_tb_pod_ip "$n" "$idx")/24" "$(xm_tb_pod_ip6 "$n" "$idx")/64"
	ip -n "$ns" link set eth0 mtu "$XM_TB_POD_MTU"
	ip -n "$ns" route add default via "10.244.$n.1"
	ip -n "$ns" -6 route add default via "fd44:$n::1"
	local host=xmh${XM_ID:0:4}$name
	XM_TB_HOSTIF[$name]=${host:0:15}
}

# xm_tb_pod_del NAME: delete a pod (its netns, hence its veth pair).
xm_tb_pod_del() {
	ip netns pids "$XM_PREFIX-$1" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$XM_PREFIX-$1"
}

# xm_tb_pod_move_route IP FROM TO: every node other than TO reaches IP (a pod
# address of node FROM's /24, now living on node TO) through a /32 route, as a
# CNI with IP mobility would program it.
xm_tb_pod_move_route() {
	local ip=$1 from=$2 to=$3 n ns
	for n in "${XM_TB_NODES[@]}"; do
		ns=$XM_PREFIX-n$n
		[ "$n" = "$to" ] && continue
		if [ "$XM_TB_MODE" = vxlan ]; then
			ip -n "$ns" route replace "$ip/32" via "10.244.$to.0" dev vx0 onlink
		else
			ip -n "$ns" route replace "$ip/32" via "$(xm_tb_underlay_ip "$to")" dev eth0
		fi
	done
}

# xm_tb_pod_at NODE NAME IP: a pod with an explicit address (e.g. a reused one).
xm_tb_pod_at() {
	local n=$1 name=$2 ip=$3 ns=$XM_PREFIX-$2
	xm_pod "n$n" "$name" "$ip/32"
	ip -n "$ns" link set eth0 mtu "$XM_TB_POD_MTU"
	ip -n "$ns" route add "10.244.$n.1" dev eth0
	ip -n "$ns" route add default via "10.244.$n.1"
	local host=xmh${XM_ID:0:4}$name
	XM_TB_HOSTIF[$name]=${host:0:15}
	ip -n "$XM_PREFIX-n$n" route add "$ip/32" dev br0
}

# xm_tb_policy N RULE...: add an nftables rule to node N's forward chain.
xm_tb_policy() {
	local n=$1; shift
	ip netns exec "$XM_PREFIX-n$n" nft add rule inet "$XM_PREFIX-pol" pod_fwd "$@"
}

xm_tb_policy_flush() {
	ip netns exec "$XM_PREFIX-n$1" nft flush chain inet "$XM_PREFIX-pol" pod_fwd
}

# xm_tb_agent N [AGENT ARGS]: xmesh-agent of node N, overlay cache on eth0
# (XM_TB_OVERLAY=0: without it).
xm_tb_agent() {
	local n=$1; shift
	local pin=$XM_PIN/n$n log=$XM_RUN_DIR/agent-n$n.log ready0 ovl=(--overlay-dev eth0)
	if [ "${XM_TB_OVERLAY:-1}" = 0 ]; then ovl=(); fi
	mkdir -p "$XM_PIN" "$XM_CGROUP/n$n"
	touch "$log"
	ready0=$(grep -c "datapath ready" "$log" || true)
	xm_bg "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP/n$n" --pin-root "$pin" \
		--netns "/var/run/netns/$XM_PREFIX-n$n" "${ovl[@]}" "$@" \
		2> >(tee -a "$log" >&2)
	XM_TB_AGENT_PID[$n]=$XM_LAST_PID
	for _ in $(seq "$(xm_size 100 600)"); do
		[ "$(grep -c "datapath ready" "$log" || true)" -gt "$ready0" ] && return 0
		kill -0 "$XM_LAST_PID" 2>/dev/null || xm_fail "agent of node $n exited during start"
		sleep 0.05
	done
	xm_fail "agent of node $n not ready after $(xm_size 5 30) s"
}

xm_tb_ctl() { local n=$1; shift; "$XM_BIN/xmeshctl" --pin-root "$XM_PIN/n$n" "$@"; }

# xm_tb_stat N NAME: one datapath counter of node N (read from the pinned map).
xm_tb_stat() {
	xm_tb_ctl "$1" -j stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -e
	if [ "${1:-}" = demo ]; then
		# Non-interactive: two nodes with agents, one TCP flow, what the cache shows.
		xm_tb_cluster vxlan 2
		xm_tb_pod 1 p1 10
		xm_tb_pod 2 p2 10
		xm_tb_agent 1 2>/dev/null
		xm_tb_agent 2 2>/dev/null
		xm_bg xm_tb_nx p2 iperf3 -s -1 -B 10.244.2.10 >/dev/null
		sleep 0.3
		echo "== iperf3 p1 (node 1) -> p2 (node 2), 2 s, over VXLAN with the overlay cache"
		xm_tb_nx p1 iperf3 -c 10.244.2.10 -t 2 >"$XM_RUN_DIR/iperf3.out" &
		sleep 1
		echo "== xmeshctl cache list (node 1), while the flow runs"
		xm_tb_ctl 1 cache list
		wait $!
		grep -E "sender|receiver" "$XM_RUN_DIR/iperf3.out"
		echo "== xmeshctl stats (node 1), overlay counters"
		xm_tb_ctl 1 stats | grep overlay_
		exit 0
	fi
	mode=${1:-vxlan}
	nodes=${2:-2}
	xm_tb_cluster "$mode" "$nodes"
	for i in $(seq "$nodes"); do xm_tb_pod "$i" "p$i" 10; done
	echo "testbed $XM_PREFIX ($mode, $nodes nodes): pods p1..p$nodes at 10.244.N.10"
	echo "  xm_tb_agent N starts node N's agent; xm_tb_ctl N cache list; exit to tear down"
	export -f $(declare -F | awk '{print $3}' | grep '^xm_')
	PS1="[$XM_PREFIX] \$ " bash --norc -i || true
fi
