#!/bin/bash
# SPDX-License-Identifier: MIT
# bench kit: do the numbers of the benchmarks move with the test-tool kit?
# The tools the kit replaced (xm-rr, xm-rate, rrgen, xm-lbtool, built from
# git revision OLD_REV) and their replacements (xm-load, xm-serve) measure
# the same path, interleaved in rotating order in every repetition, each
# against its own server: two pods on one node, plain TCP over veth + bridge
# (no agent: the tools are what is compared).
#   rr64      64 B request/response, one connection, closed loop (bench-lb,
#             bench-redirect): xm-rr rr 64 N    vs  xm-load rr -c 1 -s 64 -n N
#   rate      8 connections, closed loop, smallest request (bench-overlay):
#             xm-rate -c 8 (1 B)                vs  xm-load rr -c 8 -s 4 (4 B)
#   open      open loop 2000/s over 16 connections (bench-overhead):
#             rrgen client                      vs  xm-load rr -r 2000 -c 16
#   conn      new connections per second (bench-lb, bench-cost):
#             xm-lbtool rate / server           vs  xm-load rr -P label --new / xm-serve label
# Medians and new/old ratios; last line "bench kit: ...".
# REPS=N (default 5), RR_N (default 20000), SECS (default 2), OLD_REV (the
# commit before the kit, default ff6c577).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/integration/lib.sh"
REPS=${REPS:-5}
RR_N=${RR_N:-20000}
SECS=${SECS:-2}
OLD_REV=${OLD_REV:-ff6c577}

xm_setup
OLD=$XM_RUN_DIR/old
mkdir -p "$OLD"
for t in xm-rr xm-rate rrgen xm-lbtool sockaddr.h; do
	f=$t; [ "$t" = sockaddr.h ] || f=$t.c
	git -C "$ROOT" show "$OLD_REV:tests/tools/$f" >"$OLD/$f" ||
		xm_fail "tests/tools/$f not in $OLD_REV: set OLD_REV to a commit before the kit"
done
for t in xm-rr xm-rate rrgen xm-lbtool; do
	gcc -O2 -Wall -o "$OLD/$t" "$OLD/$t.c" -lpthread -lm || xm_fail "building the old $t"
done
xm_log "old tools of $OLD_REV built in $OLD"

xm_node n1
xm_pod n1 a 10.77.0.2/24
xm_pod n1 b 10.77.0.3/24
# client and server of the rr runs share CPU 0 (as in bench-lb)
xm_pod_bg b taskset -c 0 "$OLD/xm-rr" server tcp 10.77.0.3 7600
xm_pod_bg b taskset -c 0 "$XM_TOOLS/xm-serve" rr -l 10.77.0.3:7601
xm_pod_bg b "$OLD/rrgen" server -l 10.77.0.3:7602
xm_pod_bg b "$XM_TOOLS/xm-serve" rr -l 10.77.0.3:7603
xm_pod_bg b "$OLD/xm-lbtool" server 10.77.0.3 8080 -l b
xm_pod_bg b "$XM_TOOLS/xm-serve" label --listen 10.77.0.3:8081 --label b
for p in 7600 7601 7602 7603 8080 8081; do xm_wait_listen b "$p"; done

json() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$2"; }
out=$XM_RUN_DIR/samples.txt
: >"$out"
# sample TOOL METRIC: one measurement of METRIC with the old or the new tool
sample() {
	local r
	case $1/$2 in
	old/rr64)
		r=$(xm_pod_exec a taskset -c 0 "$OLD/xm-rr" client tcp 10.77.0.3 7600 rr 64 "$RR_N")
		echo "old rr64_p50_us $(json p50_us "$r")"
		echo "old rr64_p99_us $(json p99_us "$r")" ;;
	new/rr64)
		r=$(xm_pod_exec a taskset -c 0 "$XM_TOOLS/xm-load" rr -t 10.77.0.3:7601 -c 1 -s 64 -n "$RR_N")
		echo "new rr64_p50_us $(xm_kv p50_us "$r")"
		echo "new rr64_p99_us $(xm_kv p99_us "$r")" ;;
	old/rate)
		r=$(xm_pod_exec a "$OLD/xm-rate" 10.77.0.3 7600 -c 8 -t "$SECS")
		echo "old rate_rps $(json rps "$r")" ;;
	new/rate)
		r=$(xm_pod_exec a "$XM_TOOLS/xm-load" rr -t 10.77.0.3:7601 -c 8 -s 4 -d "$SECS")
		echo "new rate_rps $(xm_kv rps "$r")" ;;
	old/open | new/open)
		if [ "$1" = new ]; then
			r=$(xm_pod_exec a "$XM_TOOLS/xm-load" rr -t 10.77.0.3:7603 -P tcp -s 64 -r 2000 -d "$SECS" -c 16)
		else
			r=$(xm_pod_exec a "$OLD/rrgen" client -a 10.77.0.3:7602 -P tcp -s 64 -r 2000 -d "$SECS" -c 16)
		fi
		echo "$1 open_p50_us $(xm_kv p50_us "$r")"
		echo "$1 open_p99_us $(xm_kv p99_us "$r")" ;;
	old/conn)
		r=$(xm_pod_exec a "$OLD/xm-lbtool" rate 10.77.0.3 8080 -t "$SECS" -c 2)
		echo "old conn_s $(json per_second "$r")" ;;
	new/conn)
		r=$(xm_pod_exec a "$XM_TOOLS/xm-load" rr -t 10.77.0.3:8081 -P label --new -d "$SECS" -c 2)
		echo "new conn_s $(xm_kv rps "$r")" ;;
	esac
}

tools=(old new)
for rep in $(seq "$REPS"); do
	for metric in rr64 rate open conn; do
		for i in 0 1; do
			sample "${tools[$(((i + rep) % 2))]}" "$metric" >>"$out"
		done
	done
	xm_log "repetition $rep/$REPS done"
done

python3 - "$out" "$REPS" <<'EOP'
import statistics, sys
d = {}
for line in open(sys.argv[1]):
    t, k, v = line.split()
    d.setdefault((t, k), []).append(float(v))
keys = ["rr64_p50_us", "rr64_p99_us", "rate_rps", "open_p50_us", "open_p99_us", "conn_s"]
med = lambda t, k: statistics.median(d[(t, k)])
print(f"{'metric':<14}{'old tools':>12}{'kit':>12}{'kit/old':>10}   (medians of {sys.argv[2]})")
for k in keys:
    print(f"{k:<14}{med('old', k):>12.1f}{med('new', k):>12.1f}{med('new', k) / med('old', k):>10.3f}")
print("bench kit: " + " ".join(f"{k}_ratio={med('new', k) / med('old', k):.3f}" for k in keys))
EOP
