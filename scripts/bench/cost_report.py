#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-program BPF cost of the runs of scripts/bench/cost.sh.

    scripts/bench/cost_report.py RESULTS_DIR

Reads RESULTS_DIR/raw.tsv (overhead.sh: one line per run) and
RESULTS_DIR/progstats.tsv (every program of every pin root, listed before and
after each xmesh run while the kernel's run-time statistics were on), and
RESULTS_DIR/ovl-prog.txt (xm-ovl-prog bench). Writes cost.md and prints it,
ending with the `bench cost:` line.
"""
import csv
import json
import os
import re
import sys

from overhead_report import med, num  # one median and one number parser for both reports

TOPO_TITLE = {"1node": "same node", "2node": "two nodes (routed)", "vxlan": "two nodes (VXLAN, overlay cache)"}


def load_raw(d):
    runs = {}
    if not os.path.exists(os.path.join(d, "raw.tsv")):
        return runs  # PARTS without the workloads
    with open(os.path.join(d, "raw.tsv")) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            runs[(r["rep"], r["topo"], r["mode"], r["workload"])] = r
    return runs


def load_progs(d, runs):
    """{(topo, workload): {(node, prog): [(ns_per_req, runs_per_req, ns_per_run), ...]}}"""
    snaps = {}
    path = os.path.join(d, "progstats.tsv")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        for line in f:
            rep, topo, wl, phase, root, js = line.rstrip("\n").split("\t", 5)
            try:
                progs = json.loads(js)["programs"]
            except (ValueError, KeyError):
                continue
            snaps.setdefault((rep, topo, wl, root), {})[phase] = {p["id"]: p for p in progs}
    out = {}
    for (rep, topo, wl, root), ph in snaps.items():
        if "before" not in ph or "after" not in ph:
            continue
        raw = runs.get((rep, topo, "xmesh", wl))
        done = num(raw["completed"]) if raw else None
        if not done:
            continue
        node = os.path.basename(root)
        node = node if re.fullmatch(r"n\d+", node) else "node"
        for pid, a in ph["after"].items():
            b = ph["before"].get(pid, {"run_cnt": 0, "run_time_ns": 0})
            dr, dt = a["run_cnt"] - b["run_cnt"], a["run_time_ns"] - b["run_time_ns"]
            if dr <= 0:
                continue
            key = (node, a["name"])
            out.setdefault((topo, wl), {}).setdefault(key, []).append(
                (dt / done, dr / done, dt / dr))
    return out


def load_profiles(path, units, names=None):
    """Rows "rep kind client-result profile" (JSON): per kind and program, per
    run of the client (ns per unit, runs per unit, ns per run); units(kind,
    result) is how many units (connections, requests, MiB) the run did."""
    per = {}
    for line in open(path):
        _, kind, out, prof = line.rstrip("\n").split("\t", 3)
        try:
            n = units(kind, json.loads(out))
            progs = json.loads(prof)["programs"]
        except (ValueError, KeyError):
            continue
        for p in progs:
            if p["run_cnt"] and (names is None or p["name"] in names):
                per.setdefault(kind, {}).setdefault(p["name"], []).append(
                    (p["run_time_ns"] / n, p["run_cnt"] / n, p["ns_per_run"]))
    return per


def main():
    d = sys.argv[1]
    runs = load_raw(d)
    progs = load_progs(d, runs)
    lines, summary = [], {}
    # wall clock: medians per (topo, workload, mode)
    cells = {}
    for (rep, topo, mode, wl), r in runs.items():
        done = num(r["completed"])
        cpu = num(r["cg_usage_us"]) / done if done else None
        c = cells.setdefault((topo, wl, mode), {"p50": [], "cpu": []})
        c["p50"].append(num(r["p50_us"]))
        c["cpu"].append(cpu)
    topos = [t for t in ("1node", "2node", "vxlan") if any(k[0] == t for k in cells)]
    wls = sorted({k[1] for k in cells})
    lines.append("## Wall clock and CPU (medians; the xmesh runs carry the statistics' own cost)\n")
    lines.append("| topology | workload | mode | p50 (us) | CPU/req (us) | p50 / direct | CPU / direct |")
    lines.append("|---|---|---|---:|---:|---:|---:|")
    for t in topos:
        for wl in wls:
            base = cells.get((t, wl, "direct"))
            for mode in ("direct", "svc", "xmesh"):
                c = cells.get((t, wl, mode))
                if not c:
                    continue
                p50, cpu = med(c["p50"]), med(c["cpu"])
                rp = p50 / med(base["p50"]) if base and p50 and med(base["p50"]) else None
                rc = cpu / med(base["cpu"]) if base and cpu and med(base["cpu"]) else None
                lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    TOPO_TITLE[t], wl, mode, "%.1f" % p50 if p50 else "-",
                    "%.1f" % cpu if cpu else "-", "%.3f" % rp if rp else "-",
                    "%.3f" % rc if rc else "-"))
                if mode == "xmesh" and rp:
                    tag = "%s_%s" % (wl.replace("@", "_"), t)
                    summary["p50_ratio_" + tag] = "%.3f" % rp
                    summary["cpu_ratio_" + tag] = "%.3f" % rc
                svc = cells.get((t, wl, "svc"))
                if mode == "xmesh" and svc and med(svc["p50"]) and p50:
                    summary["p50_vs_svc_%s_%s" % (wl.replace("@", "_"), t)] = \
                        "%.3f" % (p50 / med(svc["p50"]))
    lines.append("")
    lines.append("## BPF cost per program (kernel run-time statistics, medians over repetitions)\n")
    lines.append("| topology | workload | node | program | runs / request | ns / run | ns / request |")
    lines.append("|---|---|---|---|---:|---:|---:|")
    for t in topos:
        for wl in wls:
            per = progs.get((t, wl))
            if not per:
                continue
            total = 0.0
            for (node, name), xs in sorted(per.items(), key=lambda kv: -med([x[0] for x in kv[1]])):
                nreq, rreq, nrun = (med([x[i] for x in xs]) for i in range(3))
                total += nreq
                lines.append("| %s | %s | %s | %s | %.2f | %.0f | %.0f |" % (
                    TOPO_TITLE[t], wl, node, name, rreq, nrun, nreq))
                # kernel names are cut to 15 characters: xm_ovl_pod_ingr(ess)
                if t == "vxlan" and node == "n1" and name.startswith(("xm_ovl_pod_ingr", "xm_ovl_ul_ingr")):
                    summary[("encap" if name.startswith("xm_ovl_pod") else "decap") +
                            "_ns_" + wl.replace("@", "_")] = "%.0f" % nrun
            lines.append("| %s | %s | all | **sum** | | | **%.0f** |" % (TOPO_TITLE[t], wl, total))
            summary["bpf_ns_per_req_%s_%s" % (wl.replace("@", "_"), t)] = "%.0f" % total
    conn = os.path.join(d, "conn.tsv")
    if os.path.exists(conn):
        per = load_profiles(conn, lambda kind, res: res["conns"])
        lines.append("")
        lines.append("## One connection alone (xm-load rr -P label --new: connect, read, close; medians of runs)\n")
        lines.append("| backend | program | runs / connection | ns / run | ns / connection |")
        lines.append("|---|---|---:|---:|---:|")
        for kind in ("local", "remote"):
            total = 0.0
            for name, xs in sorted(per.get(kind, {}).items(), key=lambda kv: -med([x[0] for x in kv[1]])):
                nc, rc, nr = (med([x[i] for x in xs]) for i in range(3))
                total += nc
                lines.append("| %s | %s | %.2f | %.0f | %.0f |" % (kind, name, rc, nr, nc))
                if name == "xm_lb_connect4":
                    summary["conn_%s_connect4_ns" % kind] = "%.0f" % nr
            if per.get(kind):
                lines.append("| %s | **sum** | | | **%.0f** |" % (kind, total))
                summary["conn_%s_bpf_ns" % kind] = "%.0f" % total
    probes = os.path.join(d, "probes.tsv")
    if os.path.exists(probes):
        # per request (steady) or per MiB sent (stream); the probes' two programs
        per = load_profiles(probes, lambda kind, res: res["ok"] if kind == "steady" else
                            res["gbit_s"] * 1e9 / 8 * res["duration_s"] / 2**20,
                            ("xm_lb_egress", "xm_lb_ingress"))
        lines.append("")
        lines.append("## Probes on a remote-style backend (steady: xm-load rr 64 B, 16 connections, "
                     "5,000/s, per request; stream: xm-load stream, per MiB; medians of runs)\n")
        lines.append("| workload | program | runs / unit | ns / run | ns / unit |")
        lines.append("|---|---|---:|---:|---:|")
        for kind, unit in (("steady", "req"), ("stream", "mib")):
            total = 0.0
            for name, xs in sorted(per.get(kind, {}).items()):
                nu, ru, nr = (med([x[i] for x in xs]) for i in range(3))
                total += nu
                lines.append("| %s | %s | %.2f | %.0f | %.0f |" % (kind, name, ru, nr, nu))
            if per.get(kind):
                lines.append("| %s | **sum** | | | **%.0f** |" % (kind, total))
                summary["probes_%s_ns_per_%s" % (kind, unit)] = "%.0f" % total
    ovl = os.path.join(d, "ovl-prog.txt")
    if os.path.exists(ovl):
        enc, dec, floor = [], [], []
        for line in open(ovl):
            m = re.search(r"encap_ns=(\d+) decap_ns=(\d+) learner_ns=\d+ floor_ns=(\d+)", line)
            if m:
                enc.append(int(m.group(1)))
                dec.append(int(m.group(2)))
                floor.append(int(m.group(3)))
        if enc:
            lines.append("")
            lines.append("Overlay fast paths, BPF_PROG_TEST_RUN (median of %d runs of 20 000 single "
                         "runs each): encap %d ns, decap %d ns per 64 B TCP segment; the floor (a "
                         "program that returns at once, as timed by the same harness) %d ns." %
                         (len(enc), med(enc), med(dec), med(floor)))
            summary["testrun_floor_ns"] = med(floor)
            summary["testrun_encap_ns"] = med(enc)
            summary["testrun_decap_ns"] = med(dec)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(d, "cost.md"), "w") as f:
        f.write(text)
    print(text)
    print("bench cost: " + " ".join("%s=%s" % kv for kv in sorted(summary.items())))


main()
