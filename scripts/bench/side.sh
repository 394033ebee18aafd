#!/bin/bash
# SPDX-License-Identifier: MIT
# xmesh and no mesh side by side, at the same time: on a shared machine the
# load from the rest of the machine changes from second to second, so modes
# measured one after the other (make bench-overhead) differ by more than the
# few per cent asked of them. Here both run at once in one world, each in its
# own cgroups, and share whatever the machine does during the round:
#   xmesh   client cgroup and server cgroup below the node agents' cgroups
#           (every xmesh program runs for their sockets); the client connects
#           to a VIP (connect-time LB, probes, socket redirection on one node)
#   direct  client and server cgroups outside them (no BPF at all); the client
#           connects to the server pod's IP, another port of the same pod
# Worlds (scripts/testbed.sh, no overlay cache: its tc programs sit on
# interfaces and would serve both sides), nodes joined by NET: route (plain
# routing, the default) or vxlan (the kernel's VXLAN device; topology "vxlan"):
#   1node   server pod on the client's node
#   2node   server pod on the other node
# CPU per request: the cgroups' own CPU time (cpu.stat usage: client + server,
# with the softirq work done in their context) over completed requests; the
# agents run outside them (their cost is per tick, not per request). p50: the
# client's own. Per round the xmesh / direct ratio; the report gives medians
# and quartiles over rounds, and the load average at every round.
#
#   scripts/bench/side.sh          # ~2 min: ROUNDS=12 DUR=2, conn64@1k tcp64@5k
#   ROUNDS= DUR= TOPOS="1node 2node" WORKLOADS="conn64@1k tcp64@5k" OUT=dir
set -eu -o pipefail
ROUNDS=${ROUNDS:-12} DUR=${DUR:-2}
TOPOS=${TOPOS:-"1node 2node"} WORKLOADS=${WORKLOADS:-"conn64@1k tcp64@5k"} NET=${NET:-route} CALIBRATE=${CALIBRATE:-0}
case $NET in route | vxlan) ;; *) echo "side: NET=$NET: give route or vxlan" >&2; exit 2 ;; esac
MESH_PORT=8080 PLAIN_PORT=8081
TOP=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$TOP/results/side-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
cd "$TOP"
. tests/integration/lib.sh
. scripts/testbed.sh
LOAD=$XM_TOOLS/xm-load

