#!/bin/bash
# SPDX-License-Identifier: MIT
# xmesh and no mesh side by side, at the same time: on a shared machine the
# load from the rest of the machine changes from second to second, so modes
# measured one after the other (make bench-overhead) differ by more than the
# few per cent asked of them. Here every side runs at once in one world, each
# in its own cgroups, and shares whatever the machine does during the round.
# Two pairs of nodes:
#   nodes 1, 2  an xmesh cluster: no conntrack anywhere (no nat table, no ct
#               rule), the agents attached to their cgroups
#     xmesh     client and servers in the node agents' cgroups (every xmesh
#               program runs for their sockets); the client connects to a VIP
#               (connect-time LB, probes, socket redirection on one node)
#     direct    client and servers outside them (no BPF at all); the client
#               connects to the server pod's IP, another port of the same pods
#   nodes 3, 4  a kube-proxy cluster: the same nftables DNAT table on both
#               nodes (prerouting, one rule per VIP, as kube-proxy's nftables
#               mode puts on every node), so conntrack tracks every connection
#               the nodes forward, service or not
#     svc       client to a VIP, translated by the node's DNAT
#     ct        client to the server pod's IP: conntrack without DNAT (what
#               conntrack alone costs, next to svc and direct)
# Worlds (scripts/testbed.sh): NET=route (default: plain routing between the
# nodes) or NET=vxlan (the kernel's VXLAN between the nodes; the overlay cache
# stays off: its tc programs sit on interfaces and would serve both sides).
#   1node   server pod on the client's node
#   2node   server pod on the other node (reported as "vxlan" with NET=vxlan)
# CPU per request: the cgroups' own CPU time (cpu.stat usage: client + server,
# with the softirq work done in their context) over completed requests; the
# agents run outside them (their cost is per tick, not per request). p50: the
# client's own. Per round the ratio of two sides of that round (xmesh / direct,
# xmesh / svc, svc / direct, ct / direct); the report gives medians and
# quartiles over rounds, and the load average at every round. The order in
# which the sides start rotates with the round.
#
#   scripts/bench/side.sh          # ~3 min: ROUNDS=30 DUR=1, conn64@1k tcp64@5k
#   ROUNDS= DUR= TOPOS="1node 2node" WORKLOADS="conn64@1k tcp64@5k" OUT=dir
#   NET=route|vxlan  SIDES="xmesh direct svc ct" (xmesh and direct always)
#   CALIBRATE=1: no agents (the xmesh side is plain TCP to the pod IPs too):
#   the bench's own bias and noise between two sides that should be equal
#   PROBES=all|weighted: the agents' config "probes" (docs/config.md; the
#   services here are static: "weighted" leaves no per-packet probe attached)
#   DETACH="N:LINK ...": detach these links of node N's agent after its start
#   (e.g. "2:lb_egress 2:lb_ingress": no cgroup_skb probes on the server's
#   node): what removing those hook runs would buy, before building it
#   CLIENTLESS=S: both agents' config "probes_clientless_s" (unset: the
#   agent's default, 60): with S>0 the rounds start once the server-only
#   node 2 has detached its per-packet probes (docs/probes.md)
#   PROG_STATS=1: the kernel's BPF run-time statistics on during the rounds
#   (xmeshctl prog profile, held open), every xmesh program of both nodes
#   listed before and after each round: runs and ns per xmesh request. The
#   statistics' own cost (two clock reads per run) falls on the xmesh side
#   only: take the ratios from runs without it
set -eu -o pipefail
ROUNDS=${ROUNDS:-30} DUR=${DUR:-1} NET=${NET:-route}
TOPOS=${TOPOS:-"1node 2node"} WORKLOADS=${WORKLOADS:-"conn64@1k tcp64@5k"}
SIDES=${SIDES:-"xmesh direct svc ct"} CALIBRATE=${CALIBRATE:-0} DETACH=${DETACH:-} PROBES=${PROBES:-all}
PROG_STATS=${PROG_STATS:-0} CLIENTLESS=${CLIENTLESS:-}
case $CLIENTLESS in '' | [0-9] | [0-9][0-9] | [0-9][0-9][0-9]) ;; *) echo "side: CLIENTLESS=seconds (0..999), not '$CLIENTLESS'" >&2; exit 2 ;; esac
MESH_PORT=8080 PLAIN_PORT=8081 CT_PORT=8082 SVC_PORT=8083
case $NET in route | vxlan) ;; *) echo "side: NET=route or NET=vxlan, not '$NET'" >&2; exit 2 ;; esac
TOP=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$TOP/results/side-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
cd "$TOP"
. tests/integration/lib.sh
. scripts/testbed.sh
LOAD=$XM_TOOLS/xm-load

