#!/bin/bash
# SPDX-License-Identifier: MIT
# Chance failures leave l3x's success estimates, and so the tables, alone
# (user/lib/weight.c, the service param success_alpha, default 0.01 for l3x).
# 20 l3x services x 10 backends at 20 rps, log-normal latencies (fake_probes'
# default), 1 % of requests failing at random on every backend (--fail-pct 1):
# no backend fails more than the others, so no failure is worth a table
# write. Two agents in turn, same traffic: with success_alpha 0 (every 5xx
# drops its backend's valley filter, the rule removed) and with the default.
# Asserts, from the loop's counters: table writes per service and tick at
# most 0.75x those with 0 (l3x's own latency noise still writes some), and
# those with 0 at least 0.2 (the control: the failures are there and move
# the tables without the rule).
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/fake_probes" ] || xm_skip "build the test tools (make)"

NSVC=20
NBE=10
SECS=16

# phase NAME PARAMS_JSON: prints "table_writes_per_service_tick weighed_per_service_tick"
phase() {
	local name=$1 params=$2 cfg=$XM_RUN_DIR/agent-$1.json log=$XM_RUN_DIR/agent-$1.log
	local fp k0 w0 s0 k1 w1 s1
	xm_l3x_services "$NSVC" "$NBE" | python3 -c 'import json, sys
c = json.load(sys.stdin)
for s in c["services"]:
    s["params"] = json.loads(sys.argv[1])
print(json.dumps(c))' "$params" >"$cfg"
	xm_agent_start --config "$cfg" 2>"$log"
	xm_lb_wait "10.96.0.$NSVC:80" "$NBE"
	xm_bg "$XM_TOOLS/fake_probes" --pin-root "$XM_PIN" --rps 20 --period-ms 500 \
		--duration $((SECS + 10)) --fail-pct 1
	fp=$XM_LAST_PID
	sleep 6 # filters, tables and the failure rate settle on the traffic
	read -r k0 w0 s0 < <(xm_loop_counts ticks table_writes weighed_total)
	sleep "$SECS"
	read -r k1 w1 s1 < <(xm_loop_counts ticks table_writes weighed_total)
	kill -TERM "$XM_AGENT_PID"
	wait "$XM_AGENT_PID" 2>/dev/null
	xm_kill_tree "$fp"
	wait "$fp" 2>/dev/null
	python3 -c 'import sys
k0, w0, s0, k1, w1, s1, nsvc = map(int, sys.argv[1:8])
print(f"{(w1 - w0) / (k1 - k0) / nsvc:.3f} {(s1 - s0) / (k1 - k0) / nsvc:.3f}")' \
		"$k0" "$w0" "$s0" "$k1" "$w1" "$s1" "$NSVC"
}

read -r off_w off_all < <(phase before '{"success_alpha": 0}')
read -r on_w on_all < <(phase default '{}')
xm_log "table writes per service and tick: $on_w (success_alpha 0: $off_w); weighings: $on_all ($off_all)"
python3 -c "import sys; sys.exit(not $off_w >= 0.2)" ||
	xm_fail "with success_alpha 0 only $off_w table writes per service and tick: the failures did not move the tables"
python3 -c "import sys; sys.exit(not $on_w <= $off_w * 0.75)" ||
	xm_fail "table writes per service and tick $on_w, not at most $off_w x 0.75"
exit 0
