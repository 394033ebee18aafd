#!/bin/bash
# SPDX-License-Identifier: MIT
# A service with no traffic whose weighings stopped moving its weights waits
# longer for news (user/lib/weighdue.c: 2, 4, 8, up to 16 s, never past the
# moment a backend reaches idle_after, 10 s). An idle node weighed every
# service every 2 s for nothing: most of the idle loop at 1,000 services.
# 20 idle l3x services of 3 backends for ~36 s; the services weighed for the
# reason "max-wait" (the agent's stop line): every 2 s that is one per
# service per 2 s of the run (main's agent: 540); with the longer waits ~7
# per service (2 s around the backends' idle_after, then 4, 8, 16 s: 140 in
# two runs). Asserts
# at most 9 per service, and at least 4 (still weighed: at the idle_after
# crossing and after it), and that every backend keeps an equal share.
set -u
. "$(dirname "$0")/lib.sh"
xm_setup

NSVC=20
SECS=36
cfg=$XM_RUN_DIR/agent.json
xm_l3x_services "$NSVC" 3 >"$cfg"
xm_agent_start --config "$cfg" 2>"$XM_RUN_DIR/agent.log"
t0=$(date +%s.%N)
xm_lb_wait "10.96.0.$NSVC:80" 3
left=$(python3 -c "import time; print(max(0, $SECS - (time.time() - $t0)))")
sleep "$left"
# The tables the long waits left: every backend of every service one third.
shares=$(for s in $(seq 1 $NSVC); do
	xm_ctl -j backend list "10.96.0.$s:80" interval 0 | xm_json '" ".join("%.4f" % b["weight"] for b in j)'
done)
kill -TERM "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null
line=$(grep "weighting: .* ticks, .* weighed per tick" "$XM_RUN_DIR/agent.log" | tail -n1)
xm_log "agent: ${line#*info: }"
maxw=$(sed -n 's/.*by reason:.* max-wait \([0-9]*\).*/\1/p' <<<"$line")
[ -n "$maxw" ] || xm_fail "no weighings by reason 'max-wait' in the agent's stop line: $line"
xm_assert "$maxw" -le $((9 * NSVC)) "quiet services weighed for max-wait in ${SECS} s (every 2 s: 360 and more)"
xm_assert "$maxw" -ge $((4 * NSVC)) "quiet services still weighed (idle_after crossing and after)"
n=0
for w in $shares; do
	[ "$w" = 0.3333 ] || xm_fail "a backend's weight is $w after ${SECS} s idle, expected 0.3333 (all: $shares)"
	n=$((n + 1))
done
xm_assert "$n" -eq $((3 * NSVC)) "backends listed"
exit 0
