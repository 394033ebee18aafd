#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-h2: long-lived multiplexed connections (HTTP/2, gRPC) through a
# VIP with one replica that turns slow, with connection-level rebalancing off
# and on. Not a comparison of algorithms: it shows what connect-time
# balancing can and cannot do for a client that multiplexes everything over
# one or a few connections (docs/weighting.md, "HTTP/2 and gRPC").
#
# World (tests/integration/lib.sh): a client pod and 3 replica pods
# (tests/tools/h2_server.py: h2c, or gRPC with --grpc; 5 ms per request,
# replica 2 takes 100 ms from t = 3 s). Service l3x.
# Phases, each XM_BENCH_H2_SECS (12) seconds:
#   h2load-off/on   h2load -c 6 -m 4 (6 connections, 4 streams each, closed loop)
#   grpc-off/on     6 gRPC clients (one channel = one connection each), 1 call/s
#                   each: connections idle between calls
#   grpc1-on        one gRPC client, one channel, 100 calls/s
# "on" = "rebalance": {"idle_ms": 100, "share_per_tick": 0.5, "ticks": 2}.
# Per phase: requests answered per replica (the servers' counts), latency, and
# connections retired. Last line "bench h2: ...".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
command -v h2load >/dev/null || xm_skip "h2load missing (nghttp2-client)"
PY=/usr/bin/python3
$PY -c 'import h2, grpc' 2>/dev/null || xm_skip "python3-h2 / python3-grpcio missing"
SECS=${XM_BENCH_H2_SECS:-12}
VIP=10.96.0.30
PORT=8080

xm_setup
OUT=${XM_BENCH_OUT:-results/h2-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
xm_node n1
xm_pod n1 cl 10.80.0.2/16
for i in 0 1 2; do xm_pod n1 b$i 10.80.1.$((10 + i))/16; done

write_config() {
	local rb=false
	[ "$1" = on ] && rb='{"idle_ms": 100, "share_per_tick": 0.5, "ticks": 2}'
	cat >"$XM_RUN_DIR/agent.json" <<EOF2
{
  "weighting": {"tick_ms": 500},
  "services": [
    {"name": "h2", "vip": "$VIP", "port": $PORT, "algorithm": "l3x", "rebalance": $rb,
     "backends": [{"address": "10.80.1.10", "port": $PORT}, {"address": "10.80.1.11", "port": $PORT},
                  {"address": "10.80.1.12", "port": $PORT}]}
  ]
}
EOF2
}

retired() {
	xm_ctl -j backend list interval 0 | $PY -c 'import json,sys
print(sum((r.get("rebalance") or {}).get("retired", 0) for r in json.load(sys.stdin)))'
}

# phase NAME on|off KIND(h2load|grpc|grpc1)
phase() {
	local name=$1 kind=$3 start i spids=() cpids=() before after grpc_flag=
	[ "$kind" != h2load ] && grpc_flag=--grpc
	write_config "$2"
	xm_agent_start --config "$XM_RUN_DIR/agent.json" --log-level warn
	before=$(retired)
	start=$(python3 -c 'import time; print(f"{time.time():.3f}")')
	for i in 0 1 2; do
		slow=()
		[ $i = 2 ] && slow=(--slow-ms 100 --slow-from "$(python3 -c "print($start + 3)")")
		ip netns exec "$XM_PREFIX-b$i" $PY tests/tools/h2_server.py --listen 10.80.1.$((10 + i)):$PORT \
			--id $i --seconds $((SECS + 12)) "${slow[@]}" $grpc_flag >"$OUT/$name.server$i" 2>&1 &
		spids+=($!)
		XM_PIDS+=($!)
	done
	# grpcio takes a while to import and bind under load: wait for all three to listen.
	for i in $(seq 50); do
		n=$(for j in 0 1 2; do ip netns exec "$XM_PREFIX-b$j" ss -Hltn "sport = :$PORT"; done | wc -l)
		[ "$n" -ge 3 ] && break
		sleep 0.2
	done
	case $kind in
	h2load)
		xm_pod_exec cl h2load -c 6 -m 4 -D "$SECS" "http://$VIP:$PORT/" >"$OUT/$name.client" 2>&1 ;;
	grpc)
		for i in 1 2 3 4 5 6; do
			xm_pod_exec cl $PY tests/tools/grpc_client.py "$VIP:$PORT" "$SECS" --rate 1 \
				--concurrency 1 >"$OUT/$name.client$i" 2>&1 &
			cpids+=($!)
		done
		wait "${cpids[@]}"
		cat "$OUT/$name".client? >"$OUT/$name.client" ;;
	grpc1)
		xm_pod_exec cl $PY tests/tools/grpc_client.py "$VIP:$PORT" "$SECS" --rate 100 \
			--concurrency 4 >"$OUT/$name.client" 2>&1 ;;
	esac
	after=$(retired)
	wait "${spids[@]}" 2>/dev/null
	kill "$XM_AGENT_PID" 2>/dev/null
	wait "$XM_AGENT_PID" 2>/dev/null
	{
		printf '%-10s retired=%s' "$name" "$((after - before))"
		for i in 0 1 2; do printf ' r%s:%s' $i "$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' "$OUT/$name.server$i")"; done
		for i in 0 1 2; do printf ' c%s:%s' $i "$(sed -n 's/.*connections=\([0-9]*\).*/\1/p' "$OUT/$name.server$i")"; done
		case $kind in
		h2load) grep -E "^requests:|^time for request:" "$OUT/$name.client" | tr -s ' ' | tr '\n' ' ' ;;
		*) grep "^grpc:" "$OUT/$name.client" | sed 's/ backend=.*//' | tr '\n' ' ' ;;
		esac
		echo
	} | tee -a "$OUT/summary.txt" >&2
}

: >"$OUT/summary.txt"
phase h2load-off off h2load
phase h2load-on on h2load
phase grpc-off off grpc
phase grpc-on on grpc
phase grpc1-on on grpc1
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs; XM_BENCH_H2_SECS=$SECS make bench-h2" >>"$OUT/summary.txt"
echo "bench h2: $(awk '{printf "%s_retired=%s ", $1, substr($2, 9)}' "$OUT/summary.txt" | sed 's/# *_retired=[^ ]* //')"