XM_TB_OVERLAY=0
xm_tb_cluster "$NET" 4
# IN_CG CGROUP NETNS CMD...: run CMD in that cgroup and netns. A command,
# not a function: started with &, a function runs in a bash subshell, which
# reports its child's SIGKILL at cleanup ("Killed") whatever disown says.
IN_CG=(sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"')
usage_us() { awk '$1 == "usage_usec" {print $2}' "$1/cpu.stat"; }
# the kube-proxy sides' cgroups: below the test's, removed before it
CG_CT=$XM_CGROUP/xm-side-ct CG_SVC=$XM_CGROUP/xm-side-svc
mkdir -p "$CG_CT" "$CG_SVC"
side_cleanup() {
	local rc=$? cg p
	set +e
	disown -a 2>/dev/null # no "Killed" notices for the jobs killed below
	for cg in "$CG_CT" "$CG_SVC"; do
		[ -f "$cg/cgroup.procs" ] || continue
		for p in $(cat "$cg/cgroup.procs"); do kill -9 "$p" 2>/dev/null; done
		for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
	done
	[ -z "${STATS_PID:-}" ] || { kill "$STATS_PID" 2>/dev/null; wait "$STATS_PID" 2>/dev/null; }
	(exit $rc)
	xm_tb_cleanup
}
trap side_cleanup EXIT
# CPU time (us) of every side: xmesh = both agents' cgroups, ct and svc their
# own, direct = the test cgroup's own processes (its usage includes its
# children's)
side_usage() {
	local all n1 n2 ct svc
	all=$(usage_us "$XM_CGROUP") n1=$(usage_us "$XM_CGROUP/n1") n2=$(usage_us "$XM_CGROUP/n2")
	ct=$(usage_us "$CG_CT") svc=$(usage_us "$CG_SVC")
	echo "xmesh=$((n1 + n2)) direct=$((all - n1 - n2 - ct - svc)) ct=$ct svc=$svc"
}

xm_tb_pod 1 c 10
xm_tb_pod 1 s1 11
xm_tb_pod 2 s2 10
xm_tb_pod 3 kc 10
xm_tb_pod 3 ks1 11
xm_tb_pod 4 ks2 10
# A client opens up to 1,000 connections a second to one server address, and
# each leaves a TIME_WAIT for 60 s: with the default port range and no reuse
# a run of rounds would run out of source ports (connect errors whose failed
# attempts still cost CPU). The same settings for every side's client.
for p in c kc; do
	xm_tb_nx "$p" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
done
C=$(xm_tb_pod_ip 1 10) S1=$(xm_tb_pod_ip 1 11) S2=$(xm_tb_pod_ip 2 10)
KS1=$(xm_tb_pod_ip 3 11) KS2=$(xm_tb_pod_ip 4 10)
VIP1=10.96.0.1 VIP2=10.96.0.2 KVIP1=10.96.1.1 KVIP2=10.96.1.2
# the agents' top-level settings, shared by both nodes' configs
AGENT_CONF="\"probes\": \"$PROBES\""
[ -z "$CLIENTLESS" ] || AGENT_CONF="$AGENT_CONF, \"probes_clientless_s\": $CLIENTLESS"
cat >"$XM_RUN_DIR/side.json" <<EOF
{ $AGENT_CONF, "services": [
  { "vip": "$VIP1", "port": $MESH_PORT, "backends": [ { "address": "$S1", "port": $MESH_PORT } ] },
  { "vip": "$VIP2", "port": $MESH_PORT, "backends": [ { "address": "$S2", "port": $MESH_PORT } ] } ] }
EOF
if [ "$CALIBRATE" = 1 ]; then
	mkdir -p "$XM_CGROUP/n1" "$XM_CGROUP/n2" # the agents' cgroups, nothing attached
	VIP1=$S1 VIP2=$S2
else
	xm_tb_agent 1 --config "$XM_RUN_DIR/side.json" 2>/dev/null
	echo "{ $AGENT_CONF }" >"$XM_RUN_DIR/side-n2.json"
	xm_tb_agent 2 --config "$XM_RUN_DIR/side-n2.json" 2>/dev/null
	# the pods' addresses, as the CNI plugin registers them on each node
	xm_tb_ctl 1 endpoint add "$C" netns "$(xm_netns_path c)" >/dev/null
	xm_tb_ctl 1 endpoint add "$S1" netns "$(xm_netns_path s1)" >/dev/null
	xm_tb_ctl 2 endpoint add "$S2" netns "$(xm_netns_path s2)" >/dev/null
	for d in $DETACH; do
		bpftool link detach pinned "$XM_PIN/n${d%%:*}/links/${d#*:}" ||
			xm_fail "DETACH: no link ${d#*:} on node ${d%%:*} (names: ls $XM_PIN/nN/links)"
	done
	if [ "${CLIENTLESS:-0}" -gt 0 ]; then
		xm_log "waiting for node 2 (no clients) to detach its probes (CLIENTLESS=$CLIENTLESS s)"
		for _ in $(seq $((CLIENTLESS * 10 + 100))); do
			[ -e "$XM_PIN/n2/links/lb_egress" ] || break
			sleep 0.1
		done
		[ ! -e "$XM_PIN/n2/links/lb_egress" ] ||
			xm_fail "CLIENTLESS=$CLIENTLESS: node 2 still has its lb_egress probe link"
	fi
fi
# kube-proxy's part on nodes 3 and 4. Bridged traffic between two pods of a
# node must pass the node's netfilter too, or a same-node reply would skip
# the reverse translation (kube-proxy needs br_netfilter for the same reason).
for n in 3 4; do
	xm_tb_nx "n$n" sysctl -qw net.bridge.bridge-nf-call-iptables=1 ||
		xm_fail "node $n: no net.bridge.bridge-nf-call-iptables (br_netfilter)"
	xm_tb_nx "n$n" nft -f - <<EOF
table ip $XM_PREFIX-kp {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		ip daddr $KVIP1 tcp dport $MESH_PORT dnat to $KS1:$SVC_PORT
		ip daddr $KVIP2 tcp dport $MESH_PORT dnat to $KS2:$SVC_PORT
	}
}
EOF
done
# nodes 1 and 2 must have no conntrack of their own (no nat table, no ct rule)
for n in 1 2; do
	if xm_tb_nx "n$n" nft list ruleset | grep -qE 'type nat|ct (state|status|mark)'; then
		xm_fail "node $n has conntrack rules: the xmesh and direct sides would pay for them"
	fi
