#!/bin/bash
# SPDX-License-Identifier: MIT
# New failures weigh a service at once only when one backend's failures are
# news against the service's recent failure rate (user/lib/weighdue.c
# xm_weigh_failures_news(), the service param due_fail_alpha, default 0.01).
# 20 l3x services x 10 backends at 20 rps, log-normal latencies (fake_probes'
# default: --fixed-us fails nothing), 1 % of requests failing at random on
# every backend (--fail-pct 1): about 100
# requests a tick per service, so most ticks bring a failure. Two agents in
# turn, same traffic: with due_fail_alpha 0 (every new failure at once, the
# cadence before) most service-ticks are weighed "for a failure" (the
# control: the failures are there and visible to the loop); with the
# default, chance failures wait for the samples weighing. Asserts, from the
# loop's counters and its closing line (weighings by reason): failure
# weighings per service and tick at most 0.05 with the default and at least
# 0.3 with 0, and fewer weighings in all with the default (at most 0.9x:
# l3x's own noise at ten samples a tick still rewrites tables and so ends
# the busy wait in most weighings, docs/benchmarks.md session 14).
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/fake_probes" ] || xm_skip "build the test tools (make)"

NSVC=20
NBE=10
SECS=16


# phase NAME PARAMS_JSON: prints "failure_weighings_per_service_tick weighed_per_service_tick"
phase() {
	local name=$1 log=$XM_RUN_DIR/agent-$1.log k0 s0 k1 s1 line
	xm_fake_l3x_start "$name" "$2" $((SECS + 10))
	read -r k0 s0 < <(xm_loop_counts ticks weighed_total)
	sleep "$SECS"
	read -r k1 s1 < <(xm_loop_counts ticks weighed_total)
	xm_fake_l3x_stop
	line=$(grep "weighting: .* ticks, .* weighed per tick" "$log" | tail -n1)
	xm_log "$name (whole run): ${line#*info: }" >&2
	# The closing line counts the whole run: failure weighings per service and tick over it.
	python3 -c 'import re, sys
line, k0, s0, k1, s1, nsvc = sys.argv[1], *map(int, sys.argv[2:7])
ticks = int(re.search(r"(\d+) ticks", line).group(1))
m = re.search(r"failure (\d+)", line)
print(f"{(int(m.group(1)) if m else 0) / ticks / nsvc:.3f} {(s1 - s0) / (k1 - k0) / nsvc:.3f}")' \
		"$line" "$k0" "$s0" "$k1" "$s1" "$NSVC"
}

read -r off_fail off_all < <(phase before '{"due_fail_alpha": 0}')
read -r on_fail on_all < <(phase default '{}')
xm_log "failure weighings per service and tick: $on_fail (due_fail_alpha 0: $off_fail); all weighings: $on_all ($off_all)"
python3 -c "import sys; sys.exit(not $off_fail >= 0.3)" ||
	xm_fail "with due_fail_alpha 0 only $off_fail failure weighings per service and tick: the traffic's failures did not show"
python3 -c "import sys; sys.exit(not $on_fail <= 0.05)" ||
	xm_fail "chance failures weighed at once $on_fail times per service and tick (expected <= 0.05)"
python3 -c "import sys; sys.exit(not $on_all <= $off_all * 0.9)" ||
	xm_fail "weighings per service and tick $on_all, not at most $off_all x 0.9"
exit 0
