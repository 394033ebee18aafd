#!/bin/bash
# SPDX-License-Identifier: MIT
# The overlay fast paths in place (issue 14): why encap/decap cost 2-4x their
# BPF_PROG_TEST_RUN time in the workloads. Two nodes over VXLAN with the
# overlay cache (scripts/testbed.sh), one TCP connection of 64 B
# request/response from a pod of node 1 to a pod of node 2, every run wrapped
# in `xmeshctl prog profile` on both nodes. Interleaved, REPS rounds of:
#   rate   - RATES requests/s (0 = as fast as one connection goes): the same
#            skbs and program, only the time between packets differs;
#   recv   - clone: the underlay hands the receiver the sender's skb (a veth
#            does: still TCP's clone); own: a tc program on the underlay makes
#            it the receiver's own, as a NIC's would be (prices the un-clone
#            that bpf_skb_adjust_room() does for a cloned skb when it shrinks).
# And the skb state the programs see (scripts/bench/ovl_skbstate.bpf.c, at the
# pod's eth0 egress for the encap, at the underlay port to node 2 for the
# decap): cloned, header shared, headroom.
#
#   scripts/bench/ovl-inplace.sh                 # ~2 min
#   REPS=3 DUR=5 RATES="5000 0" OUT=dir
set -eu -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
REPS=${REPS:-3} DUR=${DUR:-5} RATES=${RATES:-"5000 0"}
OUT=${OUT:-$TOP/results/ovl-inplace-$(date -u +%Y%m%dT%H%M%SZ)}
[ "$(id -u)" = 0 ] || { echo "ovl-inplace: needs root" >&2; exit 1; }
[ -x build/bin/xmeshctl ] && [ -f build/vmlinux.h ] || { echo "ovl-inplace: build first (make)" >&2; exit 1; }
mkdir -p "$OUT"
for v in enc dec; do
	for own in 0 1; do
		clang -O2 -g -target bpf -Ibuild -DSTATE_MAP=xm_st_$v $([ $own = 1 ] && echo -DUNCLONE) \
			-c scripts/bench/ovl_skbstate.bpf.c -o "$OUT/st_$v$own.o"
	done
done
uptime >"$OUT/env.txt"
. tests/integration/lib.sh
. scripts/testbed.sh
xm_tb_cluster vxlan 2
xm_tb_pod 1 p1 10
xm_tb_pod 2 p2 10
xm_tb_agent 1 2>>"$OUT/agents.log"
xm_tb_agent 2 2>>"$OUT/agents.log"
xm_bg xm_tb_nx p2 "$XM_TOOLS/xm-serve" rr -l 10.244.2.10:7000
xm_tb_nx p1 tc qdisc add dev eth0 clsact
ip netns exec "$XM_PREFIX-ul" tc qdisc add dev n2 clsact
sleep 0.5

# state_of MAP: the counters of the newest map of that name, as k=v
state_of() {
	bpftool -j map show | python3 -c '
import json, subprocess, sys
ids = [m["id"] for m in json.load(sys.stdin) if m.get("name") == sys.argv[1]]
d = json.loads(subprocess.check_output(["bpftool", "-j", "map", "dump", "id", str(max(ids))]))
v = [int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little") for e in sorted(d, key=lambda e: int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little"))]
print("pkts=%d cloned=%d hdr_cloned=%d headroom_lt64=%d gso=%d headroom_avg=%.0f no_hash=%d" % (*v[:5], v[5] / max(v[0], 1), v[6]))' "$1"
}

