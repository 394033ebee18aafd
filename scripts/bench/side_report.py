#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Report of scripts/bench/side.sh: per round the xmesh / direct ratio of p50
and of CPU per request (both sides ran at the same time), medians and
quartiles over rounds, for the CPU ratio a 95 % bootstrap interval of the
median and the rounds' min-max, the load average, and the `bench side:` line.

    scripts/bench/side_report.py RESULTS_DIR
"""
import csv
import os
import random
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from overhead_report import num, quartiles  # noqa: E402


def median_interval(xs, n=2000, seed=1):
    """95 % percentile-bootstrap interval of the median of xs (a fixed seed:
    the same rounds give the same interval)."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def main():
    out = sys.argv[1]
    rows = list(csv.DictReader(open(os.path.join(out, "raw.tsv")), delimiter="\t"))
    runs = {}
    for r in rows:
        done = num(r["completed"]) or 0
        runs[(r["topo"], r["workload"], r["round"], r["side"])] = {
            "p50": num(r["p50_us"]),
            "cpu": num(r["cpu_us"]) / done if done and num(r["cpu_us"]) is not None else None,
            "load": num(r["load1"]), "errors": num(r["errors"]) or 0, "cmd": r["cmd"],
        }
    cases = sorted({(t, w) for t, w, _, _ in runs}, key=lambda k: (k[0], k[1]))
    md = ["# xmesh and no mesh side by side", "", "```",
          open(os.path.join(out, "env.txt")).read().strip(), "```", "",
          "Both sides run at the same time in one world, each in its own cgroups (xmesh: "
          "below the agents' cgroups, to a VIP; direct: outside, to the pod IP). CPU = the "
          "two cgroups' own CPU time (client + server) per completed request, µs. Ratio = "
          "xmesh / direct of the same round; median [25th-75th percentile] over rounds; "
          "for the CPU ratio also a 95 % bootstrap interval of the median and the min-max "
          "of the rounds.", "",
          "| topology | workload | rounds | direct p50 µs | xmesh p50 µs | p50 ratio | "
          "direct CPU µs/req | xmesh CPU µs/req | CPU ratio | CPU ratio: median 95 % | "
          "min-max | errors | load average (1 min) |",
          "|---|---|---:|---:|---:|---|---:|---:|---|---|---|---:|---|"]
    summ = []
    for t, w in cases:
        rounds = sorted({k[2] for k in runs if k[:2] == (t, w)}, key=int)
        pairs = [(runs[(t, w, r, "xmesh")], runs[(t, w, r, "direct")]) for r in rounds
                 if (t, w, r, "xmesh") in runs and (t, w, r, "direct") in runs]
        cells, spread = {}, "– | –"
        for f in ("p50", "cpu"):
            rs = [a[f] / b[f] for a, b in pairs if a[f] and b[f]]
            cells[f] = quartiles(rs) if rs else None
            if f == "cpu" and rs:
                lo, hi = median_interval(rs)
                spread = f"{lo:.3f}-{hi:.3f} | {min(rs):.3f}-{max(rs):.3f}"
        med = (lambda side, f: statistics.median(
            [p[side][f] for p in pairs if p[side][f] is not None] or [0]))
        loads = [a["load"] for a, _ in pairs if a["load"] is not None]
        errs = sum(a["errors"] + b["errors"] for a, b in pairs)
        fq = (lambda q: "–" if not q else f"{q[0]:.3f} [{q[1]:.3f}-{q[2]:.3f}]")
        md.append(f"| {t} | {w} | {len(pairs)} | {med(1, 'p50'):.1f} | {med(0, 'p50'):.1f} | "
                  f"{fq(cells['p50'])} | {med(1, 'cpu'):.1f} | {med(0, 'cpu'):.1f} | "
                  f"{fq(cells['cpu'])} | {spread} | {errs:.0f} | "
                  f"{min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f}) |"
                  if loads else "")
        tag = f"{t}_{w.replace('@', '_')}"
        if cells["p50"]:
            summ.append(f"{tag}_p50={cells['p50'][0]:.3f}")
        if cells["cpu"]:
            summ.append(f"{tag}_cpu={cells['cpu'][0]:.3f}")
            summ.append(f"{tag}_cpu_ci={spread.split(' |')[0]}")
    cf = os.path.join(out, "counters.txt")
    if os.path.exists(cf):
        md += ["", "xmesh counters at the end (connections balanced, sockets redirected):", "",
               "```", open(cf).read().strip(), "```"]
    md += ["", "Each run's command: raw.tsv (last column).", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"results: {out}")
    print("bench side: " + " ".join(summ))


if __name__ == "__main__":
    main()
