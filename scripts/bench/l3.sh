#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-l3: latency-aware weighting, every algorithm on every scenario.
#
# World (netns, tests/integration/lib.sh): one node with a bridge; a client
# pod in the test cgroup (its connect()s to the VIP are balanced by the LB);
# 9 backend pods = 3 "clusters" x 3 replicas, each running xm-serve scenario
# (delay and failures per scenarios/<name>.json; cross-cluster distance is in
# the replicas' delay distributions: this kernel has no sch_netem). The
# client runs xm-load rr (open loop, HTTP/1.1 so the LB's 5xx probe sees
# failures) in these modes:
#   new       a new connection per request
#   pool50    keep-alive pool, a connection carries at most 50 requests
#   poolidle  keep-alive pool, a connection is kept until idle for
#             XM_BENCH_POOL_IDLE seconds
#   pool      keep-alive pool, at most XM_BENCH_POOL_REQS requests or
#             XM_BENCH_POOL_AGE seconds per connection
#   urllib3   Python urllib3 with its own pool (closed loop, 8 threads,
#             tests/tools/urllib3_pool.py), a real client library
# Pool clients retry a request once on a pooled connection found closed (as
# urllib3, curl and Go do); the report counts those retries ("retried": the
# errors a client that does not retry would have seen).
# Algorithms: any of the service algorithms, and "l3x+rb" = l3x with
# connection-level rebalancing on (its defaults; docs/config.md); suffixes
# "~PARAM=NUMBER[,PARAM=NUMBER]" set numeric params (e.g. "l3x~age_bound=0"),
# "~rb:FIELD=NUMBER[,...]" fields of "rebalance" ("l3x+rb~rb:fast_factor=0",
# "l3x+rb~rb:tail_self=0,urgent_share=0.5"), both may follow one another
# ("l3x+rb~conn_cap=2~rb:min_conns=1"), so that variants run interleaved in
# one run.
#
# Each (scenario, mode) runs every algorithm RUNS times, the order rotated
# each run (A B C D, B C D A, ...). The agent is restarted for every run, so
# no filter state leaks between runs. Results: results/l3-<time>/ (CSV and
# agent log per run, summary.csv/md, PNG plots), table on stdout, last line
# "bench l3: ...". Columns "at read" / "at poll": connections of far slower
# backends retired at an idle moment found by a read event / by the
# urgent_ms poll (medians; the agent's closing line). Every request that got
# no answer is explained under the table ("timeouts"): by the replica's own
# log (<cell>.b<i>.requests: it drew a delay beyond the client's timeout, or
# never saw the request) and the agent's log of retirements (client port,
# backend, which pass): see l3_report.py.
#
# Knobs (environment):
#   XM_BENCH_ALGOS      "round-robin l3 c3 l3x l3x+rb"
#   XM_BENCH_SCENARIOS  "spikes bad-replica step ramp fail91 fail98"
#   XM_BENCH_MODES      "new pool50 poolidle urllib3"
#   XM_BENCH_RUNS       3
#   XM_BENCH_REDUCED    1: slow replicas (spikes, bad-replica) and a step change
#                       in the pooled modes, round-robin l3 l3x l3x+rb, 1 run
#                       (~35 min); the variables above still override it
#   XM_BENCH_POOL_IDLE  5
#   XM_BENCH_WARMUP     5     seconds of load before t = 0 (not measured)
#   XM_BENCH_TICK_MS    500   agent tick
#   XM_BENCH_POOL_REQS  100
#   XM_BENCH_POOL_AGE   5
#   XM_BENCH_TIMEOUT    5     seconds a client waits for an answer (give
#                       l3_report.py the same when run by hand)
#   XM_BENCH_OUT        results/l3-<UTC time>
#   XM_BENCH_TRACE      1: record `xmeshctl -j top` every tick during each run
#                       (<cell>.top.jsonl: weights, table shares, connections
#                       held / idle / retired per backend), for l3_trace.py
# Full run: 6 scenarios x 4 modes x 5 algorithms x 3 runs x ~48 s = ~5.8 h.
# Quick look: XM_BENCH_RUNS=1 XM_BENCH_MODES=new (~20 min). Longer
# scenarios: edit "duration" and the event times in scenarios/*.json.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

