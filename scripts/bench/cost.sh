#!/bin/bash
# SPDX-License-Identifier: MIT
# Datapath cost per program: the workloads of scripts/bench/overhead.sh (a new
# connection per request, steady request/response; one node, two routed
# nodes, two nodes over VXLAN with the overlay cache) with the kernel's BPF
# run-time statistics on during every xmesh run (xmeshctl prog profile, a
# BPF_ENABLE_STATS fd: the sysctl is left alone). Reports, per program of
# every node, runs and ns per request and per run, beside the wall-clock and
# CPU ratios against no mesh (direct) and nft DNAT (svc); then the overlay
# fast paths alone with BPF_PROG_TEST_RUN (tests/tools/xm-ovl-prog.c).
#
#   scripts/bench/cost.sh                       # ~4 min
#   REPS= DUR= MODES= TOPOS= WORKLOADS= OUT=    # as overhead.sh
set -eu -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
export OUT=${OUT:-$TOP/results/cost-$STAMP}
export PROG_STATS=1
export REPS=${REPS:-3} DUR=${DUR:-2}
export MODES=${MODES:-"direct svc xmesh"}
export TOPOS=${TOPOS:-"1node 2node vxlan"}
export WORKLOADS=${WORKLOADS:-"conn64@1k tcp64@5k"}
[ -x build/tests/xm-ovl-prog ] || { echo "cost: build first (make)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "cost: needs root" >&2; exit 1; }
mkdir -p "$OUT"
scripts/bench/overhead.sh >"$OUT/overhead.out"
for i in 1 2 3; do
	echo "[$(date +%T)] overlay programs alone (BPF_PROG_TEST_RUN), run $i/3" >&2
	build/tests/xm-ovl-prog bench 20000 >>"$OUT/ovl-prog.txt"
done
python3 scripts/bench/cost_report.py "$OUT"