XM_TB_OVERLAY=0
xm_tb_cluster "$NET" 2
# in_cg CGROUP NETNS CMD...: run CMD in that cgroup and netns
in_cg() { sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' "$@"; }
usage_us() { awk '$1 == "usage_usec" {print $2}' "$1/cpu.stat"; }
# CPU time (us) of the two sides: xmesh = both agents' cgroups, direct = the
# test cgroup's own processes (its usage includes its children's)
side_usage() {
	local all n1 n2
	all=$(usage_us "$XM_CGROUP") n1=$(usage_us "$XM_CGROUP/n1") n2=$(usage_us "$XM_CGROUP/n2")
	echo $((n1 + n2)) $((all - n1 - n2))
}

xm_tb_pod 1 c 10
xm_tb_pod 1 s1 11
xm_tb_pod 2 s2 10
C=$(xm_tb_pod_ip 1 10) S1=$(xm_tb_pod_ip 1 11) S2=$(xm_tb_pod_ip 2 10)
VIP1=10.96.0.1 VIP2=10.96.0.2
cat >"$XM_RUN_DIR/side.json" <<EOF
{ "services": [
  { "vip": "$VIP1", "port": $MESH_PORT, "backends": [ { "address": "$S1", "port": $MESH_PORT } ] },
  { "vip": "$VIP2", "port": $MESH_PORT, "backends": [ { "address": "$S2", "port": $MESH_PORT } ] } ] }
EOF
if [ "$CALIBRATE" = 1 ]; then
	mkdir -p "$XM_CGROUP/n1" "$XM_CGROUP/n2" # the agents' cgroups, nothing attached
	VIP1=$S1 VIP2=$S2
else
	xm_tb_agent 1 --config "$XM_RUN_DIR/side.json" 2>/dev/null
	xm_tb_agent 2 2>/dev/null
	# the pods' addresses, as the CNI plugin registers them on each node
	xm_tb_ctl 1 endpoint add "$C" netns "$(xm_netns_path c)" >/dev/null
	xm_tb_ctl 1 endpoint add "$S1" netns "$(xm_netns_path s1)" >/dev/null
	xm_tb_ctl 2 endpoint add "$S2" netns "$(xm_netns_path s2)" >/dev/null
fi

# xmesh: the client in node 1's agent cgroup, each server in its node's; direct:
# client and servers in the test cgroup above them, where no program is attached.
# The idle servers of the other world cost nothing.
for s in 1 2; do
	xm_bg in_cg "$XM_CGROUP/n$s" "$XM_PREFIX-s$s" "$XM_TOOLS/xm-serve" rr -l $MESH_PORT
	xm_bg in_cg "$XM_CGROUP" "$XM_PREFIX-s$s" "$XM_TOOLS/xm-serve" rr -l $PLAIN_PORT
done
for a in "$S1:$MESH_PORT" "$S1:$PLAIN_PORT" "$S2:$MESH_PORT" "$S2:$PLAIN_PORT"; do
	for _ in $(seq 50); do
		ip netns exec "$XM_PREFIX-c" "$LOAD" rr -t "$a" -n 1 >/dev/null 2>&1 && break
		sleep 0.1
	done
done

{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(uname -r), $(nproc) CPUs"
	echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "command: ROUNDS=$ROUNDS DUR=$DUR TOPOS=\"$TOPOS\" WORKLOADS=\"$WORKLOADS\" NET=$NET CALIBRATE=$CALIBRATE scripts/bench/side.sh"
} >"$OUT/env.txt"
RAW=$OUT/raw.tsv
printf 'round\ttopo\tworkload\tside\tload1\tcompleted\terrors\tp50_us\tp99_us\tcpu_us\tcmd\n' >"$RAW"
kv() { sed -n "s/\(^\|.* \)$1=\([^ ]*\).*/\2/p" <<<"$2"; }

# one round: both sides at once, same workload, same rate
round() { # round topo workload
	local r=$1 topo=$2 wl=$3 rate flags="" srv vip m0 p0 m1 p1 mcmd pcmd mout pout load1
	rate=${wl#*@}
	rate=${rate%k}000
	[ "${wl%@*}" = conn64 ] && flags=--new
	if [ "$topo" = 1node ]; then srv=$S1 vip=$VIP1; else srv=$S2 vip=$VIP2; fi
	mcmd="$LOAD rr -t $vip:$MESH_PORT -P tcp -s 64 -r $rate -d $DUR -c 16 $flags"
	pcmd="$LOAD rr -t $srv:$PLAIN_PORT -P tcp -s 64 -r $rate -d $DUR -c 16 $flags"
	load1=$(cut -d' ' -f1 /proc/loadavg)
	# across nodes, the topology is named after how the nodes are joined
	[ "$NET" = vxlan ] && [ "$topo" = 2node ] && topo=vxlan
	read -r m0 p0 < <(side_usage)
	# which side starts first alternates with the round
	local first=$XM_CGROUP/n1 firstcmd=$mcmd fout=mesh second=$XM_CGROUP secondcmd=$pcmd sout=plain
	if [ $((r % 2)) = 0 ]; then
		first=$XM_CGROUP firstcmd=$pcmd fout=plain second=$XM_CGROUP/n1 secondcmd=$mcmd sout=mesh
	fi
	in_cg "$first" "$XM_PREFIX-c" $firstcmd >"$XM_RUN_DIR/$fout.out" 2>&1 &
	local p1=$!
	in_cg "$second" "$XM_PREFIX-c" $secondcmd >"$XM_RUN_DIR/$sout.out" 2>&1 &
	local p2=$!
	wait $p1 || true
	wait $p2 || true
	read -r m1 p1 < <(side_usage)
	mout=$(tail -1 "$XM_RUN_DIR/mesh.out") pout=$(tail -1 "$XM_RUN_DIR/plain.out")
	printf '%s\t%s\t%s\txmesh\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$topo" "$wl" "$load1" \
		"$(kv ok "$mout")" "$(kv errors "$mout")" "$(kv p50_us "$mout")" \
		"$(kv p99_us "$mout")" $((m1 - m0)) "$mcmd" >>"$RAW"
	printf '%s\t%s\t%s\tdirect\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$topo" "$wl" "$load1" \
		"$(kv ok "$pout")" "$(kv errors "$pout")" "$(kv p50_us "$pout")" \
		"$(kv p99_us "$pout")" $((p1 - p0)) "$pcmd" >>"$RAW"
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
[ "$CALIBRATE" = 1 ] && echo "calibration: no agents, both sides plain TCP" >"$OUT/counters.txt"
for n in 1 2; do
	[ "$CALIBRATE" = 1 ] && break
	echo "node $n: $(xm_tb_ctl "$n" -j stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(f"{k}={s[k]}" for k in ("lb_connects", "sock_inserted", "redirect_msgs")))')"
done >>"$OUT/counters.txt"
python3 scripts/bench/side_report.py "$OUT"
