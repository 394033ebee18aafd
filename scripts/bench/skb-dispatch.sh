#!/bin/bash
# SPDX-License-Identifier: MIT
# bench skb-dispatch: what the per-packet probes (cgroup_skb egress and
# ingress, bpf/lb.bpf.c) cost a balanced client per connection, beside what
# the kernel's dispatch of a cgroup_skb run costs alone: skbnoop.bpf.c's
# programs return 1 at once and sit in the same hooks of the same cgroup.
# One node: pod c's client in a cgroup below the agent's opens a new
# connection per request (64 B each way) to a VIP, so connect4, sockops and
# the probes all see it; pod s's server runs in a cgroup of its own, where
# nothing is attached. Modes, in a rotating order every round:
#   off     config "probes": "weighted" (a static service: the probe links
#           are detached, docs/config.md)
#   noop    "weighted", and skbnoop on both hooks of the agent's cgroup
#   probes  "probes": "all", the default: the agent's probes attached
#   lookup  "weighted", and skbparts.bpf.c on both hooks of the agent's
#           cgroup: the probes' header parse and socket-storage lookup
#           alone (their own code, on the agent's pinned maps), no writes
# MODES="off noop probes" (the default) picks and orders them; off is always
# measured (the differences are taken against it).
# CPU per request: the client's and the server's cgroups (cpu.stat usage)
# over completed requests; the report gives medians and the per-round
# differences against off.
#   scripts/bench/skb-dispatch.sh     # ~4 min: ROUNDS=20 DUR=3 RATE=2000
#   MODES="off noop lookup probes" ROUNDS=40 scripts/bench/skb-dispatch.sh
set -eu -o pipefail
ROUNDS=${ROUNDS:-20} DUR=${DUR:-3} RATE=${RATE:-2000}
read -ra MODES <<<"${MODES:-off noop probes}"
case " ${MODES[*]} " in *" off "*) ;; *) MODES=(off "${MODES[@]}") ;; esac
for m in "${MODES[@]}"; do
	case $m in off | noop | lookup | probes) ;;
	*) echo "skb-dispatch: MODES takes off, noop, lookup and probes, not '$m'" >&2; exit 2 ;;
	esac
