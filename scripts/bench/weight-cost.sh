#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-weight-cost: CPU and memory of the agent's weighting loop with
# 1000 services x 10 backends (issue target: < 1 % of a core, < 16 MB RSS).
#
# The default build holds 2048 backends per node (XM_LB_MAX_BACKENDS), so
# this builds a copy with room for 12288 into build-scale/ (BPF and user
# space from the same sources, only the limit differs). The agent runs on a
# test cgroup and pin root with a config of 1000 services; fake_probes plays
# the datapath, adding requests and latencies to every backend's probe maps
# (the loop reads them as it reads real probes). Three phases of
# XM_COST_SECS (30) seconds each: no traffic, 2 rps per backend (20k rps
# per node), 20 rps per backend (200k rps per node). Measured from /proc:
# agent CPU (utime + stime) per second of wall time, VmRSS (and its parts:
# RssAnon, the agent's own memory; RssFile, which holds the pages of the BPF
# maps it mmaps, all mapped at mmap() time), VmHWM; and the
# loop's own CPU per tick from xm_lb_wloop (its thread's clock, per tick of
# wall time) and its table writes per tick. Then table_cost: CPU per table
# write, one by one (xm_lb_table_write) against the loop's batched writes.
#
#   XM_COST_ALGO=l3x XM_COST_SECS=30 make bench-weight-cost
#   (a phase's first ~60 s of traffic is also its histograms' warm-up: most
#   reads then find a bucket new to the backend and take the full scan;
#   XM_COST_SECS=60 measures past most of it, docs/benchmarks.md session 20)
#   XM_COST_PARAMS='{"table_deadband": 0}'   every service's "params" (JSON)
#   XM_COST_IDLE_SETTLE=0   measure idle at once after the start (default 30 s later)
#   XM_COST_FAIL_PCT=0      fake_probes' failures (5xx) in % of requests (default 1)
#   XM_COST_PERIOD_MS=100   fake_probes' rounds (default 500, the loop's tick:
#                           a tick then sees 0, 1 or 2 rounds, docs/benchmarks.md)
set -u
cd "$(dirname "$0")/../.."
TOP=$(pwd)
SECS=${XM_COST_SECS:-30}
ALGO=${XM_COST_ALGO:-l3x}
NSVC=${XM_COST_SERVICES:-1000}
NBE=${XM_COST_BACKENDS:-10}
BS=build-scale

echo "building $BS with XM_LB_MAX_BACKENDS=12288 ..." >&2
make -s B=$BS CLANG="${CLANG:-clang} -DXM_LB_MAX_BACKENDS=12288" \
	CFLAGS="-O2 -g -DXM_LB_MAX_BACKENDS=12288" $BS/bin/xmesh-agent $BS/bin/xmeshctl \
	$BS/tests/fake_probes $BS/tests/table_cost >&2 || exit 1

export XM_BIN=$TOP/$BS/bin XM_TOOLS=$TOP/$BS/tests
. tests/integration/lib.sh
xm_setup

cfg=$XM_RUN_DIR/cost.json
python3 - "$NSVC" "$NBE" "$ALGO" "${XM_COST_PARAMS:-{\}}" >"$cfg" <<'EOF'
import json, sys
nsvc, nbe, algo = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
params = json.loads(sys.argv[4])
svcs = []
for s in range(nsvc):
    svcs.append({"name": f"s{s}", "vip": f"10.100.{s // 250}.{s % 250 + 1}", "port": 80,
                 "algorithm": algo, "params": params,
                 "backends": [{"address": f"10.{200 + (s * nbe + b) // 62500}.{(s * nbe + b) // 250 % 250}.{(s * nbe + b) % 250 + 1}",
                               "port": 8080, "cluster": f"c{b % 3}"} for b in range(nbe)]})
print(json.dumps({"weighting": {"tick_ms": 500}, "services": svcs}))
EOF
xm_agent_start --config "$cfg" --log-level warn
# Wait until the loop weighs every service.
for _ in $(seq 100); do
	n=$(xm_ctl -j top count 1 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("loop",{}).get("services",0))' 2>/dev/null)
	[ "${n:-0}" -ge "$NSVC" ] && break
	sleep 0.2
done
[ "${n:-0}" -ge "$NSVC" ] || xm_fail "agent weighs ${n:-0} services, expected $NSVC"

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$XM_AGENT_PID/stat"; }
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$XM_AGENT_PID/status"; }
loop_field() {
	xm_ctl -j top count 1 | python3 -c "import json,sys; print(json.load(sys.stdin)['loop']['$1'])"
}
# "ticks total_cost_ms table_writes weighed_total" of the loop, read at once
# (weighed_total: services weighed, not waiting; 0 from an agent without it).
loop_counts() {
	xm_ctl -j top count 1 | python3 -c "import json,sys; l = json.load(sys.stdin)['loop']
print(l['ticks'], l['total_cost_ms'], l['table_writes'], l.get('weighed_total', 0))"
}

