#!/bin/bash
# SPDX-License-Identifier: MIT
# The weighting loop re-reads backends and services every 10 s for writers
# other than the agent (XM_W_TOPO_MAX_S). A re-read that finds the maps as
# before must not re-sync and weigh every service (it did: 1,000 weighings
# per re-read on an idle node of 1,000 services); one that finds a change
# must, as before. 20 idle l3x services, no traffic, for ~24 s (two periodic
# re-reads); at ~3 s a backend entry is changed behind the agent's back
# (bpftool; a field nothing reads). Services weighed for the reason "first"
# (never weighed, or their backend set re-read: the agent's stop line):
# 20 at start + 20 at the re-read that sees the change = 40. Weighing at
# every re-read gives 60; ignoring changes of other writers gives 20.
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
command -v bpftool >/dev/null || xm_skip "needs bpftool"

NSVC=20
cfg=$XM_RUN_DIR/agent.json
xm_l3x_services "$NSVC" 3 >"$cfg"
xm_agent_start --config "$cfg" 2>"$XM_RUN_DIR/agent.log"
t0=$(date +%s.%N)
xm_lb_wait "10.96.0.$NSVC:80" 3
sleep 2

# Another writer changes backend 1's entry: its last 4 bytes (slots_retired,
# always 0, read by nobody) become 1.
val=$(bpftool -j map lookup pinned "$XM_PIN/maps/xm_lb_be" key 1 0 0 0 |
	python3 -c 'import json,sys; v = json.load(sys.stdin)["value"]; v[36] = "0x01"; print(" ".join(v))')
# shellcheck disable=SC2086
bpftool map update pinned "$XM_PIN/maps/xm_lb_be" key 1 0 0 0 value $val ||
	xm_fail "could not write the backend entry"
left=$(python3 -c "import time; print(max(0, 24 - (time.time() - $t0)))")
sleep "$left"
kill -TERM "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null
line=$(grep "weighting: .* ticks, .* weighed per tick" "$XM_RUN_DIR/agent.log" | tail -n1)
xm_log "agent: ${line#*info: }"
first=$(sed -n 's/.*by reason:.* first \([0-9]*\).*/\1/p' <<<"$line")
[ -n "$first" ] || xm_fail "no weighings by reason 'first' in the agent's stop line: $line"
xm_assert "$first" -eq $((2 * NSVC)) \
	"services weighed as new: at start, and at the one re-read that found a change"
exit 0
