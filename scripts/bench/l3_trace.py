#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Timeline of one `make bench-l3` cell recorded with XM_BENCH_TRACE=1.

Usage: l3_trace.py DIR SCENARIO.MODE.ALGO.RUN [--step S]

Reads DIR/<cell>.csv (every request: which replica answered, on a new
connection or not) and DIR/<cell>.top.jsonl (`xmeshctl -j top` every tick:
table share, the loop's target weight and L_est, connections held / idle /
retired per backend) and prints, per time bin, what the replicas in trouble
(per the scenario, as l3_report.py defines it) got:
  req     share of the requests sent in the bin that they answered
  newc    share of the new connections opened in the bin
  table   their share of the selection table (new connections)
  weight  their target share of requests (the algorithm's weights)
  held    their share of the client connections held (idle of it in ())
  ret     connections retired from them in the bin (all backends in [])
  lest    their L_est / the median L_est
Why: to see whether the weights react, whether the table follows them,
whether pooled connections move, and how fast (issue 13).
"""
import collections
import csv
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
import l3_report  # noqa: E402

REPLICAS = l3_report.REPLICAS


def replica_of(endpoint):
    """10.77.1.(10 + i):PORT -> i (the world of scripts/bench/l3.sh)."""
    return int(endpoint.split(":")[0].rsplit(".", 1)[1]) - 10


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: l3_trace.py DIR SCENARIO.MODE.ALGO.RUN [--step S]")
    d, cell = sys.argv[1], sys.argv[2]
    step = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--step" else 1.0
    scen = cell.split(".")[0]
    rows = []
    with open(os.path.join(d, cell + ".csv")) as f:
        for r in csv.DictReader(f):
            rows.append((float(r["t"]), int(r["backend"]), r["new_conn"] == "1"))
    start_path = os.path.join(d, cell + ".start")
    frames = [json.loads(line) for line in open(os.path.join(d, cell + ".top.jsonl"))
              if line.startswith("{")]
    if os.path.exists(start_path):
        start = float(open(start_path).read())
    else:
        # Older traces: l3.sh starts the scenario WARMUP + 1 s after the agent.
        start = frames[0]["time"] + float(os.environ.get("XM_BENCH_WARMUP", 5)) + 1
    windows = l3_report.trouble_windows(scen)
    bad_at = lambda t: windows.get(int(t * 2), set())  # noqa: E731

    req = collections.defaultdict(lambda: [0, 0])
    newc = collections.defaultdict(lambda: [0, 0])
    for t, be, new in rows:
        b = int(t // step)
        hit = be in bad_at(t)
        req[b][0] += hit
        req[b][1] += 1
        if new:
            newc[b][0] += hit
            newc[b][1] += 1
    top = collections.defaultdict(list)
    for fr in frames:
        t = fr["time"] - start
        top[int(t // step)].append((t, fr["backends"]))

    print(f"{'t':>6} {'bad':>5} {'req':>6} {'newc':>6} {'table':>6} {'weight':>6} "
          f"{'held':>12} {'ret':>8} {'lest':>6}")
    prev_ret = {}  # per replica: retired total at the previous bin's frame
    for b in sorted(set(req) | set(top)):
        t0 = b * step
        bad = set()
        for k in range(int(t0 * 2), int((t0 + step) * 2)):
            bad |= windows.get(k, set())
        r, n = req.get(b, [0, 0]), newc.get(b, [0, 0])
        line = f"{t0:6.1f} {''.join(map(str, sorted(bad))) or '-':>5} "
        line += f"{r[0] / r[1] if r[1] else float('nan'):6.3f} "
        line += f"{n[0] / n[1] if n[1] else float('nan'):6.3f}"
        if top.get(b):
            _, bes = top[b][-1]
            share = weight = 0.0
            held = held_bad = idle_bad = ret_bad = ret_all = 0
            cur_ret = {}
            lest, lest_bad = [], []
            for be in bes:
                i = replica_of(be["backend"])
                f = be.get("filtered") or {}
                rb = be.get("rebalance") or {}
                held += rb.get("held", 0)
                cur_ret[i] = rb.get("retired", 0)
                # Retired in this bin, from the per-backend totals.
                got = cur_ret[i] - prev_ret.get(i, cur_ret[i])
                ret_all += got
                if f.get("l_est_ms") is not None:
                    lest.append(f["l_est_ms"])
                if i in bad:
                    share += be["share"]
                    weight += f.get("weight") or 0
                    held_bad += rb.get("held", 0)
                    idle_bad += rb.get("idle", 0)
                    ret_bad += got
                    if f.get("l_est_ms") is not None:
                        lest_bad.append(f["l_est_ms"])
            prev_ret = cur_ret
            med = statistics.median(lest) if lest else 0
            lr = max(lest_bad) / med if lest_bad and med else float("nan")
            line += f" {share:6.3f} {weight:6.3f} "
            line += f"{held_bad:3d}/{held:3d} ({idle_bad:2d}) {ret_bad:3d}[{ret_all:3d}] {lr:6.1f}"
        print(line)


if __name__ == "__main__":
    main()