printf 'rep\trate\trecv\trps\tnode\tprog\truns\trun_time_ns\n' >"$OUT/runs.tsv"
for rep in $(seq "$REPS"); do
	for rate in $RATES; do
		for recv in clone own; do
			own=$([ $recv = own ] && echo 1 || echo 0)
			echo "[$(date +%T)] round $rep/$REPS: rate $rate, receiver's skb $recv" >&2
			# Replacing the filters loads fresh objects: the counters start at 0.
			xm_tb_nx p1 tc filter replace dev eth0 egress pref 1 handle 1 bpf da \
				obj "$OUT/st_enc0.o" sec tc
			ip netns exec "$XM_PREFIX-ul" tc filter replace dev n2 egress pref 1 handle 1 \
				bpf da obj "$OUT/st_dec$own.o" sec tc
			xm_tb_ctl 2 -j prog profile "$DUR" >"$XM_RUN_DIR/prof2.json" &
			pp=$!
			xm_tb_ctl 1 -j prog profile -- ip netns exec "$XM_PREFIX-p1" "$XM_TOOLS/xm-load" rr \
				-t 10.244.2.10:7000 -P tcp -s 64 -r "$rate" -d "$DUR" -c 1 \
				>"$XM_RUN_DIR/prof1.json" 2>"$XM_RUN_DIR/load.out"
			wait $pp
			rps=$(tail -1 "$XM_RUN_DIR/load.out" | sed -n 's/.* rps=\([0-9.]*\).*/\1/p')
			for n in 1 2; do
				python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for p in (d.get("programs", d) if isinstance(d, dict) else d):
    if p["name"].startswith("xm_ovl_"):
        print("\t".join(sys.argv[2:] + [p["name"], str(p["run_cnt"]), str(p["run_time_ns"])]))' \
					"$XM_RUN_DIR/prof$n.json" "$rep" "$rate" "$recv" "$rps" "$n" >>"$OUT/runs.tsv"
			done
			printf '%s\t%s\t%s\tencap (pod egress): %s\tdecap (underlay): %s\n' "$rep" "$rate" \
				"$recv" "$(state_of xm_st_enc)" "$(state_of xm_st_dec)" >>"$OUT/skbstate.tsv"
		done
	done
done
uptime >>"$OUT/env.txt"
python3 - "$OUT" <<'PY'
import collections, statistics, sys
out = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(out + "/runs.tsv")][1:]
# per (rate, recv, program): ns per run of each round (both nodes together)
acc = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0]))
rps = collections.defaultdict(list)
for rep, rate, recv, r, node, prog, runs, ns in rows:
    if prog.startswith("xm_ovl_ul_ingre") and node != "2":
        continue  # the receiver variant changes node 2's underlay port only
    a = acc[(rate, recv, prog[:15])][rep]
    a[0] += int(runs); a[1] += int(ns)
    if node == "1" and prog.startswith("xm_ovl_pod_ingr"):
        rps[(rate, recv)].append(float(r or 0))
def med(rate, recv, prog):
    v = [ns / runs for runs, ns in acc[(rate, recv, prog)].values() if runs]
    return statistics.median(v) if v else float("nan")
lines = ["| rate (req/s; 0 = max) | receiver's skb | req/s | encap `xm_ovl_pod_ingress` ns/run | decap `xm_ovl_ul_ingress` (node 2) ns/run | `xm_ovl_ul_egress` (marked, returns) ns/run |",
         "|---|---|---:|---:|---:|---:|"]
keys = sorted({(k[0], k[1]) for k in acc}, key=lambda k: (float(k[0]) or float("inf"), k[1]))
for rate, recv in keys:
    lines.append("| %s | %s | %.0f | %.0f | %.0f | %.0f |" % (rate, recv, statistics.median(rps[(rate, recv)]),
        med(rate, recv, "xm_ovl_pod_ingr"), med(rate, recv, "xm_ovl_ul_ingre"), med(rate, recv, "xm_ovl_ul_egres")))
lines.append("")
lines.append("skb state (first round; the receiver's skb is counted before the \"own\" variant copies it):")
lines += ["  " + l.rstrip("\n") for l in open(out + "/skbstate.tsv")][:4]
open(out + "/ovl-inplace.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
k = [("5000", "clone"), ("5000", "own"), ("0", "clone"), ("0", "own")]
kv = []
for rate, recv in k:
    if (rate, recv) in keys:
        tag = ("r%s" % rate if rate != "0" else "max") + "_" + recv
        kv.append("encap_%s=%.0f decap_%s=%.0f" % (tag, med(rate, recv, "xm_ovl_pod_ingr"), tag, med(rate, recv, "xm_ovl_ul_ingre")))
print("bench ovl-inplace: " + " ".join(kv))
PY
