#!/bin/bash
# SPDX-License-Identifier: MIT
# Bulk streams through a redirect, outside xmesh: tests/tools/xm-bulk.c with
# the minimal sockmap program bpf/sockmap_bulk.bpf.c on a loopback TCP pair
# (no netns, no cgroup: the program is attached to its own map only). Modes,
# interleaved in rotating order per repetition:
#   tcp       plain TCP
#   redirect  every byte redirected into the peer's ingress queue (xmesh's way)
#   budget    the first BUDGET bytes redirected, the rest TCP (the fallback)
#   demote    the first DEMOTE bytes redirected, then the sender leaves the map
#             (plain TCP again: what xmesh does to a one-way bulk sender)
# Metrics: how much a sender can queue ahead of a reader that does not read
# (TCP is held to its buffers; a redirected sender is not), and stream
# throughput on one core (sender and reader on CPU 0) and two (CPU 0 / 1).
#
#   REPS=5 SECS=1 BUDGET=1048576 DEMOTE=4194304 scripts/bench/bulk.sh
set -eu -o pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-5}
SECS=${SECS:-1}
BUDGET=${BUDGET:-1048576}
DEMOTE=${DEMOTE:-4194304}
BULK=build/tests/xm-bulk
[ -x "$BULK" ] || { echo "bulk: build first (make)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bulk: needs root (BPF)" >&2; exit 1; }
modes=(tcp redirect "budget=$BUDGET" "demote=$DEMOTE")
OUT=$(mktemp /tmp/xm-bulk.XXXXXX)
trap 'rm -f "$OUT"' EXIT
for rep in $(seq "$REPS"); do
	off=$(((rep - 1) % ${#modes[@]}))
	order=("${modes[@]:off}" "${modes[@]:0:off}")
	echo "[$(date +%T)] repetition $rep/$REPS: ${order[*]}" >&2
	for m in "${order[@]}"; do
		"$BULK" queue "$m" >>"$OUT"
		"$BULK" stream "$m" "$SECS" 0,0 >>"$OUT"
		"$BULK" stream "$m" "$SECS" 0,1 >>"$OUT"
	done
done
python3 - "$OUT" "$BUDGET" "$DEMOTE" <<'PY'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in line.split()) for line in open(sys.argv[1])]
budget = "budget=" + sys.argv[2]
demote = "demote=" + sys.argv[3]
def med(mode, key, cpus=None):
    xs = [float(r[key]) for r in rows if r["mode"] == mode and key in r and r.get("cpus") == cpus]
    return statistics.median(xs) if xs else float("nan")
print("%-22s %14s %12s %12s" % ("mode", "queued (MiB)", "1 core Gb/s", "2 cores Gb/s"))
for m in ("tcp", "redirect", budget, demote):
    q = med(m, "queued_bytes") / 2**20
    capped = any(r.get("capped") == "1" for r in rows if r["mode"] == m)
    print("%-22s %13.1f%s %12.2f %12.2f" % (m, q, "+" if capped else " ",
          med(m, "gbps", "0,0"), med(m, "gbps", "0,1")))
print("(+: the sender hit the tool's 64 MiB cap, not the kernel's limit)")
t1, t2 = med("tcp", "gbps", "0,0"), med("tcp", "gbps", "0,1")
print("bench bulk: queued_tcp_mib=%.1f queued_redirect_mib=%.1f queued_budget_mib=%.1f "
      "queued_demote_mib=%.1f redirect_1core=%.3f redirect_2core=%.3f budget_1core=%.3f "
      "budget_2core=%.3f demote_1core=%.3f demote_2core=%.3f" % (
      med("tcp", "queued_bytes") / 2**20, med("redirect", "queued_bytes") / 2**20,
      med(budget, "queued_bytes") / 2**20, med(demote, "queued_bytes") / 2**20,
      med("redirect", "gbps", "0,0") / t1, med("redirect", "gbps", "0,1") / t2,
      med(budget, "gbps", "0,0") / t1, med(budget, "gbps", "0,1") / t2,
      med(demote, "gbps", "0,0") / t1, med(demote, "gbps", "0,1") / t2))
PY
