#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-side with PROG_STATS=1 reports what xmesh's programs cost per
# xmesh request (issue 14: the BPF ns per connection beside the CPU ratios):
# per node and program, the run counts and run time of each round (after -
# before) summed over the rounds, over the xmesh side's completed requests
# (never the other sides'); tracing programs, which run for every side's
# sockets, are listed and left out of the total. A made-up results directory
# with known deltas; no network, under a second.
set -eu
. "$(dirname "$0")/lib.sh"
D=$(mktemp -d "/tmp/xm-side-progstats.XXXXXX")
trap 'rm -rf "$D"' EXIT

echo "command: made up by $(basename "$0")" >"$D/env.txt"
printf 'round\ttopo\tworkload\tside\tload1\tcompleted\terrors\tp50_us\tp99_us\tcpu_us\tcmd\n' >"$D/raw.tsv"
printf 'round\ttopo\tworkload\tnode\twhen\tprogs\n' >"$D/progstats.tsv"
# progs NAME:TYPE:RUNS:NS ...: a prog list -j answer
progs() {
	local p sep="" out='{"bpf_stats_enabled":false,"programs":['
	for p in "$@"; do
		IFS=: read -r name type runs ns <<<"$p"
		out+="$sep{\"name\":\"$name\",\"type\":\"$type\",\"run_cnt\":$runs,\"run_time_ns\":$ns}"
		sep=,
	done
	echo "$out]}"
}
for r in 1 2; do
	# 100 xmesh requests a round; the direct side's 300 must not count
	printf '%s\t2node\tconn64@1k\txmesh\t0.5\t100\t0\t90\t200\t12000\tx\n' "$r" >>"$D/raw.tsv"
	printf '%s\t2node\tconn64@1k\tdirect\t0.5\t300\t0\t85\t190\t33000\tx\n' "$r" >>"$D/raw.tsv"
	b=$((r * 1000000)) # cumulative counters: only the differences count
	printf '%s\t2node\tconn64@1k\t1\tbefore\t%s\n' "$r" "$(progs \
		"xm_lb_connect4:cgroup_sock_addr:$b:$b" "xm_sockops:sock_ops:$b:$b" \
		"xm_redirect_rec:raw_tracepoint:$b:$b")" >>"$D/progstats.tsv"
	printf '%s\t2node\tconn64@1k\t1\tafter\t%s\n' "$r" "$(progs \
		"xm_lb_connect4:cgroup_sock_addr:$((b + 100)):$((b + 100000))" \
		"xm_sockops:sock_ops:$((b + 250)):$((b + 50000))" \
		"xm_redirect_rec:raw_tracepoint:$((b + 100)):$((b + 8000))")" >>"$D/progstats.tsv"
	printf '%s\t2node\tconn64@1k\t2\tbefore\t%s\n' "$r" \
		"$(progs "xm_lb_ingress:cgroup_skb:$b:$b")" >>"$D/progstats.tsv"
	printf '%s\t2node\tconn64@1k\t2\tafter\t%s\n' "$r" \
		"$(progs "xm_lb_ingress:cgroup_skb:$((b + 300)):$((b + 60000))")" >>"$D/progstats.tsv"
done
out=$(python3 "$XM_TOP/scripts/bench/side_report.py" "$D")
row() { grep -qF "$1" <<<"$out" || xm_fail "report has no row '$1'"; }
# runs / request, ns / run, ns / request
row "| 2node | conn64@1k | 1 | xm_lb_connect4 | 1.00 | 1000 | 1000 |"
row "| 2node | conn64@1k | 1 | xm_sockops | 2.50 | 200 | 500 |"
row "| 2node | conn64@1k | 2 | xm_lb_ingress | 3.00 | 200 | 600 |"
row "| 2node | conn64@1k | 1 | xm_redirect_rec | 1.00 | 80 | 80 |"
# the tracing program is listed, not in the total: 1000 + 500 + 600
row "| 2node | conn64@1k | all | **all but tracing** | | | **2100** |"
grep -q '^bench side: .* 2node_conn64_1k_bpf_ns_per_req=2100\b' <<<"$out" ||
	xm_fail "bench line without 2node_conn64_1k_bpf_ns_per_req=2100: $(grep '^bench side' <<<"$out")"
# without the statistics, no such section and no such key
rm "$D/progstats.tsv"
out=$(python3 "$XM_TOP/scripts/bench/side_report.py" "$D")
! grep -q 'bpf_ns_per_req\|BPF run-time statistics' <<<"$out" ||
	xm_fail "a report without progstats.tsv shows BPF costs"
xm_log "side report: BPF ns per xmesh request per program, tracing left out of the total"
