#!/bin/bash
# SPDX-License-Identifier: MIT
# The weighting loop's latency quantiles are those of the requests made: it
# reads xm_lb_hist through a mapping (ABI 7: the buckets a backend used
# before in place, all buckets now and then), and every backend's raw p50 and
# p99 of a tick (`backend list`: tick_p50_ms, tick_p99_ms) must be its own
# requests' latency. fake_probes --fixed-us gives backend id the latency
# US x (4 + id % 13) / 4, so neighbouring ids differ by at least one bucket.
#   1. 20 services x 10 backends: every backend's tick quantiles within the
#      bucket error (3.2 %, checked at 4 %) of its latency, over 6 ticks;
#   2. latencies doubled: every backend leaves the buckets it used before
#      (the loop reads those alone while they account for the requests the
#      probe counters saw: it must notice they do not, and scan);
#   3. 20 more services (config reload: ids above what the loop had mapped,
#      so the mapping grows), latencies x 1.5: again every backend of the 40
#      services, new and old.
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/fake_probes" ] || xm_skip "build the test tools (make)"

NBE=10
cfg=$XM_RUN_DIR/agent.json
config() { xm_l3x_services "$1" "$NBE" >"$cfg"; } # NSVC: $cfg with NSVC l3x services
loop_ticks() {
	xm_ctl -j top count 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["loop"]["ticks"])'
}
wait_ticks() { # N: until the loop has ticked N more times
	local t0
	t0=$(loop_ticks)
	for _ in $(seq 600); do
		[ $(($(loop_ticks) - t0)) -ge "$1" ] && return 0
		sleep 0.1
	done
	xm_fail "the loop did not tick $1 times in 60 s"
}
wait_backends() { # N: until backend list shows N backends
	local n
	for _ in $(seq 200); do
		n=$(xm_ctl -j backend list | xm_json 'len(j.get("backends", j) if isinstance(j, dict) else j)')
		[ "${n:-0}" -ge "$1" ] && return 0
		sleep 0.1
	done
	xm_fail "backend list shows ${n:-0} backends, expected $1"
}
# check US TICKS WHAT: sample backend list once per tick for TICKS ticks; every
# backend needs a tick quantile, and every one seen must be within 4 % of
# US x (4 + id % 13) / 4 microseconds.
check() {
	local us=$1 ticks=$2 what=$3 out=$XM_RUN_DIR/samples
	: >"$out"
	for _ in $(seq "$ticks"); do
		wait_ticks 1
		xm_ctl -j backend list >>"$out"
		echo >>"$out"
	done
	python3 - "$us" "$out" "$what" <<'PY' || xm_fail "$what: the loop's quantiles are not the requests' (above)"
import json, sys
us, path, what = float(sys.argv[1]), sys.argv[2], sys.argv[3]
seen, bad, ids = {}, [], set()
for doc in open(path).read().split("\n\n"):
    if not doc.strip():
        continue
    j = json.loads(doc)
    rows = j.get("backends", j) if isinstance(j, dict) else j
    for r in rows:
        ids.add(r["id"])
        want = us * (4 + r["id"] % 13) / 4 / 1000  # ms
        f = r.get("filtered") or {}
        for q in ("tick_p50_ms", "tick_p99_ms"):
            v = f.get(q)
            if v is None:
                continue
            seen[r["id"]] = seen.get(r["id"], 0) + 1
            if abs(v - want) > 0.04 * want:
                bad.append(f"backend {r['id']}: {q} {v:.4f} ms, its requests take {want:.4f} ms")
never = sorted(ids - set(seen))
print(f"{what}: {len(ids)} backends, {sum(seen.values())} tick quantiles, "
      f"{len(bad)} wrong, {len(never)} never read", file=sys.stderr)
for line in bad[:10]:
    print("  " + line, file=sys.stderr)
if never:
    print(f"  never read: {never[:20]}", file=sys.stderr)
sys.exit(1 if bad or never else 0)
PY
	xm_log "ok: $what: every backend's tick p50/p99 is its requests' latency"
}

config 20
xm_agent_start --config "$cfg"
wait_backends $((20 * NBE))
# 40 requests per backend per second: 20 a tick, a read every tick (XM_W_HIST_MIN 8).
xm_bg "$XM_TOOLS/fake_probes" --pin-root "$XM_PIN" --rps 40 --period-ms 250 --duration 600 \
	--fixed-us 1000
fp=$XM_LAST_PID
wait_ticks 3
check 1000 6 "20 services, 1-4 ms"

# next_phase US: fake_probes with the latencies of US from now on
next_phase() {
	kill "$fp"
	wait "$fp" 2>/dev/null
	xm_bg "$XM_TOOLS/fake_probes" --pin-root "$XM_PIN" --rps 40 --period-ms 250 --duration 600 \
		--fixed-us "$1"
	fp=$XM_LAST_PID
	# Reads that may span the change, then the busy wait: a service whose
	# table holds still is weighed (and its tick quantiles published) every
	# 2 s (weighdue.h XM_WEIGH_BUSY_MAX_S), and one weighing may bank
	# requests from both sides of the change: two such waits and a tick.
	wait_ticks 10
}
next_phase 2000
check 2000 6 "20 services, latencies doubled"

config 40
kill -HUP "$XM_AGENT_PID"
wait_backends $((40 * NBE))
next_phase 1500
check 1500 6 "40 services (20 new, mapped later), latencies x 1.5"
exit 0
