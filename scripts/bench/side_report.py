#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Report of scripts/bench/side.sh: per round the ratios of two sides of p50
and of CPU per request (xmesh / direct, xmesh / svc, svc / direct, ct /
direct: all sides ran at the same time), medians and quartiles over rounds,
the load average, and the `bench side:` line (xmesh / direct keys as before:
TOPO_WORKLOAD_p50, TOPO_WORKLOAD_cpu; the others TOPO_WORKLOAD_A_vs_B_p50 ...).

    scripts/bench/side_report.py RESULTS_DIR
"""
import csv
import json
import os
import random
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from overhead_report import num, quartiles  # noqa: E402


# ratios reported, each of two sides of the same round: (name, numerator, denominator)
PAIRS = (("xmesh/direct", "xmesh", "direct"), ("xmesh/svc", "xmesh", "svc"),
         ("svc/direct", "svc", "direct"), ("ct/direct", "ct", "direct"))
SIDES = ("direct", "xmesh", "svc", "ct")


def pooled(runs, t, w, rounds, a, b):
    """CPU per request of side a over b, each summed over the rounds given:
    the ratio of the two sides' totals, less noisy than a median of per-round
    ratios; its 95 % interval by resampling rounds (fixed seed), and the
    difference in µs per request."""
    def ratio(rs):
        ca = sum(runs[(t, w, r, a)]["cpu_total"] for r in rs)
        da = sum(runs[(t, w, r, a)]["done"] for r in rs)
        cb = sum(runs[(t, w, r, b)]["cpu_total"] for r in rs)
        db = sum(runs[(t, w, r, b)]["done"] for r in rs)
        if not (da and db and cb):
            return None, None
        return (ca / da) / (cb / db), ca / da - cb / db
    point, diff = ratio(rounds)
    if point is None:
        return None
    rng = random.Random(14)
    boot = sorted(x for x in (ratio([rng.choice(rounds) for _ in rounds])[0]
                              for _ in range(2000)) if x is not None)
    return point, boot[int(0.025 * len(boot))], boot[int(0.975 * len(boot)) - 1], diff


def median_interval(xs, n=2000, seed=1):
    """95 % percentile-bootstrap interval of the median of xs (a fixed seed:
    the same rounds give the same interval)."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def prog_costs(out, runs):
    """PROG_STATS=1: per case, node and program, the kernel's run counts and
    run time over the rounds (after - before each round), per xmesh request.
    Tracing programs (xm_redirect_recv, only with the config's
    redirect_recv_counters) run for every side's sockets: listed, left out of
    the total."""
    pf = os.path.join(out, "progstats.tsv")
    if not os.path.exists(pf):
        return [], []
    snaps = {}
    for r in csv.DictReader(open(pf), delimiter="\t"):
        progs = {p["name"]: p for p in json.loads(r["progs"])["programs"]}
        snaps[(r["topo"], r["workload"], r["round"], r["node"], r["when"])] = progs
    tot = {}
    for (t, w, rnd, node, when), after in snaps.items():
        before = snaps.get((t, w, rnd, node, "before"))
        if when != "after" or before is None or (t, w, rnd, "xmesh") not in runs:
            continue
        for name, p in after.items():
            b = before.get(name)
            if not b:
                continue
            cell = tot.setdefault((t, w, node, name, p["type"]), [0, 0, 0])
            cell[0] += p["run_cnt"] - b["run_cnt"]
            cell[1] += p["run_time_ns"] - b["run_time_ns"]
        reqs = tot.setdefault((t, w, "", "", ""), [0, 0, 0])
        if node == "1":
            reqs[2] += runs[(t, w, rnd, "xmesh")]["done"]
    md = ["", "BPF run-time statistics (PROG_STATS=1), per xmesh request over all rounds: "
          "runs, ns per run, ns per request, per node and program (tracing programs run for "
          "every side: not in the total):", "",
          "| topology | workload | node | program | runs / request | ns / run | ns / request |",
          "|---|---|---|---|---:|---:|---:|"]
    summ = []
    for t, w in sorted({(k[0], k[1]) for k in tot}):
        n = tot[(t, w, "", "", "")][2]
        if not n:
            continue
        total = 0
        for (t2, w2, node, name, typ), (cnt, ns, _) in sorted(tot.items()):
            if (t2, w2) != (t, w) or not name or not cnt:
                continue
            md.append(f"| {t} | {w} | {node} | {name} | {cnt / n:.2f} | {ns / cnt:.0f} | "
                      f"{ns / n:.0f} |")
            if typ not in ("tracing", "raw_tracepoint", "tracepoint"):
                total += ns
        md.append(f"| {t} | {w} | all | **all but tracing** | | | **{total / n:.0f}** |")
        summ.append(f"{t}_{w.replace('@', '_')}_bpf_ns_per_req={total / n:.0f}")
    return md, summ


