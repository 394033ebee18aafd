#!/bin/bash
# SPDX-License-Identifier: MIT
# bench overlay: pod to pod across two netns "nodes" (scripts/testbed.sh),
# three clusters side by side, identical but for the path between nodes:
#   route  - plain routing over the underlay, no overlay (the limit)
#   vxlan  - the kernel's VXLAN overlay (bridge, routing, netfilter, vx0)
#   xmesh  - the same VXLAN overlay with the xmesh overlay cache
# Measured: 4-byte TCP round trip (xm-load rr, p50; client and server on one
# core, then on two cores), request rate (xm-load rr closed loop, 8
# connections, 4-byte requests, two cores) and TCP throughput (iperf3, one stream, two cores).
# Modes are interleaved per metric in rotating order in every repetition;
# medians.
# REPS=N (default 5), SECS=N (seconds per rate/iperf3 sample, default 2),
# RR_N=N (round trips per latency sample, default 20000).
# BASE_BIN=DIR: a fourth cluster, "base", the xmesh mode with the agent of
# another build (DIR = its build/bin, e.g. main's): A/B of two versions of
# the cache, interleaved with the others; METRICS="rtt1_1core_p50_us ..."
# limits the metrics (default all four).
set -eu
. "$(dirname "$0")/../testbed.sh"
REPS=${REPS:-5}
RR_N=${RR_N:-20000}
SECS=${SECS:-2}
BASE_BIN=${BASE_BIN:-}
METRICS=${METRICS:-rtt1_1core_p50_us rtt1_2core_p50_us rate_2core_rps iperf3_gbit_s}
[ -z "$BASE_BIN" ] || [ -x "$BASE_BIN/xmesh-agent" ] ||
	{ echo "BASE_BIN=$BASE_BIN: no xmesh-agent there (give another build's build/bin)" >&2; exit 2; }
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "SECS must be a whole number of seconds (iperf3 -t)" >&2; exit 2; }
SERVE=$XM_TOOLS/xm-serve
LOAD=$XM_TOOLS/xm-load

xm_setup
BASE_AGENTS=()
# The base cluster's agents have their own pin root and cgroups under ours.
base_cleanup() {
	local p n
	set +e
	for p in "${BASE_AGENTS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${BASE_AGENTS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
	done
	for n in 1 2; do
		[ -d "$XM_PIN/base/n$n" ] && "$BASE_BIN/xmesh-agent" uninstall \
			--cgroup "$XM_CGROUP/base/n$n" --pin-root "$XM_PIN/base/n$n" >/dev/null 2>&1
		rm -rf "$XM_PIN/base/n$n"
		rmdir "$XM_CGROUP/base/n$n" 2>/dev/null
	done
	rmdir "$XM_CGROUP/base" "$XM_PIN/base" 2>/dev/null
	return 0
}
trap 'rc=$?; base_cleanup; (exit $rc); xm_tb_cleanup' EXIT
BASE=$XM_PREFIX
out=$XM_RUN_DIR/samples.txt
: >"$out"
B=$(xm_tb_pod_ip 2 10)

# build_cluster MODE: cluster xm-<id>-<m> with pods <m>a (node 1), <m>b (node 2).
build_cluster() {
	local m=${1:0:1}
	local XM_PREFIX=$BASE-$m
	xm_tb_underlay
	xm_tb_node 1
	xm_tb_node 2
	xm_tb_overlay "$([ "$1" = route ] && echo route || echo vxlan)"
	xm_tb_pod 1 "${m}a" 10
	xm_tb_pod 2 "${m}b" 10
	if [ "$1" = xmesh ]; then
		xm_tb_agent 1 2>/dev/null && xm_tb_agent 2 2>/dev/null
	elif [ "$1" = base ]; then
		local XM_BIN=$BASE_BIN XM_PIN=$XM_PIN/base XM_CGROUP=$XM_CGROUP/base
		local keep1=${XM_TB_AGENT_PID[1]:-} keep2=${XM_TB_AGENT_PID[2]:-}
		xm_tb_agent 1 2>/dev/null && xm_tb_agent 2 2>/dev/null
		BASE_AGENTS=("${XM_TB_AGENT_PID[1]}" "${XM_TB_AGENT_PID[2]}")
		XM_TB_AGENT_PID[1]=$keep1
		XM_TB_AGENT_PID[2]=$keep2
	fi
	xm_bg xm_tb_nx "${m}b" taskset -c 0 "$SERVE" rr -l "$B:7600"
	xm_bg xm_tb_nx "${m}b" taskset -c 1 "$SERVE" rr -l "$B:7601"
	xm_bg xm_tb_nx "${m}b" taskset -c 1 iperf3 -s -B "$B" -p 7602 >/dev/null
	return 0
}
modes=(route vxlan xmesh)
[ -n "$BASE_BIN" ] && modes+=(base)
for mode in "${modes[@]}"; do build_cluster $mode; done
sleep 0.5

