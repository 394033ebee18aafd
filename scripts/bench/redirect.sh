#!/bin/bash
# SPDX-License-Identifier: MIT
# bench redirect: two pods on one node, request/response latency (64 B and
# 16 KiB) and stream throughput over
#   plain  - TCP over veth + bridge (endpoints not registered: no redirect)
#   xmesh  - the same sockets, redirected socket-to-socket by xmesh
#   unix   - a Unix domain socket, the practical floor
# with client and server pinned to one core, then to two cores. Modes are
# interleaved in rotating order in every repetition; medians are reported.
# REPS=N (default 5) sets the repetitions.
set -eu
. "$(dirname "$0")/../../tests/integration/lib.sh"
REPS=${REPS:-5}
RR_N=${RR_N:-20000}
STREAM_S=${STREAM_S:-2}
xm_setup
xm_node n1
xm_pod n1 a 10.77.0.2/24
xm_pod n1 b 10.77.0.3/24
xm_agent_start
SERVE=$XM_TOOLS/xm-serve
LOAD=$XM_TOOLS/xm-load
SOCK=$XM_RUN_DIR/rr.sock
out=$XM_RUN_DIR/samples.txt
: >"$out"

# One server per CPU it is pinned to: core 0 (one-core runs), core 1 (two-core runs).
xm_pod_bg b taskset -c 0 "$SERVE" rr -l 10.77.0.3:7600
xm_pod_bg b taskset -c 1 "$SERVE" rr -l 10.77.0.3:7601
xm_pod_bg b taskset -c 0 "$SERVE" rr -l "unix:$SOCK.0"
xm_pod_bg b taskset -c 1 "$SERVE" rr -l "unix:$SOCK.1"
sleep 0.5

set_mode() {
	case $1 in
	xmesh)
		xm_ctl endpoint add 10.77.0.2 netns "$(xm_netns_path a)"
		xm_ctl endpoint add 10.77.0.3 netns "$(xm_netns_path b)" ;;
	*)
		xm_ctl endpoint del 10.77.0.2 2>/dev/null || true
		xm_ctl endpoint del 10.77.0.3 2>/dev/null || true ;;
	esac
}

client() { # mode server-cpu rr|stream args...
	local mode=$1 srv=$2 load=$3; shift 3
	if [ "$mode" = unix ]; then
		xm_pod_exec a taskset -c 0 "$LOAD" "$load" -t "unix:$SOCK.$srv" "$@"
	else
		xm_pod_exec a taskset -c 0 "$LOAD" "$load" -t 10.77.0.3:$((7600 + srv)) "$@"
	fi
}

modes=(plain xmesh unix)
for rep in $(seq "$REPS"); do
	for cores in 1 2; do
		srv=$((cores - 1))
		for i in 0 1 2; do
			mode=${modes[$(((i + rep) % 3))]}
			set_mode "$mode"
			r=$(client "$mode" "$srv" rr -c 1 -s 64 -n "$RR_N")
			echo "$mode $cores rr64_p50_us $(xm_kv p50_us "$r")" >>"$out"
			echo "$mode $cores rr64_p99_us $(xm_kv p99_us "$r")" >>"$out"
			r=$(client "$mode" "$srv" rr -c 1 -s 16384 -n $((RR_N / 4)))
			echo "$mode $cores rr16k_p50_us $(xm_kv p50_us "$r")" >>"$out"
			r=$(client "$mode" "$srv" stream -d "$STREAM_S")
			echo "$mode $cores stream_gbit_s $(xm_kv gbit_s "$r")" >>"$out"
		done
	done
	xm_log "repetition $rep/$REPS done"
done
redirected=$(xm_stat redirect_bytes)
[ "$redirected" -gt 0 ] || xm_fail "xmesh mode redirected nothing: the comparison is void"

python3 - "$out" "$REPS" <<'PY'
import sys, statistics as st
from collections import defaultdict
d = defaultdict(list)
for line in open(sys.argv[1]):
    mode, cores, metric, v = line.split()
    d[(metric, cores, mode)].append(float(v))
print(f"machine: {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}, "
      f"{sum(1 for l in open('/proc/cpuinfo') if l.startswith('processor'))} cpus, reps={sys.argv[2]}")
print(f"{'metric':<16} {'cores':>5} {'plain':>10} {'xmesh':>10} {'unix':>10} {'xmesh/plain':>12} {'xmesh/unix':>11}")
last = []
for metric in ["rr64_p50_us", "rr64_p99_us", "rr16k_p50_us", "stream_gbit_s"]:
    for cores in ["1", "2"]:
        m = {k: st.median(d[(metric, cores, k)]) for k in ["plain", "xmesh", "unix"]}
        print(f"{metric:<16} {cores:>5} {m['plain']:>10.2f} {m['xmesh']:>10.2f} {m['unix']:>10.2f} "
              f"{m['xmesh']/m['plain']:>12.3f} {m['xmesh']/m['unix']:>11.3f}")
        last.append(f"{metric}_{cores}core_xmesh_vs_plain={m['xmesh']/m['plain']:.3f}")
# every repetition's own xmesh/plain (the modes of one repetition ran back to back)
for cores in ["1", "2"]:
    rs = [x / p for x, p in zip(d[("stream_gbit_s", cores, "xmesh")], d[("stream_gbit_s", cores, "plain")])]
    print(f"stream xmesh/plain, {cores} core(s), per repetition: " + " ".join(f"{r:.2f}" for r in rs))
    last.append(f"stream_{cores}core_min={min(rs):.3f}")
print("bench redirect: " + " ".join(last))
PY
