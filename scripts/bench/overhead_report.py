#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn the raw runs of scripts/bench/overhead.sh into medians, a Markdown
table, gnuplot PNGs and the `bench overhead:` summary line.

    scripts/bench/overhead_report.py RESULTS_DIR

Reads RESULTS_DIR/raw.tsv (one line per run, with the command that made it)
and writes report.md, medians.tsv, *.dat, plots.gp and *.png next to it.
"""
import csv
import os
import statistics
import subprocess
import sys

MODE_ORDER = ["direct", "svc", "sidecar-tcp", "sidecar-http", "nodeproxy", "xmesh"]
MODE_TITLE = {
    "direct": "no mesh, pod IP",
    "svc": "no mesh, nft DNAT VIP",
    "sidecar-tcp": "sidecar HAProxy TCP",
    "sidecar-http": "sidecar HAProxy HTTP",
    "nodeproxy": "node proxy HAProxy TCP",
    "xmesh": "xmesh",
}
TOPO_TITLE = {"1node": "same node", "2node": "across two nodes",
              "vxlan": "across two nodes, VXLAN overlay"}
BASE = "direct"


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def wl_key(w):
    """Sort workloads by family, then fixed rates ascending, then max."""
    fam, _, load = w.partition("@")
    order = {"tcp64": 0, "tcp4k": 1, "http64": 2, "conn64": 3}
    if load == "max":
        rate = float("inf")
    else:
        rate = float(load.rstrip("k")) * (1000 if load.endswith("k") else 1)
    return (order.get(fam, 9), fam, rate)


def load_rate(w):
    load = w.partition("@")[2]
    if load == "max":
        return None
    return float(load.rstrip("k")) * (1000 if load.endswith("k") else 1)


def fmt(v, nd=1):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


def pct(v, base):
    if v is None or base in (None, 0):
        return None
    return (v - base) / base * 100.0


def fpct(v):
    return "–" if v is None else f"{v:+.0f}%"


def quartiles(xs):
    """Median and the 25th/75th percentiles (inclusive method) of xs."""
    xs = sorted(xs)
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[1], q[0], q[2]


def paired_ratios(groups, topos, modes):
    """Each mode against direct and svc *of the same repetition*: the modes of
    one repetition run back to back, so a pair shares the machine's load far
    more than medians over the whole run do. Median ratio, quartiles and the
    number of pairs; p50 and CPU per request (test cgroup's own CPU time)."""
    runs = {}
    for (t, mo, w), g in groups.items():
        for r in g["runs"]:
            runs[(t, mo, w, r["rep"])] = r
    md = ["## Paired ratios (same repetition), median [25th-75th percentile] of the pairs", "",
          "Each repetition runs every mode back to back (order rotated), so a mode and its "
          "baseline of one repetition see about the same load from the rest of the machine; "
          "the ratio of the pair cancels what they share. CPU = the test cgroup's own CPU time "
          "per completed request (client, servers, proxies, agent; softirq work done in their "
          "context included, ksoftirqd's not). other load: median CPUs busy outside the test "
          "cgroup during the mode's runs.", "",
          "| topology | workload | mode | vs | pairs | p50 ratio | CPU/req ratio | other load |",
          "|---|---|---|---|---:|---|---|---:|"]
    wls = sorted({k[2] for k in groups}, key=wl_key)
    for t in topos:
        for w in wls:
            for mo in modes:
                for base in (BASE, "svc"):
                    if mo in (BASE, base):
                        continue
                    pairs = [(runs[k], runs[(t, base, w, k[3])]) for k in runs
                             if k[:3] == (t, mo, w) and (t, base, w, k[3]) in runs]
                    if not pairs:
                        continue
                    cells = []
                    for f in ("p50", "cpu"):
                        rs = [a[f] / b[f] for a, b in pairs if a[f] and b[f]]
                        if rs:
                            q50, q25, q75 = quartiles(rs)
                            cells.append(f"{q50:.3f} [{q25:.3f}-{q75:.3f}]")
                        else:
                            cells.append("–")
                    other = med([a["other"] for a, _ in pairs])
                    md.append(f"| {t} | {w} | {mo} | {base} | {len(pairs)} | {cells[0]} | "
                              f"{cells[1]} | {fmt(other, 2)} |")
    return md + [""]


def main():
    out = sys.argv[1]
    rows = list(csv.DictReader(open(os.path.join(out, "raw.tsv")), delimiter="\t"))
    groups = {}
    for r in rows:
        k = (r["topo"], r["mode"], r["workload"])
        g = groups.setdefault(k, {"runs": [], "cmd": r["cmd"]})
        done = num(r["completed"]) or 0
        per = (lambda f: num(r[f]) / done if done and num(r[f]) is not None else None)
        wall = num(r.get("wall_us"))
        busy, cg = num(r["node_busy_us"]), num(r["cg_usage_us"])
        # CPUs kept busy by everything outside the test cgroup during the run
        other = ((busy - cg) / wall if wall and busy is not None and cg is not None else None)
        g["runs"].append({
            "rps": num(r["rps"]), "p50": num(r["p50_us"]), "p99": num(r["p99_us"]),
            "p999": num(r["p999_us"]), "cpu": per("cg_usage_us"), "user": per("cg_user_us"),
            "sys": per("cg_sys_us"), "softirq": per("softirq_us"), "busy": per("node_busy_us"), "other": other, "lag": num(r.get("lag_p99_us")),
            "errors": num(r["errors"]),
            "rep": r["rep"],
        })
    m = {}
    for k, g in groups.items():
        m[k] = {f: med([x[f] for x in g["runs"]]) for f in
                ("rps", "p50", "p99", "p999", "cpu", "user", "sys", "softirq", "busy", "other",
                 "lag")}
        m[k]["errors"] = sum(x["errors"] or 0 for x in g["runs"])
        m[k]["n"] = len(g["runs"])
        m[k]["cmd"] = g["cmd"]

    topos = [t for t in ("1node", "2node", "vxlan") if any(k[0] == t for k in m)]
    modes = [x for x in MODE_ORDER if any(k[1] == x for k in m)]
    env = open(os.path.join(out, "env.txt")).read() if os.path.exists(
        os.path.join(out, "env.txt")) else ""

    md = ["# Mesh overhead", "", "```", env.strip(), "```", "",
          "Medians over repetitions (modes interleaved, order rotated per repetition). "
          "Latency in µs from the scheduled send time (open loop); `@max` rows are closed loop "
          f"(16 connections) and their latency is the closed-loop latency at saturation. "
          "CPU = test cgroup (client, servers, proxies, agent) µs per request, user/system; "
          "softirq = machine-wide /proc/stat softirq µs per request (includes other work on "
          "the machine). Δ columns: against `direct` (no mesh, pod IP) of the same workload. "
          "other load: CPUs busy outside the test cgroup during the run (/proc/stat busy minus "
          "the cgroup's usage, over wall time; 2 CPUs in all): other people's work, "
          "ksoftirqd, the shell. send lag p99: how late the generator itself sent (timer "
          "wake-up, waiting for a free connection), 99th percentile, µs; it is part of the "
          "latency, and when it is close to p99 the tail is the machine's, not the path's.",
          ""]
    with open(os.path.join(out, "medians.tsv"), "w") as f:
        f.write("topo\tmode\tworkload\trps\tp50_us\tp99_us\tp999_us\tcpu_us_per_req\t"
                "user_us_per_req\tsys_us_per_req\tsoftirq_us_per_req\tmachine_busy_us_per_req\t"
                "other_load_cpus\tsend_lag_p99_us\terrors\truns\tcmd\n")
        for k in sorted(m, key=lambda k: (k[0], wl_key(k[2]), MODE_ORDER.index(k[1]))):
            v = m[k]
            f.write("\t".join([k[0], k[1], k[2]] + [
                "NA" if v[x] is None else f"{v[x]:.3f}" for x in
                ("rps", "p50", "p99", "p999", "cpu", "user", "sys", "softirq", "busy",
                 "other", "lag")] +
                [str(int(v["errors"])), str(v["n"]), v["cmd"]]) + "\n")

    # Compact summary (what docs/benchmarks.md quotes)
    md += ["## Summary", ""]
    for t in topos:
        md += [f"{TOPO_TITLE[t]}:", "",
               "| mode | tcp64@5k p50 / p99 µs | CPU µs/req | http64@5k p50 / p99 µs | "
               "CPU µs/req | conn64@1k p50 µs | CPU µs/req | tcp64@max rps | "
               "http64@max rps (wrk) |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for mo in modes:
            def g(w, f, nd=0):
                v = m.get((t, mo, w))
                return "–" if not v or v[f] is None else f"{v[f]:,.{nd}f}"
            md.append(f"| {mo} | {g('tcp64@5k', 'p50', 1)} / {g('tcp64@5k', 'p99')} | "
                      f"{g('tcp64@5k', 'cpu', 1)} | {g('http64@5k', 'p50', 1)} / "
                      f"{g('http64@5k', 'p99')} | {g('http64@5k', 'cpu', 1)} | "
                      f"{g('conn64@1k', 'p50')} | {g('conn64@1k', 'cpu')} | "
                      f"{g('tcp64@max', 'rps')} | {g('http64@max', 'rps')} |")
        md.append("")

    # MeshInsight-style: what each mode adds over no mesh, at fixed load
    key_wls = ["tcp64@5k", "tcp4k@5k", "http64@5k", "conn64@1k"]
    md += ["## Overhead against no mesh (direct), at fixed load", "",
           "Added latency (µs, and % of direct) and added CPU per request (µs, %); "
           "max-throughput ratio from the `@max` rows of the same family.", "",
           "| topology | workload | mode | +p50 µs | +p50 % | +p99 µs | +p99 % | "
           "+CPU µs/req | +CPU % | max rps / direct |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in topos:
        for w in key_wls:
            b = m.get((t, BASE, w))
            if not b:
                continue
            fam = w.partition("@")[0]
            bmax = m.get((t, BASE, fam + "@max"))
            for mo in modes:
                v = m.get((t, mo, w))
                if mo == BASE or not v:
                    continue
                vmax = m.get((t, mo, fam + "@max"))
                ratio = (f"{vmax['rps'] / bmax['rps']:.2f}" if vmax and bmax and
                         vmax["rps"] and bmax["rps"] else "–")
                dd = (lambda f: None if v[f] is None or b[f] is None else v[f] - b[f])
                md.append(f"| {t} | {w} | {mo} | {fmt(dd('p50'))} | "
                          f"{fpct(pct(v['p50'], b['p50']))} | {fmt(dd('p99'))} | "
                          f"{fpct(pct(v['p99'], b['p99']))} | {fmt(dd('cpu'), 2)} | "
                          f"{fpct(pct(v['cpu'], b['cpu']))} | {ratio} |")
    md.append("")

    md += paired_ratios(groups, topos, modes)

    for t in topos:
        md += [f"## {TOPO_TITLE[t]}", "",
               "| workload | mode | rps | p50 | p99 | p99.9 | CPU µs/req (usr/sys) | "
               "softirq µs/req | Δp50 | Δp99 | ΔCPU | errors | other load (CPUs) | send lag p99 |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        wls = sorted({k[2] for k in m if k[0] == t}, key=wl_key)
        for w in wls:
            b = m.get((t, BASE, w))
            for mo in modes:
                v = m.get((t, mo, w))
                if not v:
                    continue
                d50 = pct(v["p50"], b and b["p50"]) if mo != BASE else None
                d99 = pct(v["p99"], b and b["p99"]) if mo != BASE else None
                dc = pct(v["cpu"], b and b["cpu"]) if mo != BASE else None
                cpu = (f"{fmt(v['cpu'], 2)} ({fmt(v['user'], 2)}/{fmt(v['sys'], 2)})"
                       if v["cpu"] is not None else "–")
                md.append(f"| {w} | {mo} | {fmt(v['rps'], 0)} | {fmt(v['p50'])} | "
                          f"{fmt(v['p99'])} | {fmt(v['p999'])} | {cpu} | "
                          f"{fmt(v['softirq'], 2)} | {fpct(d50)} | {fpct(d99)} | "
                          f"{fpct(dc)} | {int(v['errors'])} | {fmt(v['other'], 2)} | "
                          f"{fmt(v['lag'])} |")
        md.append("")

    # ---------------------------------------------------------------- plots
    gp = ["set terminal pngcairo size 1200,560 font 'sans,10' noenhanced", "set grid",
          "set key outside bottom center horizontal"]
    for t in topos:
        tcp_rates = sorted({load_rate(k[2]) for k in m if k[0] == t and
                            k[2].startswith("tcp64@") and load_rate(k[2])})
        if tcp_rates:
            # one file per mode, so that a mode without data shifts nothing
            series = []
            for mo in modes:
                pts = []
                for r in tcp_rates:
                    w = f"tcp64@{int(r / 1000)}k" if r >= 1000 else f"tcp64@{int(r)}"
                    v = m.get((t, mo, w))
                    if v and v["p50"] is not None:
                        pts.append(f"{r:.0f}\t{v['p50']:.2f}\t{v['p99']:.2f}\t{v['p999']:.2f}")
                if not pts:
                    continue
                fn = f"lat-{t}-{mo}.dat"
                with open(os.path.join(out, fn), "w") as f:
                    f.write("# offered_rps\tp50_us\tp99_us\tp999_us\n" + "\n".join(pts) + "\n")
                series.append((fn, mo))
            gp += [f"set output '{out}/lat-{t}.png'",
                   "set multiplot layout 1,2 title "
                   f"'TCP 64 B request/response, open loop, {TOPO_TITLE[t]} (median of reps)'",
                   "set logscale xy", "set xlabel 'offered load (requests/s)'",
                   "set ylabel 'latency (µs)'",
                   "set key inside top left box opaque",
                   "set title 'p50'",
                   "plot " + ", ".join(
                       f"'{out}/{fn}' using 1:2 with linespoints lw 2 pt 7 "
                       f"title '{MODE_TITLE[mo]}'" for fn, mo in series),
                   "set title 'p99 (colours as on the left)'", "unset key",
                   "plot " + ", ".join(
                       f"'{out}/{fn}' using 1:3 with linespoints lw 2 pt 7 "
                       f"title '{MODE_TITLE[mo]}'" for fn, mo in series),
                   "unset multiplot", "unset logscale", "set key"]

        tmodes = [mo for mo in modes if any(k[0] == t and k[1] == mo for k in m)]

        def bars(kind, field, wls, ylabel, title):
            if not wls:
                return []  # a narrowed run (WORKLOADS=) without such rows
            # only modes with a value in this plot: gnuplot stops at an all-NaN column
            pm = [mo for mo in tmodes if any(m.get((t, mo, w)) and m[(t, mo, w)][field]
                                             is not None for w in wls)]
            fn = f"{kind}-{t}.dat"
            with open(os.path.join(out, fn), "w") as f:
                f.write("# workload\t" + "\t".join(pm) + "\n")
                for w in wls:
                    vals = []
                    for mo in pm:
                        v = m.get((t, mo, w))
                        vals.append("NaN" if not v or v[field] is None
                                    else f"{v[field]:.3f}")
                    f.write(w + "\t" + "\t".join(vals) + "\n")
            return [f"set output '{out}/{kind}-{t}.png'", f"set title '{title}'",
                    "set style data histogram", "set style histogram cluster gap 1",
                    "set style fill solid 0.8 border -1", "set boxwidth 0.9",
                    "set xlabel ''", f"set ylabel '{ylabel}'", "set yrange [0:*]",
                    "set key outside bottom center horizontal",
                    "plot " + ", ".join(
                        f"'{out}/{fn}' using {i + 2}:xtic(1) title '{MODE_TITLE[mo]}'"
                        for i, mo in enumerate(pm)),
                    "set yrange [*:*]", "set style data lines"]

        fixed = sorted({k[2] for k in m if k[0] == t and load_rate(k[2])}, key=wl_key)
        maxed = sorted({k[2] for k in m if k[0] == t and not load_rate(k[2])}, key=wl_key)
        gp += bars("cpu", "cpu", fixed, "CPU µs per request (test cgroup)",
                   f"CPU per request at fixed load, {TOPO_TITLE[t]} (median of reps)")
        gp += bars("tput", "rps", maxed, "requests/s",
                   f"Maximum throughput (closed loop, 16 conns), {TOPO_TITLE[t]}")
    with open(os.path.join(out, "plots.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")
    subprocess.run(["gnuplot", os.path.join(out, "plots.gp")], check=False)
    cf = os.path.join(out, "xmesh-counters.txt")
    if os.path.exists(cf):
        md += ["xmesh datapath counters at the end of each xmesh block (both topologies, "
               "all workloads of one repetition):", "", "```", open(cf).read().strip(), "```", ""]
    md += ["## Plots", ""]
    for t in topos:
        for kind in ("lat", "cpu", "tput"):
            if os.path.exists(os.path.join(out, f"{kind}-{t}.png")):
                md.append(f"![{kind} {t}]({kind}-{t}.png)")
    md += ["", "Each row's command: see medians.tsv (last column) and raw.tsv (every run).", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))

    # ---------------------------------------------------------------- summary
    summ = []
    ref = "tcp64@5k"
    for t in topos:
        b = m.get((t, BASE, ref))
        for mo in modes:
            v = m.get((t, mo, ref))
            if mo == BASE or not v or not b:
                continue
            tag = f"{t}_{mo.replace('-', '_')}"
            summ += [f"{tag}_p50={fpct(pct(v['p50'], b['p50']))}",
                     f"{tag}_p99={fpct(pct(v['p99'], b['p99']))}",
                     f"{tag}_cpu={fpct(pct(v['cpu'], b['cpu']))}"]
    print(f"results: {out}")
    print("bench overhead: workload=" + ref + " " + " ".join(summ))


if __name__ == "__main__":
    main()
