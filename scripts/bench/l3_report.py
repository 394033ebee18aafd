#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarise a `make bench-l3` result directory.

Input: DIR/<scenario>.<mode>.<algorithm>.<run>.csv written by xm-load rr --csv or
tests/tools/urllib3_pool.py (t,latency_ms,backend,ok,new_conn,err[,retried,lport...];
t < 0 is warm-up and ignored). `retried` requests were sent again after their
pooled connection turned out closed: a client that does not retry would have
seen each as an error. "trouble" is the share of the requests sent while some
replica was in trouble (per `xm-serve scenario --dump`: p99 >= 3x its calmest,
lower success, or down) that went to a replica in trouble at that moment.
Output: a table on stdout, DIR/summary.csv, DIR/summary.md, per-second
series DIR/series/*.dat and one gnuplot PNG per scenario and client mode
(latency over time and per-replica share over time, one row per algorithm).
Every request that timed out gets a line under the table saying why, from
the client's CSV (its connection's port, when it was written), the replicas'
logs (DIR/<cell>.b<i>.requests: port, arrival, delay drawn) and the agent's
log of retirements (client port, which pass): the replica drew a delay past
the client's timeout (the scenario's own tail, also seen with round-robin);
its connection was retired around it (a retirement left it unanswered: a
bug); or neither (unexplained). Columns "timeouts" / "unexplained" count
them, "cut" the requests a replica had in service when their connection
closed, other than those the client gave up on (these three: sums over the
runs, rare events a median would hide).
Last line: "bench l3: key=value ...".
"""
import datetime
import collections
import csv
import glob
import math
import os
import re
import statistics
import subprocess
import sys

REPLICAS = 9


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = max(0, min(len(sorted_vals) - 1, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[i]


def load(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            t = float(r["t"])
            rows.append((t, float(r["latency_ms"]), int(r["backend"]), r["ok"] == "1",
                         r.get("retried") == "1"))
    return rows


def trouble_windows(scen):
    """{0.5 s bin: set of replicas in trouble} from the scenario's timeline."""
    tool = os.environ.get("XM_TOOLS", os.path.join(os.path.dirname(__file__), "../../build/tests"))
    path = os.path.join(os.path.dirname(__file__), "../../scenarios", scen + ".json")
    try:
        out = subprocess.run([os.path.join(tool, "xm-serve"), "scenario", "--dump", "--scenario", path],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    rows = list(csv.DictReader(out.splitlines()))
    calm = collections.defaultdict(lambda: float("inf"))
    best = collections.defaultdict(float)
    for r in rows:
        calm[r["replica"]] = min(calm[r["replica"]], float(r["p99_ms"]))
        best[r["replica"]] = max(best[r["replica"]], float(r["success"]))
    bins = collections.defaultdict(set)
    for r in rows:
        rep_ = r["replica"]
        if (float(r["p99_ms"]) >= 3 * calm[rep_] or float(r["success"]) < best[rep_] - 0.01
                or r["down"] == "1"):
            bins[int(float(r["t"]) * 2)].add(int(rep_))
    return bins


def trouble_share(rows, bins):
    sent = hit = 0
    for r in rows:
        if r[0] < 0:
            continue
        bad = bins.get(int(r[0] * 2))
        if not bad:
            continue
        sent += 1
        hit += r[2] in bad
    return hit / sent if sent else float("nan")


def metrics(rows):
    rows = [r for r in rows if r[0] >= 0]
    lat = sorted(r[1] for r in rows if r[3])
    n = len(rows)
    ok = sum(1 for r in rows if r[3])
    return {
        "requests": n,
        "success": ok / n if n else float("nan"),
        "p50": pct(lat, 0.5),
        "p99": pct(lat, 0.99),
        "p999": pct(lat, 0.999),
        "retried": sum(1 for r in rows if r[4]),
    }


def series(rows, step=1.0):
    """Per time bin: p50, p99 of successful latencies and share per replica."""
    bins = collections.defaultdict(list)
    for r in rows:
        if r[0] >= 0:
            bins[int(r[0] // step)].append(r)
    out = []
    full = statistics.median(len(v) for v in bins.values()) if bins else 0
    for b in sorted(bins):
        rs = bins[b]
        if len(rs) < full / 3:  # a partial bin at the end
            continue
        lat = sorted(r[1] for r in rs if r[3])
        share = [0.0] * REPLICAS
        for r in rs:
            if 0 <= r[2] < REPLICAS:
                share[r[2]] += 1
        tot = sum(share) or 1
        out.append((b * step, pct(lat, 0.5), pct(lat, 0.99), [s / tot for s in share]))
    return out


def halving_time(rows, replica, t_step, step=0.5, hold=2.0):
    """Seconds after t_step until the replica's share of requests (by send
    time, 0.5 s bins) falls to half its share over the 10 s before the step
    and stays at or below half for the next `hold` seconds."""
    before = [r for r in rows if t_step - 10 <= r[0] < t_step]
    if not before:
        return float("nan")
    base = sum(1 for r in before if r[2] == replica) / len(before)
    bins = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        if r[0] >= t_step:
            b = int((r[0] - t_step) // step)
            bins[b][1] += 1
            bins[b][0] += r[2] == replica
    last = max(bins) if bins else -1

    def low(b):
        hit, tot = bins.get(b, (0, 0))
        return tot > 0 and hit / tot <= base / 2
    n = int(hold / step)
    for b in range(0, last - n + 1):
        if all(low(k) for k in range(b, b + n + 1)):
            return (b + 1) * step
    return float("inf")


# The client's timeout (scripts/bench/l3.sh: xm-load --timeout XM_BENCH_TIMEOUT).
CLIENT_TIMEOUT_S = float(os.environ.get("XM_BENCH_TIMEOUT", "5"))
# The agent's line per retired connection (user/agent/rebalance.c, log_retired).
RETIRED_RE = re.compile(r"^(\S+)Z debug: rebalance: retired [0-9a-f.:]+:(\d+) -> (\S+) "
                        r"\(backend id (\d+), cookie \d+\) by (.+)$")


def read_csv(path):
    try:
        with open(path) as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def retirements(log, start):
    """[(t from the start, client port, backend address, pass)] from an agent log."""
    out = []
    try:
        with open(log) as f:
            for line in f:
                m = RETIRED_RE.search(line)
                if not m:
                    continue
                t = datetime.datetime.fromisoformat(m.group(1)).replace(
                    tzinfo=datetime.timezone.utc).timestamp() - start
                out.append((t, int(m.group(2)), m.group(3), m.group(5)))
    except OSError:
        pass
    return out


def cut_in_service(path):
    """Requests a replica had in service when their connection went (its log says "gone"),
    other than those the client had given up on (a timeout closes the connection)."""
    cell = path[:-4]
    gave_up = {int(r["lport"]) for r in read_csv(path)
                if r.get("err") == "timeout" and r.get("lport")}
    return sum(1 for i in range(REPLICAS) for r in read_csv(f"{cell}.b{i}.requests")
               if r["outcome"] == "gone" and int(r["peer_port"]) not in gave_up)


def explain_timeouts(path):
    """[(unexplained or a retirement: bool, line)] for each request of a run that timed out."""
    cell = path[:-4]
    touts = [r for r in read_csv(path) if r.get("err") == "timeout" and float(r["t"]) >= 0]
    if not touts:
        return []
    try:
        with open(cell + ".start") as f:
            start = float(f.read())
    except (OSError, ValueError):
        start = None
    served = [(i, float(r["t"]), int(r["peer_port"]), float(r["delay_ms"]), r["outcome"])
              for i in range(REPLICAS) for r in read_csv(f"{cell}.b{i}.requests")]
    retired = retirements(cell + ".agent.log", start) if start is not None else []
    out = []
    for r in touts:
        due, port = float(r["t"]), int(r.get("lport") or 0)
        head = f"{os.path.basename(cell)}: request due at {due:.3f} s"
        if not port or not r.get("sent") or not served:
            out.append((True, f"{head}: no port, send time or replica log recorded: not known"))
            continue
        sent = float(r["sent"])
        head += f", written at {sent:.3f} s on port {port}"
        # its arrival: the replica's record on that port nearest the write (the one
        # before on the connection arrived before its own answer, so before the write)
        got = sorted((x for x in served if x[2] == port and sent - 0.05 <= x[1] <= due + CLIENT_TIMEOUT_S),
                     key=lambda x: abs(x[1] - sent))
        near = [x for x in retired if x[1] == port and sent - 1 <= x[0] <= due + CLIENT_TIMEOUT_S]
        if got and got[0][3] >= CLIENT_TIMEOUT_S * 1e3 - (got[0][1] - due) * 1e3:
            i, t, _, delay, outcome = got[0]
            out.append((bool(near), f"{head}: replica {i} got it at {t:.3f} s and drew a delay of "
                        f"{delay:.0f} ms, past the client's {CLIENT_TIMEOUT_S:g} s ({outcome}): the "
                        "scenario's own tail, not a retirement" +
                        (f" (but its connection was retired at {near[0][0]:.3f} s)" if near else "")))
        elif near:
            t, _, be, why = near[0]
            out.append((True, f"{head}: its connection to {be} was retired at {t:.3f} s by {why} "
                        f"pass ({(t - sent) * 1e3:+.1f} ms from the write)" +
                        (f"; replica {got[0][0]} got it ({got[0][4]})" if got else
                         "; no replica got it") + ": A RETIREMENT LEFT IT UNANSWERED"))
        elif got:
            i, t, _, delay, outcome = got[0]
            out.append((True, f"{head}: replica {i} got it at {t:.3f} s, delay {delay:.0f} ms "
                        f"({outcome}), no retirement: UNEXPLAINED"))
        else:
            out.append((True, f"{head}: no replica got it and no retirement of its port: "
                        "UNEXPLAINED"))
    return out


# The agent's closing line: "... N connections retired on E read events (...), M by the urgent_ms poll"
FAST_RE = re.compile(r"far slower backends: (\d+) connections retired on \d+ read events.*, "
                     r"(\d+) by the urgent_ms poll")


def fast_path_retired(log):
    """(retired at read events, retired by the poll) of one run; 0, 0 without the line."""
    try:
        with open(log) as f:
            for line in f:
                m = FAST_RE.search(line)
                if m:
                    return int(m.group(1)), int(m.group(2))
    except OSError:
        return float("nan"), float("nan")
    return 0, 0


def fmt(v, d=1):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return "n/a" if math.isnan(v) else "never"
    return f"{v:.{d}f}"


def plot(d, scen, mode, algos, runs_series):
    sdir = os.path.join(d, "series")
    os.makedirs(sdir, exist_ok=True)
    files = []
    for a in algos:
        ser = runs_series.get(a)
        if not ser:
            continue
        p = os.path.join(sdir, f"{scen}.{mode}.{a}.dat")
        with open(p, "w") as f:
            f.write("# t p50_ms p99_ms " + " ".join(f"share{i}" for i in range(REPLICAS)) + "\n")
            for t, p50, p99, share in ser:
                f.write(f"{t} {p50:.3f} {p99:.3f} " + " ".join(f"{s:.4f}" for s in share) + "\n")
        files.append((a, p))
    if not files:
        return None
    png = os.path.join(d, f"{scen}.{mode}.png")
    n = len(files)
    g = [f'set terminal pngcairo size 1400,{260 * n + 60} font ",9"',
         f"set output '{png}'",
         f"set multiplot layout {n},2 title '{scen}, {mode} connections (first run of each algorithm)'",
         "set key outside right", "set grid", "set xlabel 't (s)'"]
    for a, p in files:
        g += ["set ylabel 'latency (ms)'", "set logscale y", f"set title '{a}: p50 and p99 per second'",
              f"plot '{p}' u 1:2 w l t 'p50', '' u 1:3 w l t 'p99'",
              "unset logscale y", "set ylabel 'share'", "set yrange [0:1]",
              f"set title '{a}: share of requests per replica'"]
        # Stacked shares: replica i plotted as the cumulative sum up to i.
        cols = []
        for i in range(REPLICAS - 1, -1, -1):
            expr = "+".join(f"${4 + k}" for k in range(i + 1))
            cols.append(f"'{p}' u 1:({expr}) w filledcurves x1 t 'r{i}'")
        g += ["plot " + ", ".join(cols), "unset yrange"]
    g.append("unset multiplot")
    try:
        subprocess.run(["gnuplot"], input="\n".join(g), text=True, check=True,
                       stderr=subprocess.PIPE)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"gnuplot failed for {png}: {e}", file=sys.stderr)
        return None
    return png


def main():
    d = sys.argv[1]
    step_at = {"step": (1, 15.0), "e2e-step": (2, 6.0)}
    runs = collections.defaultdict(list)  # (scen, mode, algo) -> [metrics]
    halves = collections.defaultdict(list)
    first_series = collections.defaultdict(dict)
    windows = {}
    order = []
    timeout_lines = []
    for path in sorted(glob.glob(os.path.join(d, "*.csv"))):
        base = os.path.basename(path)[:-4]
        if base == "summary":
            continue
        # <scenario>.<mode>.<algorithm>.<run>: a variant's algorithm may hold dots
        # (l3x+rb~rb:fast_factor=1.5), scenarios, modes and runs do not
        parts = base.split(".", 2)
        if len(parts) != 3 or "." not in parts[2]:
            print(f"l3_report: {base}.csv: not <scenario>.<mode>.<algorithm>.<run>, left out",
                  file=sys.stderr)
            continue
        scen, mode = parts[0], parts[1]
        algo, _, run = parts[2].rpartition(".")
        rows = load(path)
        if scen not in windows:
            windows[scen] = trouble_windows(scen)
        m = metrics(rows)
        m["trouble"] = trouble_share(rows, windows[scen])
        m["at_read"], m["at_poll"] = fast_path_retired(path[:-4] + ".agent.log")
        why = explain_timeouts(path)
        m["timeouts"] = len(why)
        m["unexplained"] = sum(1 for bad, _ in why if bad)
        m["cut"] = cut_in_service(path)
        timeout_lines.extend(line for _, line in why)
        runs[(scen, mode, algo)].append(m)
        if scen in step_at:
            halves[(scen, mode, algo)].append(halving_time(rows, *step_at[scen]))
        if algo not in first_series[(scen, mode)] or run == "1":
            first_series[(scen, mode)][algo] = series(rows)
        if (scen, mode) not in order:
            order.append((scen, mode))
    known = ["round-robin", "l3", "l3-peak", "c3", "l3x", "l3x+rb"]
    algos_all = sorted({k[2] for k in runs}, key=lambda a: known.index(a) if a in known else 99)

    summary = []
    for scen, mode in order:
        med = {}
        for a in algos_all:
            ms = runs.get((scen, mode, a))
            if not ms:
                continue
            m = {k: statistics.median([x[k] for x in ms])
                 for k in ("p50", "p99", "p999", "success", "retried", "trouble", "at_read",
                           "at_poll")}
            for k in ("timeouts", "unexplained", "cut"):
                m[k] = sum(x[k] for x in ms)
            m["runs"] = len(ms)
            m["requests"] = int(statistics.median([x["requests"] for x in ms]))
            hv = halves.get((scen, mode, a))
            m["halve_s"] = statistics.median(hv) if hv else float("nan")
            med[a] = m
        rr = med.get("round-robin")
        for a, m in med.items():
            m["p99_vs_rr"] = m["p99"] / rr["p99"] if rr and rr["p99"] > 0 else float("nan")
            m["p999_vs_rr"] = m["p999"] / rr["p999"] if rr and rr["p999"] > 0 else float("nan")
            m["trouble_vs_rr"] = (m["trouble"] / rr["trouble"]
                                  if rr and rr["trouble"] > 0 else float("nan"))
            summary.append((scen, mode, a, m))

    hdr = ["scenario", "mode", "algorithm", "runs", "p50_ms", "p99_ms", "p999_ms", "success",
           "p99/rr", "p999/rr", "halve_s", "trouble", "trouble/rr", "retried", "at read",
           "at poll", "timeouts", "unexplained", "cut"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    with open(os.path.join(d, "summary.csv"), "w") as f:
        f.write(",".join(hdr) + "\n")
        for scen, mode, a, m in summary:
            vals = [scen, mode, a, str(m["runs"]), fmt(m["p50"]), fmt(m["p99"]), fmt(m["p999"]),
                    fmt(m["success"] * 100, 2) + "%", fmt(m["p99_vs_rr"], 2), fmt(m["p999_vs_rr"], 2),
                    fmt(m["halve_s"]), fmt(m["trouble"], 3), fmt(m["trouble_vs_rr"], 2),
                    str(int(m["retried"])), fmt(m["at_read"], 0), fmt(m["at_poll"], 0),
                    fmt(m["timeouts"], 0), fmt(m["unexplained"], 0), fmt(m["cut"], 0)]
            f.write(",".join(vals) + "\n")
            lines.append("| " + " | ".join(vals) + " |")
    if timeout_lines:
        lines += ["", "Timeouts (no answer within the client's timeout), one line each:", ""]
        lines += ["- " + t for t in timeout_lines]
    table = "\n".join(lines)
    pngs = [plot(d, s, mo, algos_all, first_series[(s, mo)]) for s, mo in order]
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write(table + "\n\n")
        for p in pngs:
            if p:
                f.write(f"![{os.path.basename(p)}]({os.path.basename(p)})\n")
    print(table)

    # Headline numbers: geometric mean over scenario x mode of p99 ratios.
    def gmean_ratio(a, b):
        rs = []
        for scen, mode in order:
            ma = next((m for s, mo, x, m in summary if (s, mo, x) == (scen, mode, a)), None)
            mb = next((m for s, mo, x, m in summary if (s, mo, x) == (scen, mode, b)), None)
            if ma and mb and ma["p99"] > 0 and mb["p99"] > 0:
                rs.append(math.log(ma["p99"] / mb["p99"]))
        return math.exp(sum(rs) / len(rs)) if rs else float("nan")

    def gmean_ratio_modes(a, b, pick):
        rs = []
        for scen, mode in order:
            if not pick(mode):
                continue
            ma = next((m for s, mo, x, m in summary if (s, mo, x) == (scen, mode, a)), None)
            mb = next((m for s, mo, x, m in summary if (s, mo, x) == (scen, mode, b)), None)
            if ma and mb and ma["p99"] > 0 and mb["p99"] > 0:
                rs.append(math.log(ma["p99"] / mb["p99"]))
        return math.exp(sum(rs) / len(rs)) if rs else float("nan")

    kv = []
    for a in algos_all:
        if a != "round-robin":
            kv.append(f"p99_{a}_vs_rr={fmt(gmean_ratio(a, 'round-robin'), 3)}")
            if any(mo != "new" for _, mo in order):
                kv.append(f"p99_{a}_vs_rr_pooled="
                          f"{fmt(gmean_ratio_modes(a, 'round-robin', lambda mo: mo != 'new'), 3)}")
    for a in ("l3", "c3"):
        if "l3x" in algos_all and a in algos_all:
            kv.append(f"p99_l3x_vs_{a}={fmt(gmean_ratio('l3x', a), 3)}")
    for scen, mode, a, m in summary:
        if scen == "step" and mode == "new":
            kv.append(f"halve_s_{a}={fmt(m['halve_s'])}")
    print("bench l3: " + " ".join(kv))


if __name__ == "__main__":
    main()