def fq(q):
    return "–" if not q else f"{q[0]:.3f} [{q[1]:.3f}-{q[2]:.3f}]"


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
            "cpu_total": num(r["cpu_us"]) or 0, "done": done,
        }
    cases = sorted({(t, w) for t, w, _, _ in runs}, key=lambda k: (k[0], k[1]))
    sides = [s for s in SIDES if any(k[3] == s for k in runs)]
    md = ["# xmesh and no mesh side by side", "", "```",
          open(os.path.join(out, "env.txt")).read().strip(), "```", "",
          "Every side runs at the same time in one world, each in its own cgroups (xmesh: "
          "below the agents' cgroups, to a VIP; direct: outside, to the pod IP; both on nodes "
          "without conntrack. svc: to a VIP translated by nftables DNAT, ct: to the pod IP, "
          "both on nodes with the DNAT table, hence conntrack). CPU = the side's cgroups' own "
          "CPU time (client + server) per completed request, µs; p50 in µs. Medians over "
          "rounds.", "",
          "| topology | workload | rounds | " + " | ".join(f"{s} p50 / CPU" for s in sides) +
          " | errors | load average (1 min) |",
          "|---|---|---:|" + "---:|" * len(sides) + "---:|---|"]
    ratios = ["", "Ratios of two sides of the same round: median [25th-75th percentile] over "
              "rounds, p50 / CPU per request.", "",
              "| topology | workload | " + " | ".join(f"{n} p50 | {n} CPU" for n, _, _ in PAIRS)
              + " |", "|---|---|" + "---|---|" * len(PAIRS)]
    pooled_md = ["", "CPU per request pooled over all rounds (each side's CPU time summed over "
                 "the rounds / its requests summed), side over side, with a 95 % interval "
                 "from resampling rounds, and the difference in µs per request:", "",
                 "| topology | workload | " + " | ".join(n for n, _, _ in PAIRS) + " |",
                 "|---|---|" + "---|" * len(PAIRS)]
    spread = ["", "xmesh / direct CPU per request: median of the rounds' ratios, its 95 % "
              "bootstrap interval, and the rounds' min-max:", "",
              "| topology | workload | median | 95 % interval | min-max |", "|---|---|---|---|---|"]
    summ = []
    for t, w in cases:
        rounds = sorted({k[2] for k in runs if k[:2] == (t, w)}, key=int)
        full = [r for r in rounds if all((t, w, r, s) in runs for s in sides)]
        med = (lambda side, f: statistics.median(
            [runs[(t, w, r, side)][f] for r in full if runs[(t, w, r, side)][f] is not None]
            or [0]))
        loads = [runs[(t, w, r, sides[0])]["load"] for r in full
                 if runs[(t, w, r, sides[0])]["load"] is not None]
        errs = sum(runs[(t, w, r, s)]["errors"] for r in full for s in sides)
        cells = " | ".join(f"{med(s, 'p50'):.1f} / {med(s, 'cpu'):.1f}" for s in sides)
        load = (f"{min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f})"
                if loads else "–")
        md.append(f"| {t} | {w} | {len(full)} | {cells} | {errs:.0f} | {load} |")
        tag = f"{t}_{w.replace('@', '_')}"
        rcells = []
        for name, a, b in PAIRS:
            for f in ("p50", "cpu"):
                rs = [runs[(t, w, r, a)][f] / runs[(t, w, r, b)][f] for r in full
                      if a in sides and b in sides and runs[(t, w, r, a)][f]
                      and runs[(t, w, r, b)][f]]
                q = quartiles(rs) if rs else None
                rcells.append(fq(q))
                if q:
                    key = f"{tag}_{f}" if name == "xmesh/direct" else \
                        f"{tag}_{name.replace('/', '_vs_')}_{f}"
                    summ.append(f"{key}={q[0]:.3f}")
                if q and name == "xmesh/direct" and f == "cpu":
                    lo, hi = median_interval(rs)
                    spread.append(f"| {t} | {w} | {q[0]:.3f} | {lo:.3f}-{hi:.3f} | "
                                  f"{min(rs):.3f}-{max(rs):.3f} |")
                    summ.append(f"{tag}_cpu_ci={lo:.3f}-{hi:.3f}")
        ratios.append(f"| {t} | {w} | " + " | ".join(rcells) + " |")
        pcells = []
        for name, a, b in PAIRS:
            pc = pooled(runs, t, w, full, a, b) if a in sides and b in sides else None
            pcells.append("–" if not pc else
                          f"{pc[0]:.3f} [{pc[1]:.3f}-{pc[2]:.3f}] ({pc[3]:+.1f} µs)")
            if pc:
                summ.append(f"{tag}_{name.replace('/', '_vs_')}_cpu_pooled={pc[0]:.3f}")
        pooled_md.append(f"| {t} | {w} | " + " | ".join(pcells) + " |")
    pmd, psumm = prog_costs(out, runs)
    md += ratios + spread + pooled_md + pmd
    summ += psumm
    cf = os.path.join(out, "counters.txt")
    if os.path.exists(cf):
        md += ["", "Counters at the end (xmesh: connections balanced, sockets redirected; "
               "nodes 3-4: conntrack entries):", "", "```", open(cf).read().strip(), "```"]
    md += ["", "Each run's command: raw.tsv (last column).", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"results: {out}")
    print("bench side: " + " ".join(summ))


if __name__ == "__main__":
    main()
