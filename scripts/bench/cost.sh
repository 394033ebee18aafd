#!/bin/bash
# SPDX-License-Identifier: MIT
# Datapath cost per program: the workloads of scripts/bench/overhead.sh (a new
# connection per request, steady request/response; one node, two routed
# nodes, two nodes over VXLAN with the overlay cache) with the kernel's BPF
# run-time statistics on during every xmesh run (xmeshctl prog profile, a
# BPF_ENABLE_STATS fd: the sysctl is left alone). Reports, per program of
# every node, runs and ns per request and per run, beside the wall-clock and
# CPU ratios against no mesh (direct) and nft DNAT (svc); then the overlay
# fast paths alone with BPF_PROG_TEST_RUN (tests/tools/xm-ovl-prog.c), and
# the cost of one connection alone: xm-load rr -P label --new (connect, read, close in a
# loop) to a VIP whose backend is a local pod (redirected) and to one whose
# backend's sockets are outside the agent's cgroup (the path to a remote
# backend), profiled program by program. probes: the same remote-style
# backend path, steady (xm-load rr, 16 connections at 5,000 requests/s) and a
# one-way stream (xm-load stream), the probes' cost per request, per MiB and
# per run.
#
#   scripts/bench/cost.sh                       # ~4 min
#   REPS= DUR= MODES= TOPOS= WORKLOADS= OUT=    # as overhead.sh
#   PARTS="conn"                                # only some of: workloads ovl conn side probes
#   PROBES=weighted                             # the agent's config "probes" (conn, probes parts)
# side: scripts/bench/side.sh, xmesh and no mesh at the same time in one world
# (ratios that the machine's load cannot tilt), in $OUT/side/.
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
PARTS=${PARTS:-"workloads ovl conn side probes"}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
[ -x build/tests/xm-ovl-prog ] || { echo "cost: build first (make)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "cost: needs root" >&2; exit 1; }
mkdir -p "$OUT"
if part workloads; then
	scripts/bench/overhead.sh >"$OUT/overhead.out"
fi
if part side; then
	OUT=$OUT/side scripts/bench/side.sh >"$OUT/side.out"
fi
for i in 1 2 3; do
	part ovl || break
	echo "[$(date +%T)] overlay programs alone (BPF_PROG_TEST_RUN), run $i/3" >&2
	build/tests/xm-ovl-prog bench 20000 >>"$OUT/ovl-prog.txt"
done
if ! part conn && ! part probes; then
	python3 scripts/bench/cost_report.py "$OUT"
	exit 0
fi

# ------------------------------------------------------- one connection alone
. tests/integration/lib.sh
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 b1 10.77.0.3/24
xm_pod n1 b2 10.77.0.4/24
# b1 runs in the agent's cgroup (a local pod), b2 outside it (its end pays nothing)
xm_bg sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' "$XM_CGROUP" \
	"$XM_PREFIX-b1" "$XM_TOOLS/xm-serve" label --listen 10.77.0.3:8080 --label b1
xm_bg ip netns exec "$XM_PREFIX-b2" "$XM_TOOLS/xm-serve" label --listen 10.77.0.4:8080 --label b2
xm_bg ip netns exec "$XM_PREFIX-b2" "$XM_TOOLS/xm-serve" rr --listen 10.77.0.4:8081
cat >"$XM_RUN_DIR/conn.json" <<EOC
{ "probes": "${PROBES:-all}", "services": [
  { "vip": "10.96.0.10", "port": 80, "backends": [ { "address": "10.77.0.3", "port": 8080 } ] },
  { "vip": "10.96.0.11", "port": 80, "backends": [ { "address": "10.77.0.4", "port": 8080 } ] },
  { "vip": "10.96.0.12", "port": 80, "backends": [ { "address": "10.77.0.4", "port": 8081 } ] } ] }
EOC
xm_agent_start --config "$XM_RUN_DIR/conn.json" 2>>"$OUT/agent-conn.log"
xm_lb_wait 10.96.0.10:80 1
xm_lb_wait 10.96.0.11:80 1
xm_lb_wait 10.96.0.12:80 1
xm_ctl endpoint add 10.77.0.2 netns "$(xm_netns_path c)" >/dev/null
xm_ctl endpoint add 10.77.0.3 netns "$(xm_netns_path b1)" >/dev/null
# profile KIND XM-LOAD-ARGS...: the client in the agent's cgroup, programs profiled
profile() {
	local kind=$1
	shift
	xm_ctl -j prog profile -- sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' \
		"$XM_CGROUP" "$XM_PREFIX-c" "$XM_TOOLS/xm-load" "$@" -j \
		2>"$XM_RUN_DIR/probes.out" >"$XM_RUN_DIR/probes.json.out"
	printf '%s\t%s\t%s\t%s\n' "$rep" "$kind" "$(tail -1 "$XM_RUN_DIR/probes.out")" \
		"$(cat "$XM_RUN_DIR/probes.json.out")" >>"$OUT/probes.tsv"
}
for rep in $(seq "$REPS"); do
	part probes || break
	echo "[$(date +%T)] probes: steady and stream to a remote-style backend, run $rep/$REPS" >&2
	profile steady rr -t 10.96.0.12:80 -P tcp -s 64 -r 5000 -c 16 -d "$DUR"
	profile stream stream -t 10.96.0.12:80 -d 1
done
for rep in $(seq "$REPS"); do
	part conn || break
	for vip in local:10.96.0.10 remote:10.96.0.11; do
		echo "[$(date +%T)] one connection alone: ${vip%%:*} backend, run $rep/$REPS" >&2
		xm_ctl -j prog profile -- sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' \
			"$XM_CGROUP" "$XM_PREFIX-c" "$XM_TOOLS/xm-load" rr -t "${vip#*:}:80" -P label --new -d 1 -j \
			2>"$XM_RUN_DIR/conn.out" >"$XM_RUN_DIR/conn.json.out"
		printf '%s\t%s\t%s\t%s\n' "$rep" "${vip%%:*}" "$(tail -1 "$XM_RUN_DIR/conn.out")" \
			"$(cat "$XM_RUN_DIR/conn.json.out")" >>"$OUT/conn.tsv"
	done
done
python3 scripts/bench/cost_report.py "$OUT"
