#!/bin/bash
# SPDX-License-Identifier: MIT
# A busy service whose weighings leave its table as it was banks its samples
# longer (user/lib/weighdue.c xm_weigh_busy_next(): 1, 2, 4 ticks, up to 2 s).
# At 20 rps per backend every weighing has its samples, so without the busy
# wait every service was weighed in every tick, 1.0 per service and tick
# (main's agent), most of the loop's busy cost at 1,000 services. 20 l3x
# services of 10 backends at 20 rps, fixed latencies by backend (fake_probes
# --fixed-us), no failures: nothing that weighs at once and weights that
# settle, so no table moves. Over 20 s after settling, weighings per service
# and tick from the loop's counters: 0.25 (every 2 s; main's agent 1.0).
# Asserts at most 0.35 and at least 0.2 (still weighed every 2 s). With
# log-normal latencies the estimates' noise still rewrites a table in ~60 %
# of the weighings (0.7 per service and tick, docs/benchmarks.md session 14).
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/fake_probes" ] || xm_skip "build the test tools (make)"

NSVC=20
NBE=10
SECS=20
cfg=$XM_RUN_DIR/agent.json
xm_l3x_services "$NSVC" "$NBE" >"$cfg"
xm_agent_start --config "$cfg" 2>"$XM_RUN_DIR/agent.log"
xm_lb_wait "10.96.0.$NSVC:80" "$NBE"
xm_bg "$XM_TOOLS/fake_probes" --pin-root "$XM_PIN" --rps 20 --period-ms 500 \
	--duration $((SECS + 12)) --fixed-us 5000
sleep 6 # filters and tables settle on the traffic
read -r k0 s0 w0 < <(xm_loop_counts ticks weighed_total table_writes)
sleep "$SECS"
read -r k1 s1 w1 < <(xm_loop_counts ticks weighed_total table_writes)
ticks=$((k1 - k0))
xm_assert "$ticks" -ge $((SECS * 2 - 4)) "loop ticks in ${SECS} s"
per=$(python3 -c "print(f'{($s1 - $s0) / $ticks / $NSVC:.3f}')")
xm_log "weighed per service and tick: $per ($((s1 - s0)) weighings and $((w1 - w0)) table writes in $ticks ticks, $NSVC services)"
kill -TERM "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null
line=$(grep "weighting: .* ticks, .* weighed per tick" "$XM_RUN_DIR/agent.log" | tail -n1)
xm_log "agent (whole run): ${line#*info: }"
python3 -c "import sys; sys.exit(not $per <= 0.35)" ||
	xm_fail "busy services weighed $per times per tick (every tick: 1.0), expected <= 0.35"
python3 -c "import sys; sys.exit(not $per >= 0.2)" ||
	xm_fail "busy services weighed $per times per tick, expected >= 0.2 (every 2 s)"
exit 0