if [ "${XM_BENCH_REDUCED:-0}" = 1 ]; then
	: "${XM_BENCH_ALGOS:=round-robin l3 l3x l3x+rb}"
	: "${XM_BENCH_SCENARIOS:=spikes bad-replica step}"
	: "${XM_BENCH_MODES:=pool50 poolidle urllib3}"
	: "${XM_BENCH_RUNS:=1}"
fi
ALGOS=(${XM_BENCH_ALGOS:-round-robin l3 c3 l3x l3x+rb})
SCENARIOS=(${XM_BENCH_SCENARIOS:-spikes bad-replica step ramp fail91 fail98})
MODES=(${XM_BENCH_MODES:-new pool50 poolidle urllib3})
RUNS=${XM_BENCH_RUNS:-3}
POOL_IDLE=${XM_BENCH_POOL_IDLE:-5}
WARMUP=${XM_BENCH_WARMUP:-5}
TICK_MS=${XM_BENCH_TICK_MS:-500}
POOL_REQS=${XM_BENCH_POOL_REQS:-100}
POOL_AGE=${XM_BENCH_POOL_AGE:-5}
export XM_BENCH_TIMEOUT=${XM_BENCH_TIMEOUT:-5}
OUT=${XM_BENCH_OUT:-results/l3-$(date -u +%Y%m%dT%H%M%SZ)}
VIP=10.96.0.10
PORT=8080
NREP=9

xm_setup
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
xm_log "results in $OUT"

xm_node n1
xm_pod n1 cl 10.77.0.2/16
for i in $(seq 0 $((NREP - 1))); do
	xm_pod n1 b$i 10.77.1.$((10 + i))/16
done
# The client opens thousands of connections per run: reuse TIME_WAIT ports.
ip netns exec "$XM_PREFIX-cl" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
	net.ipv4.ip_local_port_range="10000 65000"

# write_config ALGO FILE ("l3x+rb": l3x with rebalancing on). After the
# algorithm, "~" parts: "PARAM=NUMBER[,PARAM=NUMBER]" sets params,
# "rb:FIELD=NUMBER[,...]" fields of "rebalance" (l3x+rb only), e.g.
# "l3x+rb~conn_cap=2~rb:min_conns=1"
write_config() {
	local spec=${1%%~*} algo rb=false i be="" params="" rbf="" part f
	local -a parts=()
	[ "$spec" != "$1" ] && IFS='~' read -ra parts <<<"${1#*~}"
	algo=${spec%+rb}
	[ "$spec" != "$algo" ] && rb=true
	for part in "${parts[@]}"; do
		for f in $(tr , ' ' <<<"${part#rb:}"); do
			if [ "${part#rb:}" != "$part" ]; then
				[ "$rb" = false ] && xm_fail "$1: rb: fields need l3x+rb"
				rbf+=", \"${f%%=*}\": ${f#*=}"
			else
				params+="${params:+, }\"${f%%=*}\": ${f#*=}"
			fi
		done
	done
	params="{$params}"
	[ -n "$rbf" ] && rb="{\"enabled\": true$rbf}"
	for i in $(seq 0 $((NREP - 1))); do
		be+="${be:+,}{\"address\": \"10.77.1.$((10 + i))\", \"port\": $PORT, \"cluster\": \"c$((i / 3))\"}"
	done
	cat >"$2" <<EOF
{
  "weighting": {"tick_ms": $TICK_MS},
  "services": [
    {"name": "bench", "vip": "$VIP", "port": $PORT, "protocol": "tcp",
     "algorithm": "$algo", "params": $params, "rebalance": $rb, "backends": [$be]}
  ]
}
EOF
}

