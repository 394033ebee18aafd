#!/bin/bash
# SPDX-License-Identifier: MIT
# The weighting loop reads at most XM_W_HIST_BUDGET (1024) latency
# histograms per tick. With more busy backends than that, every backend must
# still get its turn within a few ticks: 150 services x 10 backends (1500),
# all busy (fake_probes), and within 12 ticks every backend's filtered p99
# has left the 5 s default, i.e. its histogram was read. A loop that starts
# each tick one service further on reads the same ~100 services tick after
# tick and leaves a third of them unread for ~150 ticks.
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/fake_probes" ] || xm_skip "build the test tools (make)"

NSVC=150
NBE=10
cfg=$XM_RUN_DIR/agent.json
xm_l3x_services "$NSVC" "$NBE" >"$cfg"
xm_agent_start --config "$cfg"
loop_ticks() {
	xm_ctl -j top count 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["loop"]["ticks"])'
}
# unread BACKENDS: how many backends' filtered p99 is still the default (no histogram read)
unread() {
	xm_ctl -j backend list | python3 -c '
import json, sys
rows = json.load(sys.stdin)
rows = rows.get("backends", rows) if isinstance(rows, dict) else rows
print(sum(1 for r in rows if (r.get("filtered") or {}).get("p99_ms") in (None, 5000.0)
          or r["filtered"]["p99_ms"] >= 1000), len(rows))'
}
for _ in $(seq 100); do
	read -r _ total < <(unread)
	[ "${total:-0}" -ge $((NSVC * NBE)) ] && break
	sleep 0.2
done
[ "${total:-0}" -ge $((NSVC * NBE)) ] || xm_fail "backend list shows ${total:-0} backends, expected $((NSVC * NBE))"

xm_bg "$XM_TOOLS/fake_probes" --pin-root "$XM_PIN" --rps 20 --period-ms 500 --duration 120
t0=$(loop_ticks)
# 12 ticks of traffic (the budget covers 1500 backends in 2), counted in ticks:
# a late tick on a loaded machine does not matter.
for _ in $(seq 600); do
	[ $(($(loop_ticks) - t0)) -ge 12 ] && break
	sleep 0.1
done
read -r left total < <(unread)
xm_log "after $(($(loop_ticks) - t0)) ticks: $left of $total backends never had their histogram read"
xm_assert "$left" -eq 0 "backends whose histogram was never read after 12 busy ticks"
exit 0
