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

Usage: l3_trace.py DIR SCENARIO.MODE.ALGO.RUN --why
What the requests that went to a replica in trouble were, from the CSV
alone (xm-load's or urllib3_pool.py's, with lport): per kind of trouble ("slow": its median rose
at least 2x; "tail": its p99 only), on a connection opened before that
replica's trouble began ("kept") or during it ("new"), by how far into the
trouble it was sent (the first tick, 0.5 s, is before the loop can have
seen anything), and whether that connection was retired later (the agent
log's lines per retirement).
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


def trouble_kinds(scen):
    """{(0.5 s bin, replica): "slow" | "tail"} for the replicas in trouble."""
    tool = os.environ.get("XM_TOOLS", os.path.join(os.path.dirname(__file__), "../../build/tests"))
    path = os.path.join(os.path.dirname(__file__), "../../scenarios", scen + ".json")
    out = l3_report.subprocess.run([os.path.join(tool, "xm-serve"), "scenario", "--dump",
                                    "--scenario", path], capture_output=True, text=True,
                                   check=True).stdout
    rows = list(csv.DictReader(out.splitlines()))
    calm = collections.defaultdict(lambda: float("inf"))
    for r in rows:
        calm[r["replica"]] = min(calm[r["replica"]], float(r["median_ms"]))
    kinds = {}
    for b, bad in l3_report.trouble_windows(scen).items():
        for rep in bad:
            med = [float(r["median_ms"]) for r in rows
                   if int(r["replica"]) == rep and int(float(r["t"]) * 2) == b]
            kinds[(b, rep)] = "slow" if med and med[0] >= 2 * calm[str(rep)] else "tail"
    return kinds


def why(d, cell):
    """The breakdown of --why (module docstring)."""
    scen = cell.split(".")[0]
    kinds = trouble_kinds(scen)
    start = float(open(os.path.join(d, cell + ".start")).read())
    retired_ports = collections.defaultdict(list)
    for t, port, _, _ in l3_report.retirements(os.path.join(d, cell + ".agent.log"), start):
        retired_ports[port].append(t)
    opened = {}  # lport -> the time its current connection sent its first request
    began = {}   # replica -> the start of its current trouble
    counts = collections.Counter()
    total = 0
    for r in l3_report.read_csv(os.path.join(d, cell + ".csv")):
        t, be, port = float(r["t"]), int(r["backend"]), int(r["lport"] or 0)
        if r["new_conn"] == "1" or port not in opened:
            opened[port] = t
        b = int(t * 2)
        for rep in range(REPLICAS):
            if (b, rep) not in kinds:
                began.pop(rep, None)
            elif rep not in began:
                began[rep] = b / 2
        if t < 0 or not any((b, rep) in kinds for rep in range(REPLICAS)):
            continue
        total += 1
        if (b, be) not in kinds:
            continue
        into = t - began[be]
        conn = "kept" if opened[port] < began[be] else "new"
        when = "<0.5s" if into < 0.5 else "0.5-1s" if into < 1 else "1-2s" if into < 2 else ">=2s"
        later = any(rt >= t for rt in retired_ports.get(port, []))
        counts[(kinds[(b, be)], conn, when, "retired later" if later else "")] += 1
    hit = sum(counts.values())
    print(f"{cell}: {hit} of {total} requests sent during trouble went to a replica in it "
          f"({hit / total if total else float('nan'):.3f})")
    for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {v:5d} {v / hit:6.1%}  {k[0]:4s} {k[1]:4s} {k[2]:>6s}  {k[3]}")
    for part in ("slow", "tail"):
        for conn in ("kept", "new"):
            v = sum(n for k, n in counts.items() if k[0] == part and k[1] == conn)
            print(f"  {part} {conn}: {v} ({v / hit if hit else 0:.1%})")


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: l3_trace.py DIR SCENARIO.MODE.ALGO.RUN [--step S | --why]")
    d, cell = sys.argv[1], sys.argv[2]
    if sys.argv[3:4] == ["--why"]:
        why(d, cell)
        return
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
