#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-apps: unmodified applications between pods, no mesh (direct),
# sidecars (HAProxy, TCP mode, as overhead.sh builds them) and xmesh, on one
# node and across two: nginx + wrk (64 B responses, 16 connections), Redis +
# redis-benchmark (GET, 16 connections), PostgreSQL + pgbench (select-only,
# 8 connections). Throughput and CPU per request (the test cgroup holds
# client, server, proxies and agent). The worlds, modes and measurement are
# overhead.sh's (APPS=1 puts the application servers on its service port).
#
#   scripts/bench/apps.sh                 # 3 repetitions x 2 s, ~3 min
#   REPS= DUR= MODES= TOPOS= WORKLOADS=   # as overhead.sh
set -eu -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
missing=
for t in /usr/sbin/nginx redis-server redis-benchmark pgbench setpriv; do
	command -v "$t" >/dev/null || missing="$missing $t"
done
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || missing="$missing postgres"
[ -z "$missing" ] || {
	echo "apps: missing:$missing (apt-get install nginx-light redis-server postgresql)" >&2
	exit 1
}
export APPS=1 REPS=${REPS:-3} DUR=${DUR:-2}
export MODES=${MODES:-"direct sidecar-tcp xmesh"}
export TOPOS=${TOPOS:-"1node 2node"}
export WORKLOADS=${WORKLOADS:-"nginx@max redis@max pgbench@max"}
export OUT=${OUT:-$TOP/results/apps-$(date -u +%Y%m%dT%H%M%SZ)}
scripts/bench/overhead.sh >"$OUT.overhead.out" 2>&1 || {
	tail -20 "$OUT.overhead.out" >&2
	exit 1
}
mv "$OUT.overhead.out" "$OUT/overhead.out"
python3 - "$OUT" <<'PY'
import csv, os, sys
sys.path.insert(0, os.path.join(os.getcwd(), "scripts/bench"))
from overhead_report import med, num
rows = list(csv.DictReader(open(os.path.join(sys.argv[1], "raw.tsv")), delimiter="\t"))
cells = {}
for r in rows:
    done = num(r["completed"])
    c = cells.setdefault((r["topo"], r["workload"], r["mode"]), ([], []))
    c[0].append(num(r["rps"]))
    c[1].append(num(r["cg_usage_us"]) / done if done else None)
summary = []
print("%-6s %-12s %-12s %12s %10s %10s %10s" % ("topo", "workload", "mode", "req/s", "CPU/req us",
      "rps/direct", "CPU/direct"))
for (topo, wl, mode) in sorted(cells):
    rps, cpu = med(cells[(topo, wl, mode)][0]), med(cells[(topo, wl, mode)][1])
    base = cells.get((topo, wl, "direct"))
    brps, bcpu = (med(base[0]), med(base[1])) if base else (None, None)
    rr = rps / brps if rps and brps else None
    rc = cpu / bcpu if cpu and bcpu else None
    print("%-6s %-12s %-12s %12s %10s %10s %10s" % (topo, wl, mode,
          "%.0f" % rps if rps else "-", "%.1f" % cpu if cpu else "-",
          "%.3f" % rr if rr else "-", "%.3f" % rc if rc else "-"))
    if mode != "direct" and rr:
        tag = "%s_%s_%s" % (wl.split("@")[0], mode.replace("-", "_"), topo)
        summary += ["rps_%s=%.3f" % (tag, rr), "cpu_%s=%.3f" % (tag, rc)]
print("bench apps: " + " ".join(summary))
PY