done

# xmesh: the client in node 1's agent cgroup, each server in its node's;
# direct: client and servers in the test cgroup above them, where no program
# is attached; ct and svc: their own cgroups on nodes 3 and 4. The idle
# servers of the other sides cost nothing.
for s in 1 2; do
	xm_bg "${IN_CG[@]}" "$XM_CGROUP/n$s" "$XM_PREFIX-s$s" "$XM_TOOLS/xm-serve" rr -l $MESH_PORT
	xm_bg "${IN_CG[@]}" "$XM_CGROUP" "$XM_PREFIX-s$s" "$XM_TOOLS/xm-serve" rr -l $PLAIN_PORT
	xm_bg "${IN_CG[@]}" "$CG_CT" "$XM_PREFIX-ks$s" "$XM_TOOLS/xm-serve" rr -l $CT_PORT
	xm_bg "${IN_CG[@]}" "$CG_SVC" "$XM_PREFIX-ks$s" "$XM_TOOLS/xm-serve" rr -l $SVC_PORT
done
for a in "c $S1:$MESH_PORT" "c $S1:$PLAIN_PORT" "c $S2:$MESH_PORT" "c $S2:$PLAIN_PORT" \
	"kc $KS1:$CT_PORT" "kc $KS2:$CT_PORT" "kc $KVIP1:$MESH_PORT" "kc $KVIP2:$MESH_PORT"; do
	for _ in $(seq 50); do
		ip netns exec "$XM_PREFIX-${a%% *}" "$LOAD" rr -t "${a#* }" -n 1 >/dev/null 2>&1 &&
			continue 2
		sleep 0.1
	done
	xm_fail "no answer from ${a#* } in pod ${a%% *}"
done

{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(uname -r), $(nproc) CPUs"
	echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "command: NET=$NET ROUNDS=$ROUNDS DUR=$DUR TOPOS=\"$TOPOS\" WORKLOADS=\"$WORKLOADS\" SIDES=\"$SIDES\" CALIBRATE=$CALIBRATE DETACH=\"$DETACH\" PROBES=$PROBES CLIENTLESS=$CLIENTLESS scripts/bench/side.sh"
	echo "conntrack: nodes 1-2 (xmesh, direct) none; nodes 3-4 (svc, ct) an nftables nat table (DNAT per VIP)"
} >"$OUT/env.txt"
RAW=$OUT/raw.tsv
printf 'round\ttopo\tworkload\tside\tload1\tcompleted\terrors\tp50_us\tp99_us\tcpu_us\tcmd\n' >"$RAW"
kv() { sed -n "s/\(^\|.* \)$1=\([^ ]*\).*/\2/p" <<<"$2"; }