# kB -> MB with one decimal (whole MB hid changes of less than one)
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

results=()
measure() {
	local name=$1 rps=$2 c0 c1 t0 t1 k0 k1 w0 w1 l0 l1 s0 s1 fp= tick_ms
	if [ "$rps" != 0 ]; then
		"$XM_TOOLS/fake_probes" --pin-root "$XM_PIN" --rps "$rps" --duration $((SECS + 4)) \
			--period-ms "${XM_COST_PERIOD_MS:-500}" --fail-pct "${XM_COST_FAIL_PCT:-1}" \
			>/dev/null &
		fp=$!
		XM_PIDS+=($fp)
		sleep 3 # let filters and tables settle
	fi
	read -r k0 l0 w0 s0 < <(loop_counts)
	c0=$(cpu_ticks)
	t0=$(date +%s.%N)
	sleep "$SECS"
	c1=$(cpu_ticks)
	t1=$(date +%s.%N)
	read -r k1 l1 w1 s1 < <(loop_counts)
	tick_ms=$(loop_field tick_ms)
	local last=$(loop_field last_tick_cost_ms)
	[ -n "$fp" ] && wait "$fp"
	local pct lpct rss hwm
	pct=$(python3 -c "print(f'{100 * ($c1 - $c0) / $hz / ($t1 - $t0):.2f}')")
	# The loop's own CPU (thread clock) per tick of wall time: exact whatever the
	# time these queries take on a loaded machine.
	lpct=$(python3 -c "print(f'{100 * ($l1 - $l0) / max($k1 - $k0, 1) / $tick_ms:.2f}')")
	rss=$(status_kb VmRSS)
	hwm=$(status_kb VmHWM)
	local ticks=$((k1 - k0 > 0 ? k1 - k0 : 1))
	# weighed_total is 32 bits and wraps: a difference modulo 2^32
	local weighed=$((((s1 - s0) & 0xffffffff) / ticks))
	results+=("$(printf '%-22s %6s %10s %10s %10s %10s %8s %12s %14s %15s' "$name" "$rps" "$pct" \
		"$lpct" "$(mb "$rss")" "$(mb "$hwm")" "$((k1 - k0))" "$last" \
		"$(((w1 - w0) / ticks))" "$weighed")")
	eval "cpu_$3=$pct; loop_$3=$lpct; rss_$3=$(mb "$rss"); hwm_$3=$(mb "$hwm")"
	eval "writes_$3=$(((w1 - w0) / ticks)); weighed_$3=$weighed"
	eval "anon_$3=$(mb "$(status_kb RssAnon)"); file_$3=$(mb "$(status_kb RssFile)")"
	eval "shmem_$3=$(mb "$(status_kb RssShmem)")"
}

# A node idle for a while: a service with no traffic waits longer for news once
# its weighings stop moving its weights (user/lib/weighdue.c: after idle_after,
# 10 s, and the drift, the waits grow 2, 4, 8 to 16 s), so the idle phase starts
# XM_COST_IDLE_SETTLE (30) s after the start, past that (0: at once, as before).
sleep "${XM_COST_IDLE_SETTLE:-30}"
measure "idle" 0 idle
measure "2 rps/backend" 2 low
measure "20 rps/backend" 20 high
read -r _ _ _ single batched < <("$XM_TOOLS/table_cost" --services "$NSVC" --backends "$NBE" |
	tr '=' ' ' | awk '{print $1, $3, $5, $7, $9}')

echo
echo "weighting loop cost: $NSVC services x $NBE backends, algorithm $ALGO, tick 500 ms," \
	"failures ${XM_COST_FAIL_PCT:-1} %," \
	"$(nproc) CPUs ($(uname -r)), ${SECS}s per phase"
printf '%-22s %6s %10s %10s %10s %10s %8s %12s %14s %15s\n' "phase" "rps/be" "cpu_%core" \
	"loop_%core" "rss_MB" "hwm_MB" \
	"ticks" "last_tick_ms" "writes_per_tick" "weighed_per_tick"
printf '%s\n' "${results[@]}"
echo "CPU per table write ($NSVC services x $NBE backends, median of 7): one by one" \
	"${single} us, batched as the loop writes ${batched} us"
echo "bench weight-cost: services=$NSVC backends=$((NSVC * NBE)) cpu_idle_pct=$cpu_idle" \
	"cpu_2rps_pct=$cpu_low cpu_20rps_pct=$cpu_high loop_idle_pct=$loop_idle" \
	"loop_2rps_pct=$loop_low loop_20rps_pct=$loop_high rss_mb=$rss_high hwm_mb=$hwm_high" \
	"rss_anon_mb=$anon_high rss_file_mb=$file_high rss_shmem_mb=$shmem_high" \
	"writes_2rps=$writes_low writes_20rps=$writes_high weighed_idle=$weighed_idle" \
	"weighed_2rps=$weighed_low weighed_20rps=$weighed_high" \
	"table_write_us_single=$single table_write_us_batched=$batched"