in_pod() { local m=${1:0:1}; shift; local XM_PREFIX=$BASE-$m; xm_tb_nx "${m}a" "$@"; }

# Warm up every path once (ARP, learning, caches).
for mode in "${modes[@]}"; do
	in_pod $mode "$LOAD" rr -t "$B:7600" -c 1 -s 4 -n 2000 >/dev/null
done

# measure MODE METRIC: one sample
measure() {
	local mode=$1 r
	case $2 in
	rtt1_1core_p50_us)
		r=$(in_pod "$mode" taskset -c 0 "$LOAD" rr -t "$B:7600" -c 1 -s 4 -n "$RR_N")
		echo "$mode $2 $(xm_kv p50_us "$r")" ;;
	rtt1_2core_p50_us)
		r=$(in_pod "$mode" taskset -c 0 "$LOAD" rr -t "$B:7601" -c 1 -s 4 -n "$RR_N")
		echo "$mode $2 $(xm_kv p50_us "$r")" ;;
	rate_2core_rps)
		r=$(in_pod "$mode" taskset -c 0 "$LOAD" rr -t "$B:7601" -c 8 -s 4 -d "$SECS")
		echo "$mode $2 $(xm_kv rps "$r")" ;;
	iperf3_gbit_s)
		r=$(in_pod "$mode" taskset -c 0 iperf3 -c "$B" -p 7602 -t "$SECS" -J)
		echo "$mode $2 $(python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)' <<<"$r")" ;;
	esac
}

# Interleaved per metric, so that the three modes of one sample are seconds
# apart and a burst of load from elsewhere hits them alike; rotating order.
nm=${#modes[@]}
for rep in $(seq "$REPS"); do
	for metric in $METRICS; do
		for i in $(seq 0 $((nm - 1))); do
			measure "${modes[$(((i + rep) % nm))]}" $metric >>"$out"
		done
	done
	xm_log "repetition $rep/$REPS done"
done

hits=$(XM_PREFIX=$BASE-x xm_tb_stat 1 overlay_encap_pkts)
[ "$hits" -gt 0 ] || xm_fail "xmesh mode encapsulated nothing: the comparison is void"
misses=$(XM_PREFIX=$BASE-x xm_tb_stat 1 overlay_encap_misses)

python3 - "$out" "$REPS" "$hits" "$misses" <<'PY'
import sys, statistics as st
from collections import defaultdict
d = defaultdict(list)
for line in open(sys.argv[1]):
    mode, metric, v = line.split()
    d[(metric, mode)].append(float(v))
cpu = open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()
ncpu = sum(1 for l in open('/proc/cpuinfo') if l.startswith('processor'))
print(f"machine: {cpu}, {ncpu} cpus, reps={sys.argv[2]}; xmesh fast path: "
      f"{sys.argv[3]} packets encapsulated, {sys.argv[4]} slow-path misses (node 1)")
base = any(k[1] == "base" for k in d)
cols = ["route", "vxlan", "xmesh"] + (["base"] if base else [])
ratios = [("vxlan", "route"), ("xmesh", "route"), ("xmesh", "vxlan")] + \
         ([("base", "route"), ("xmesh", "base")] if base else [])
print(f"{'metric':<20}" + "".join(f"{c:>9}" for c in cols) +
      "".join(f"{a + '/' + b:>13}" for a, b in ratios))
last = []
for metric in ["rtt1_1core_p50_us", "rtt1_2core_p50_us", "rate_2core_rps", "iperf3_gbit_s"]:
    if (metric, "route") not in d:
        continue
    m = {k: st.median(d[(metric, k)]) for k in cols}
    print(f"{metric:<20}" + "".join(f"{m[c]:>9.2f}" for c in cols) +
          "".join(f"{m[a]/m[b]:>13.3f}" for a, b in ratios))
    last.append(f"{metric}_xmesh_vs_route={m['xmesh']/m['route']:.3f}")
    last.append(f"{metric}_vxlan_vs_route={m['vxlan']/m['route']:.3f}")
    if base:
        last.append(f"{metric}_base_vs_route={m['base']/m['route']:.3f}")
print("bench overlay: " + " ".join(last))
PY