# side_cmd SIDE TOPO: the cgroup, pod and target of a side's client
side_cmd() {
	local one=0
	[ "$2" = 1node ] && one=1
	case $1 in
	xmesh) if [ $one = 1 ]; then echo "$XM_CGROUP/n1 c $VIP1:$MESH_PORT"; else echo "$XM_CGROUP/n1 c $VIP2:$MESH_PORT"; fi ;;
	direct) if [ $one = 1 ]; then echo "$XM_CGROUP c $S1:$PLAIN_PORT"; else echo "$XM_CGROUP c $S2:$PLAIN_PORT"; fi ;;
	svc) if [ $one = 1 ]; then echo "$CG_SVC kc $KVIP1:$MESH_PORT"; else echo "$CG_SVC kc $KVIP2:$MESH_PORT"; fi ;;
	ct) if [ $one = 1 ]; then echo "$CG_CT kc $KS1:$CT_PORT"; else echo "$CG_CT kc $KS2:$CT_PORT"; fi ;;
	*) xm_fail "unknown side '$1' (SIDES: xmesh direct svc ct)" ;;
	esac
}

# one round: every side at once, same workload, same rate
round() { # round topo workload
	local r=$1 topo=$2 wl=$3 rate flags="" side cg pod target load1 before after i out name
	local -a order pids=()
	rate=${wl#*@}
	rate=${rate%k}000
	[ "${wl%@*}" = conn64 ] && flags=--new
	name=$topo
	[ "$NET" = vxlan ] && [ "$topo" = 2node ] && name=vxlan
	# which side starts first rotates with the round
	read -ra order <<<"$SIDES"
	for ((i = 0; i < r % ${#order[@]}; i++)); do order=("${order[@]:1}" "${order[0]}"); done
	load1=$(cut -d' ' -f1 /proc/loadavg)
	prog_snap "$r" "$name" "$wl" before
	before=$(side_usage)
	for side in "${order[@]}"; do
		read -r cg pod target <<<"$(side_cmd "$side" "$topo")"
		"${IN_CG[@]}" "$cg" "$XM_PREFIX-$pod" "$LOAD" rr -t "$target" -P tcp -s 64 -r "$rate" \
			-d "$DUR" -c 16 $flags >"$XM_RUN_DIR/$side.out" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || true; done
	after=$(side_usage)
	prog_snap "$r" "$name" "$wl" after
	for side in "${order[@]}"; do
		out=$(tail -1 "$XM_RUN_DIR/$side.out")
		read -r cg pod target <<<"$(side_cmd "$side" "$topo")"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$name" "$wl" "$side" \
			"$load1" "$(kv ok "$out")" "$(kv errors "$out")" "$(kv p50_us "$out")" \
			"$(kv p99_us "$out")" $(($(kv "$side" "$after") - $(kv "$side" "$before"))) \
			"in pod $pod: xm-load rr -t $target -P tcp -s 64 -r $rate -d $DUR -c 16 $flags" \
			>>"$RAW"
	done
}

# PROG_STATS=1: statistics on (one holder for the whole run), per-round lists
STATS_PID=
if [ "$PROG_STATS" = 1 ] && [ "$CALIBRATE" != 1 ]; then
	"$XM_BIN/xmeshctl" --pin-root "$XM_PIN/n1" prog profile >/dev/null &
	STATS_PID=$!
	sleep 0.5 # the statistics are on once it holds its fd
	printf 'round\ttopo\tworkload\tnode\twhen\tprogs\n' >"$OUT/progstats.tsv"
fi
prog_snap() { # round topo workload before|after
	local n
	[ -n "$STATS_PID" ] || return 0
	for n in 1 2; do
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$n" "$4" \
			"$(xm_tb_ctl "$n" -j prog list | tr -d '\n')" >>"$OUT/progstats.tsv"
	done
}

T0=$(date +%s)
for r in $(seq "$ROUNDS"); do
	for topo in $TOPOS; do
		for wl in $WORKLOADS; do
			round "$r" "$topo" "$wl"
		done
	done
	xm_log "round $r/$ROUNDS done ($(($(date +%s) - T0)) s, load $(cut -d' ' -f1-3 /proc/loadavg))"
done
# evidence that the xmesh side was balanced and, on one node, redirected
for n in 1 2; do
	[ "$CALIBRATE" = 1 ] && { echo "node $n: no agent (CALIBRATE=1)"; continue; }
	echo "node $n: $(xm_tb_ctl "$n" -j stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(f"{k}={s[k]}" for k in ("lb_connects", "sock_inserted", "redirect_msgs")))')"
done >"$OUT/counters.txt"
# evidence that the svc and ct sides went through conntrack
for n in 3 4; do
	echo "node $n: conntrack entries at the end $(xm_tb_nx "n$n" cat /proc/sys/net/netfilter/nf_conntrack_count)"
done >>"$OUT/counters.txt"
python3 scripts/bench/side_report.py "$OUT"