# run_one SCENARIO MODE ALGO RUN
run_one() {
	local scn=$1 mode=$2 algo=$3 run=$4 cfg=$XM_RUN_DIR/agent.json start i spids=() line client
	local tpid=
	local csv=$OUT/$scn.$mode.$algo.$run.csv
	write_config "$algo" "$cfg"
	# debug: the closing line counts the fast path's retirements by what found them, and
	# every retirement has a line (client port, backend, which pass), to match failures with
	xm_agent_start --config "$cfg" --log-level debug 2>"$OUT/$scn.$mode.$algo.$run.agent.log"
	# A rejected config leaves the agent running without the service's algorithm: the run
	# would measure something else under the variant's name (an unknown "~PARAM").
	sleep 0.2
	if grep -q "config rejected" "$OUT/$scn.$mode.$algo.$run.agent.log"; then
		grep "config rejected" "$OUT/$scn.$mode.$algo.$run.agent.log" >&2
		xm_fail "$algo: the agent rejected its config (docs/weighting.md, docs/config.md)"
	fi
	if [ "${XM_BENCH_TRACE:-0}" = 1 ]; then
		# xmeshctl itself in the background (not the xm_ctl function's subshell), so that
		# the kill below stops it.
		"$XM_BIN/xmeshctl" --pin-root "$XM_PIN" -j top interval "$TICK_MS" \
			>"$OUT/$scn.$mode.$algo.$run.top.jsonl" 2>/dev/null &
		tpid=$!
		XM_PIDS+=($tpid)
	fi
	start=$(python3 -c "import time; print(f'{time.time() + $WARMUP + 1:.3f}')")
	echo "$start" >"$OUT/$scn.$mode.$algo.$run.start"
	# each replica logs its requests (client port, delay drawn, answered or not): a
	# client's timeout is matched with it by l3_report.py
	for i in $(seq 0 $((NREP - 1))); do
		ip netns exec "$XM_PREFIX-b$i" "$XM_TOOLS/xm-serve" scenario \
			--listen 10.77.1.$((10 + i)):$PORT --replica $i \
			--scenario "scenarios/$scn.json" --start "$start" \
			--csv "$OUT/$scn.$mode.$algo.$run.b$i.requests" &
		spids+=($!)
		XM_PIDS+=($!)
	done
	case $mode in
	new) client=(--new) ;;
	pool) client=(--retry --per-conn "$POOL_REQS" --max-age "$POOL_AGE") ;;
	pool50) client=(--retry --per-conn 50 --max-age 3600) ;;
	poolidle) client=(--retry --per-conn 1000000 --max-age 3600
			  --idle-timeout "$POOL_IDLE") ;;
	esac
	if [ "$mode" = urllib3 ]; then
		line=$(xm_pod_exec cl python3 tests/tools/urllib3_pool.py "http://$VIP:$PORT" \
			"$(python3 -c "import json; print(json.load(open('scenarios/$scn.json'))['duration'])")" \
			--threads 8 --think 0.03 --start "$start" --warmup "$WARMUP" --out "$csv" \
			2>/dev/null | tail -n1)
	else
		line=$(xm_pod_exec cl "$XM_TOOLS/xm-load" rr --target $VIP:$PORT \
			--scenario "scenarios/$scn.json" --start "$start" --warmup "$WARMUP" \
			"${client[@]}" --proto http --timeout "$XM_BENCH_TIMEOUT" --csv "$csv" | tail -n1)
	fi
	xm_ctl -j backend list >"$OUT/$scn.$mode.$algo.$run.backends.json" 2>/dev/null
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	kill "${spids[@]}" 2>/dev/null
	wait "${spids[@]}" 2>/dev/null
	kill "$XM_AGENT_PID" 2>/dev/null
	wait "$XM_AGENT_PID" 2>/dev/null
	done_runs=$((done_runs + 1))
	printf '[%d/%d %s] %-12s %-8s %-12s run %s: %s\n' "$done_runs" "$total_runs" "$(date +%T)" \
		"$scn" "$mode" "$algo" "$run" "${line#*: }" >&2
}

n=${#ALGOS[@]}
done_runs=0
total_runs=$((RUNS * ${#SCENARIOS[@]} * ${#MODES[@]} * n))
for run in $(seq 1 "$RUNS"); do
	for scn in "${SCENARIOS[@]}"; do
		for mode in "${MODES[@]}"; do
			for k in $(seq 0 $((n - 1))); do
				run_one "$scn" "$mode" "${ALGOS[$(((k + run - 1) % n))]}" "$run"
			done
		done
	done
done

{
	echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, $(git rev-parse --short HEAD 2>/dev/null)"
	echo "# XM_BENCH_ALGOS='${ALGOS[*]}' XM_BENCH_SCENARIOS='${SCENARIOS[*]}'" \
		"XM_BENCH_MODES='${MODES[*]}' XM_BENCH_RUNS=$RUNS XM_BENCH_TICK_MS=$TICK_MS make bench-l3"
} >"$OUT/README"
python3 scripts/bench/l3_report.py "$OUT"
