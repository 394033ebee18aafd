#!/bin/bash
# SPDX-License-Identifier: MIT
# End to end: the agent's weighting loop steers new connections away from a
# replica that turns slow. Three replicas behind a VIP (algorithm l3), a
# client opening a new connection per request at 150 rps; replica 2 becomes
# 40x slower at t = 6 s (scenarios/e2e-step.json). Over the last 6 s (12 to
# 18 s after the step) its share of new connections must be well below each
# other replica's, and the agent must show it with the lowest weight. With
# the loop removed (or round-robin) each replica keeps ~1/3. (l3's latency
# filter has a half-life of 5 s: 6 to 12 s after the step the slow replica
# still had 10-15 %, about a third of a fast one's and too near this line;
# 12 to 18 s after it, 5-9 %.)
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/xm-load" ] && [ -x "$XM_TOOLS/xm-serve" ] || xm_skip "build the test tools (make)"

VIP=10.96.0.20
PORT=8080
SCN=$XM_TOP/scenarios/e2e-step.json

xm_node n1
xm_pod n1 cl 10.78.0.2/16
for i in 0 1 2; do xm_pod n1 b$i 10.78.1.$((10 + i))/16; done
ip netns exec "$XM_PREFIX-cl" sysctl -qw net.ipv4.tcp_tw_reuse=1

cat >"$XM_RUN_DIR/agent.json" <<EOF
{
  "weighting": {"tick_ms": 500},
  "services": [
    {"name": "e2e", "vip": "$VIP", "port": $PORT, "protocol": "tcp", "algorithm": "l3",
     "backends": [
       {"address": "10.78.1.10", "port": $PORT, "cluster": "a"},
       {"address": "10.78.1.11", "port": $PORT, "cluster": "b"},
       {"address": "10.78.1.12", "port": $PORT, "cluster": "c"}]}
  ]
}
EOF
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
xm_agent_start --config "$XM_RUN_DIR/agent.json" --metrics "127.0.0.1:$MPORT"

start=$(python3 -c 'import time; print(f"{time.time() + 1.5:.3f}")')
for i in 0 1 2; do
	xm_bg ip netns exec "$XM_PREFIX-b$i" "$XM_TOOLS/xm-serve" scenario \
		--listen 10.78.1.$((10 + i)):$PORT --replica $i --scenario "$SCN" --start "$start"
done
xm_pod_exec cl "$XM_TOOLS/xm-load" rr --target $VIP:$PORT --scenario "$SCN" --start "$start" \
	--new --proto http --timeout 3 --csv "$XM_RUN_DIR/e2e.csv" || xm_fail "xm-load rr failed"

# Shares of new connections sent in [18 s, 24 s), by the replica that answered.
read -r n s0 s1 s2 < <(awk -F, 'NR > 1 && $1 >= 18 && $3 >= 0 { n++; c[$3]++ }
	END { printf "%d %d %d %d\n", n, 1000*c[0]/n, 1000*c[1]/n, 1000*c[2]/n }' "$XM_RUN_DIR/e2e.csv")
xm_log "last 6 s: $n requests, per-mille shares r0=$s0 r1=$s1 r2=$s2"
xm_assert "$n" -gt 400 "requests answered in the last 6 s"
# Before the step every replica had about a third (sanity: the LB balances at all).
read -r b0 b1 b2 < <(awk -F, 'NR > 1 && $1 >= 1 && $1 < 6 && $3 >= 0 { n++; c[$3]++ }
	END { printf "%d %d %d\n", 1000*c[0]/n, 1000*c[1]/n, 1000*c[2]/n }' "$XM_RUN_DIR/e2e.csv")
xm_log "before the step: per-mille shares r0=$b0 r1=$b1 r2=$b2"
xm_assert "$b2" -gt 150 "slow-to-be replica's share before the step"
xm_assert $((s2 * 3)) -lt "$s0" "slow replica's share well below replica 0's"
xm_assert $((s2 * 3)) -lt "$s1" "slow replica's share well below replica 1's"

# The agent's view agrees: replica 2 has the lowest weight and a higher p99.
xm_ctl -j backend list >"$XM_RUN_DIR/backends.json" || xm_fail "backend list failed"
python3 - "$XM_RUN_DIR/backends.json" <<'EOF' || xm_fail "backend list does not show the shift"
import json, sys
rows = json.load(open(sys.argv[1]))
by = {r["backend"]: r for r in rows}
slow = by["10.78.1.12:8080"]
fast = [by["10.78.1.10:8080"], by["10.78.1.11:8080"]]
for r in rows:
    f = r["filtered"]
    print(r["backend"], "share", r["share"], "algorithm", f["algorithm"], "p99_ms", f["p99_ms"],
          "weight", f["weight"])
assert all(r["filtered"]["algorithm"] == "l3" for r in rows)
assert all(slow["share"] < f["share"] for f in fast), "slow replica not the lowest share"
assert all(slow["filtered"]["p99_ms"] > f["filtered"]["p99_ms"] for f in fast), \
    "slow replica's filtered p99 not the highest"
EOF
xm_log "ok: backend list shows the slow replica with the lowest share and highest filtered p99"

# Metrics export the computed weights and the loop's own counters.
curl -sf "http://127.0.0.1:$MPORT/metrics" >"$XM_RUN_DIR/metrics.txt" || xm_fail "GET /metrics failed"
promtool check metrics <"$XM_RUN_DIR/metrics.txt" || xm_fail "promtool rejects the metrics"
w_slow=$(awk '/^xmesh_backend_computed_weight\{.*10.78.1.12:8080/ {print int($NF * 1e6)}' "$XM_RUN_DIR/metrics.txt")
w_fast=$(awk '/^xmesh_backend_computed_weight\{.*10.78.1.10:8080/ {print int($NF * 1e6)}' "$XM_RUN_DIR/metrics.txt")
ticks=$(awk '/^xmesh_weighting_ticks_total / {print $NF}' "$XM_RUN_DIR/metrics.txt")
xm_assert "${ticks:-0}" -gt 10 "weighting ticks in /metrics"
xm_assert "${w_slow:-1000000}" -lt "${w_fast:-0}" "computed weight of the slow replica in /metrics (ppm)"
