#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/bench/l3_runs.py tells which runs can show issue 13's p99 target: a
# run whose round-robin sent too few requests into the trouble to move its p99
# cannot show 0.7x by avoiding the trouble, and is counted apart ("reach").
# Synthetic client CSVs on the step scenario (replica 1 in trouble from 15 s);
# no network, well under a second.
set -eu
. "$(dirname "$0")/lib.sh"
[ -x "$XM_TOOLS/xm-serve" ] || xm_skip "build/tests/xm-serve not built (make all)"
D=$(mktemp -d /tmp/xm-l3reach.XXXXXX)
trap 'rm -rf "$D"' EXIT

# cell RUNFILE SENT_TO_REPLICA_1 LATENCY_THERE: 1000 requests from 16 s to 26 s,
# calm ones 10-29 ms over replicas 0 and 2-8; every (1000 / N)th to replica 1
cell() {
	python3 - "$1" "$2" "$3" <<'EOF'
import sys
path, n1, lat1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with open(path, "w") as f:
    f.write("t,latency_ms,backend,ok,retried\n")
    for i in range(1000):
        t = 16 + i / 100
        if n1 and i % (1000 // n1) == 0:
            f.write(f"{t:.2f},{lat1},1,1,0\n")
        else:
            f.write(f"{t:.2f},{10 + i % 20},{(0, 2, 3, 4, 5, 6, 7, 8)[i % 8]},1,0\n")
EOF
}
# pool50: round-robin sent 10 % into a 500 ms replica (its p99 is the trouble);
# l3x+rb sent none there
cell "$D/step.pool50.round-robin.1.csv" 100 500
cell "$D/step.pool50.l3x+rb.1.csv" 0 0
# poolidle: round-robin sent 0.5 % there, l3x+rb 0.2 %: the p99 of both is the calm tail
cell "$D/step.poolidle.round-robin.1.csv" 5 500
cell "$D/step.poolidle.l3x+rb.1.csv" 2 500
out=$(XM_TOOLS=$XM_TOOLS python3 scripts/bench/l3_runs.py "$D")
echo "$out" >&2

row() { grep "^step $1 $2 1:" <<<"$out"; }
# columns: p99 p99/rr trouble trouble/rr retired opened retried calm reach
read -r _ _ _ _ p99 _ trouble _ _ _ _ calm reach <<<"$(row pool50 round-robin)"
xm_assert "$p99" = 500.0 "round-robin's p99 with 10 % of its requests in trouble"
xm_assert "$calm" = 29.0 "its calm p99 leaves out the replica in trouble"
xm_assert "$reach" = 0.06 "avoiding the trouble alone would reach 0.06x"
read -r _ _ _ _ _ ratio trouble _ <<<"$(row pool50 l3x+rb)"
xm_assert "$ratio" = 0.06 "l3x+rb's p99 against round-robin's"
read -r _ _ _ _ p99 _ _ _ _ _ _ calm reach <<<"$(row poolidle round-robin)"
xm_assert "$p99" = "$calm" "0.5 % in trouble does not move round-robin's p99"
xm_assert "$reach" = 1.00 "no ratio below 1 is reachable by avoiding the trouble"
grep -qx "l3x+rb: within both targets in 1 of 1 cell-runs where avoiding the trouble reaches the p99 target" <<<"$out" ||
	xm_fail "the reachable run not counted as met: $out"
grep -qx "l3x+rb: within both targets in 0 of 1 cell-runs where the trouble did not set round-robin's p99 (reach > 0.7)" <<<"$out" ||
	xm_fail "the unreachable run not counted apart: $out"
