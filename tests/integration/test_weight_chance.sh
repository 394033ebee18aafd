#!/bin/bash
# SPDX-License-Identifier: MIT
# Chance failures leave l3x's success estimates, and so the tables, alone
# (user/lib/weight.c, the service param success_alpha, l3x's default 0.01).
# 20 l3x services x 10 backends at 20 rps, log-normal latencies (fake_probes'
# default), 1 % of requests failing at random on every backend (--fail-pct 1):
# no backend fails more than the others, so no failure is worth a table
# write. Two agents in turn, same traffic: with success_alpha 0 (every 5xx
# drops its backend's valley filter, the rule removed) and with the default.
# Asserts, from `xmeshctl -j backend list` sampled 8 times over 16 s: the
# spread of a service's filtered success estimates (max - min over its 10
# backends; median over the services and samples) is at most 0.002 with the
# rule (every backend at the service's chance rate) and at least 0.01
# with 0 (the control: each chance 5xx drops its backend to 0.9-0.975). It
# logs the table writes and weighings per service and tick of both (in this
# small run l3x's latency noise writes about as many tables without
# failures: the writes are measured at scale by scripts/bench/weight-cost.sh,
# docs/benchmarks.md session 17).
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/fake_probes" ] || xm_skip "build the test tools (make)"

NSVC=20
NBE=10
SECS=16

# phase NAME PARAMS_JSON: prints "success_spread table_writes_per_service_tick weighed_per_service_tick"
phase() {
	local name=$1 k0 w0 s0 k1 w1 s1 n
	xm_fake_l3x_start "$name" "$2" $((SECS + 30))
	read -r k0 w0 s0 < <(xm_loop_counts ticks table_writes weighed_total)
	for n in $(seq 8); do
		sleep $((SECS / 8))
		xm_ctl -j backend list >"$XM_RUN_DIR/backends-$name-$n.json"
	done
	read -r k1 w1 s1 < <(xm_loop_counts ticks table_writes weighed_total)
	xm_fake_l3x_stop
	python3 -c 'import glob, json, statistics, sys
k0, w0, s0, k1, w1, s1, nsvc = map(int, sys.argv[1:8])
spreads = []
for f in glob.glob(sys.argv[8] + "/backends-" + sys.argv[9] + "-*.json"):
    by = {}
    for r in json.load(open(f)):
        if "filtered" in r:
            by.setdefault(r["service"], []).append(r["filtered"]["success_rate"])
    spreads += [max(v) - min(v) for v in by.values() if len(v) > 1]
print(f"{statistics.median(spreads) if spreads else -1:.4f} "
      f"{(w1 - w0) / (k1 - k0) / nsvc:.3f} {(s1 - s0) / (k1 - k0) / nsvc:.3f}")' \
		"$k0" "$w0" "$s0" "$k1" "$w1" "$s1" "$NSVC" "$XM_RUN_DIR" "$name"
}

read -r off_sp off_w off_all < <(phase before '{"success_alpha": 0}')
read -r on_sp on_w on_all < <(phase default '{}')
xm_log "success spread in a service (median): $on_sp (success_alpha 0: $off_sp); table writes per service and tick: $on_w ($off_w); weighings: $on_all ($off_all)"
python3 -c "import sys; sys.exit(not $off_sp >= 0.01)" ||
	xm_fail "with success_alpha 0 the success spread is only $off_sp: the failures did not reach the filters"
python3 -c "import sys; sys.exit(not 0 <= $on_sp <= 0.002)" ||
	xm_fail "success spread in a service $on_sp with the default (expected <= 0.002)"
exit 0