done
. "$(dirname "$0")/../../tests/integration/lib.sh"
xm_bench_setup skb-dispatch
NOOP=/sys/fs/bpf/$XM_PREFIX-noop PARTS=/sys/fs/bpf/$XM_PREFIX-parts CGC=$XM_CGROUP/$XM_PREFIX-cl CGS=$XM_CG2/$XM_PREFIX-srv
sd_cleanup() {
	local rc=$? cg p
	set +e
	for cg in "$CGC" "$CGS"; do
		for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill "$p" 2>/dev/null; done
		for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
	done
	noop_attach detach 2>/dev/null
	parts_attach detach 2>/dev/null
	rm -rf "$NOOP" "$PARTS"
	(exit $rc)
	xm_cleanup
}
trap sd_cleanup EXIT
clang -O2 -g -target bpf -Ibuild -c scripts/bench/skbnoop.bpf.c -o "$OUT/skbnoop.bpf.o"
bpftool prog loadall "$OUT/skbnoop.bpf.o" "$NOOP"
noop_attach() { # attach|detach
	local l
	for l in egress ingress; do
		# shellcheck disable=SC2046
		bpftool cgroup "$1" "$XM_CGROUP" "$l" pinned "$NOOP/xm_noop_$l" $([ "$1" = attach ] && echo multi)
	done
}
# lookup: skbparts.bpf.c on the maps the agent pinned (loaded once it runs)
parts_load() {
	local args=() n
	clang -O2 -g -target bpf -D__TARGET_ARCH_"$(uname -m | sed "s/x86_64/x86/;s/aarch64/arm64/")" \
		-Ibuild -Iinclude -c scripts/bench/skbparts.bpf.c -o "$OUT/skbparts.bpf.o"
	for n in $(llvm-objdump -t "$OUT/skbparts.bpf.o" | awk '$4 == ".maps" {print $NF}'); do
		[ -e "$XM_PIN/maps/$n" ] && args+=(map name "$n" pinned "$XM_PIN/maps/$n")
	done
	bpftool prog loadall "$OUT/skbparts.bpf.o" "$PARTS" "${args[@]}"
}
parts_attach() { # attach|detach
	local l
	for l in egress ingress; do
		# shellcheck disable=SC2046
		bpftool cgroup "$1" "$XM_CGROUP" "$l" pinned "$PARTS/xm_part_lookup_$l" \
			$([ "$1" = attach ] && echo multi)
	done
}
mkdir -p "$CGC" "$CGS"
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 s 10.77.0.3/24
IN_CG=(sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"')
xm_bg "${IN_CG[@]}" "$CGS" "$XM_PREFIX-s" "$XM_TOOLS/xm-serve" rr --listen 10.77.0.3:8080
xm_pod_exec c sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
CFG=$XM_RUN_DIR/agent.json
config() { # all|weighted
	cat >"$CFG.new" <<EOC
{ "probes": "$1", "services": [
  { "vip": "10.96.0.10", "port": 80, "backends": [ { "address": "10.77.0.3", "port": 8080 } ] } ] }
EOC
	mv "$CFG.new" "$CFG"
}
config all
xm_agent_start --config "$CFG" 2>>"$OUT/agent.log"
xm_lb_wait 10.96.0.10:80 1
case " ${MODES[*]} " in *" lookup "*) parts_load ;; esac
probes() { # all|weighted: reload, and wait for the links to follow
	local want=1 _
	[ "$1" = all ] || want=0
	config "$1"
	kill -HUP "$XM_AGENT_PID"
	for _ in $(seq 50); do
		[ "$([ -e "$XM_PIN/links/lb_egress" ] && echo 1 || echo 0)" = $want ] && return 0
		sleep 0.1
	done
	xm_fail "probes $1: links/lb_egress did not follow the reload (agent.log)"
}
usage() { awk '$1 == "usage_usec" {s += $2} END {print s}' "$CGC/cpu.stat" "$CGS/cpu.stat"; }
echo -e "round\tmode\tload1\tok\terrors\tp50_us\tcpu_us_per_req" >"$OUT/raw.tsv"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(uname -r), $(nproc) CPUs"
	echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "command: MODES=\"${MODES[*]}\" ROUNDS=$ROUNDS DUR=$DUR RATE=$RATE scripts/bench/skb-dispatch.sh"
} >"$OUT/env.txt"
T0=$(date +%s) NM=${#MODES[@]}
for r in $(seq "$ROUNDS"); do
	for i in $(seq 0 $((NM - 1))); do
		mode=${MODES[$(((i + r) % NM))]}
		case $mode in
		off) probes weighted ;;
		noop) probes weighted; noop_attach attach ;;
		lookup) probes weighted; parts_attach attach ;;
		probes) probes all ;;
		esac
		u0=$(usage) load1=$(cut -d' ' -f1 /proc/loadavg)
		out=$("${IN_CG[@]}" "$CGC" "$XM_PREFIX-c" "$XM_TOOLS/xm-load" rr -t 10.96.0.10:80 -P tcp \
			-s 64 -r "$RATE" -d "$DUR" -c 16 --new | tail -1)
		u1=$(usage)
		[ "$mode" = noop ] && noop_attach detach
		[ "$mode" = lookup ] && parts_attach detach
		ok=$(xm_kv ok "$out")
		[ "${ok:-0}" -gt 0 ] || xm_fail "round $r $mode: no request completed: $out"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$mode" "$load1" "$ok" "$(xm_kv errors "$out")" \
			"$(xm_kv p50_us "$out")" "$(python3 -c "print(round(($u1 - $u0) / $ok, 2))")" >>"$OUT/raw.tsv"
	done
	xm_log "round $r/$ROUNDS done ($(($(date +%s) - T0)) s, load $(cut -d' ' -f1-3 /proc/loadavg))"
done
xm_ctl -j stats >"$OUT/stats.json"
python3 - "$OUT" <<'EOP' | tee "$OUT/report.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/raw.tsv"), delimiter="\t"))
cpu = {}
for r in rows:
    cpu.setdefault(r["mode"], {})[r["round"]] = float(r["cpu_us_per_req"])
off = cpu["off"]
print("| mode | CPU per request (median, µs) | vs off: median of the rounds' differences (µs) | rounds above off |")
print("|---|---|---|---|")
modes = [m for m in ("off", "noop", "lookup", "probes") if m in cpu]
for m in modes:
    d = [cpu[m][k] - off[k] for k in off if k in cpu[m]]
    print(f"| {m} | {statistics.median(cpu[m].values()):.1f} | "
          f"{statistics.median(d):+.2f} | {sum(x > 0 for x in d)} of {len(d)} |")
s = " ".join(f"{m}_cpu_us={statistics.median(cpu[m].values()):.1f}" for m in modes)
print(f"\nresults: {sys.argv[1]}\nbench skb-dispatch: {s}")
EOP
