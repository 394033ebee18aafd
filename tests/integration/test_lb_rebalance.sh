#!/bin/bash
# SPDX-License-Identifier: MIT
# Connection-level rebalancing: clients that keep their connections.
# Three replicas behind a VIP (l3: its smooth filters spread the first
# connections about evenly, which the test needs, and a run where replica 2
# got too few is repeated on a fresh service: fresh_run; l3x is in make
# bench-l3); all are slow for the first 1.5 s, so the pools hold idle
# connections to each; replica 2 turns 40x slower at t = 4 s
# (scenarios/e2e-pool.json). Clients: xm-load rr with a keep-alive pool (it
# retries a request once on a pooled connection found closed, as urllib3,
# curl and Go do), a pool that holds 24 idle connections (tests/tools/
# idle_pool.py: checks a pooled connection before reuse and retries once, as
# urllib3 does) and Python urllib3 with its own pool. With rebalancing on:
# idle pooled connections to replica 2 are retired (counter), within the
# configured bounds (the agent's debug log names each pass's quota; no pass
# retires more than its quota, no quota exceeds share_per_tick of what the
# backend held), no request is aborted in flight, and the retrying clients
# see no failed request. With idle_ms far longer than the run (60 s), only
# the fast path retires (replica 2 is far slower than the others: its
# connections go at their first idle moment, looked for every urgent_ms;
# fast_factor 2 there):
# it must still retire, within the same bounds, with no failed request.
# The fast path's two ways to find that moment: the urgent_ms poll alone
# (on_read 0, the run above), and read events (on_read 1, urgent_ms 10 s so
# that the poll runs only at the ticks; the only client urllib3 with 24
# threads and 5 ms between a response and the next request, so every
# connection is busy and idle only from the client's read to its next
# request, about 5 ms in 200 on the slow replica: a tick's poll seldom finds
# one idle and leaves its quota to the read events): the read events must find
# such moments and retire there, with no request aborted and none failed
# (not with the sock_diag fallback: its close comes after the check, outside
# the socket lock, so it has no read events).
# The same with hold_on_read (bpf_sock_destroy only): the read also marks
# the connection, whose next request is held until the pass closes it, and
# fails at the client (retried): held segments counted, none aborted or failed.
# l3x there: it puts the slow replica at the floor weight, so that whatever
# share of the 24 connections it holds is over its target (with l3's gentler
# target, holding 1 or 2 of them was within the margin: nothing to retire).
# With rebalancing off nothing is retired.
# XM_REBAL_VIA=sockdiag (test_lb_rebalance_sockdiag.sh): the same with
# bpf_sock_destroy disabled (XMESH_DISABLE_FEATURES=sock_destroy), so the
# agent closes the connections the iterator picks with SOCK_DESTROY over
# sock_diag netlink, as on kernels before 6.5.
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/xm-load" ] && [ -x "$XM_TOOLS/xm-serve" ] || xm_skip "build the test tools (make)"
VIA=${XM_REBAL_VIA:-bpf}
if [ "$VIA" = sockdiag ]; then
	export XMESH_DISABLE_FEATURES=sock_destroy
else
	grep -qw bpf_sock_destroy /proc/kallsyms ||
		xm_skip "kernel $(uname -r) has no bpf_sock_destroy (Linux >= 6.5): nothing can be retired"
fi

VIP=10.79.0.20
PORT=8080
SCN=$XM_TOP/scenarios/e2e-pool.json
SHARE=0.25
XM_TOOLS_PY=$XM_TOP/tests/tools
RATE=40

xm_node n1
xm_pod n1 cl 10.79.0.2/16
for i in 0 1 2; do xm_pod n1 b$i 10.79.1.$((10 + i))/16; done
# A pod of the agent's cgroup that holds no client connection (as a server pod
# would): the ticks' passes walk it, the urgent_ms poll need not (slowpoll run).
xm_pod n1 sv 10.79.1.20/16
xm_pod_bg sv sleep 3600

# write_config REBALANCE (true/false) IDLE_MS FAST_FACTOR URGENT_MS ON_READ HOLD_ON_READ
write_config() {
	# urgent_share as share_per_tick: check_bounds holds every quota to that share
	xm_rebal_config $PORT "${ALGO:-l3}" "{\"enabled\": $1, \"idle_ms\": $2, \"share_per_tick\": $SHARE,
		\"urgent_share\": $SHARE, \"max_per_s\": $RATE, \"ticks\": 2, \"margin\": 0.3, \"fast_factor\": $3, \"urgent_ms\": $4,
		\"on_read\": $5, \"hold_on_read\": $6}"
}

# run NAME REBALANCE [IDLE_MS [FAST_FACTOR [URGENT_MS [ON_READ [HOLD_ON_READ]]]]]: agent + replicas + xm-load rr
# (pool, retry), the idle pool, urllib3; leaves $XM_RUN_DIR/NAME.*; BUSY=1: urllib3 alone,
# busy (5 ms between requests)
run() {
	local name=$1 start i spids=() upid ipid
	write_config "$2" "${3:-100}" "${4:-4}" "${5:-10}" "${6:-1}" "${7:-0}"
	xm_agent_start --config "$XM_RUN_DIR/agent.json" --log-level debug \
		2>"$XM_RUN_DIR/$name.agent.log"
	start=$(python3 -c 'import time; print(f"{time.time() + 1.0:.3f}")')
	for i in 0 1 2; do
		xm_bg ip netns exec "$XM_PREFIX-b$i" "$XM_TOOLS/xm-serve" scenario \
			--listen 10.79.1.$((10 + i)):$PORT --replica $i --scenario "$SCN" --start "$start"
		spids+=("$XM_LAST_PID")
	done
	if [ "${BUSY:-0}" = 1 ]; then
		# Busy connections only: urllib3, 24 threads, 5 ms between a response and the next
		# request (its pool is LIFO: the connection that came back takes it). The
		# connections open at once on an even table: 24, not 12, so that replica 2
		# holds one or none when it turns slow in under 1 run in 1000, not 1 in 20
		# (binomial, p = 1/3): with none there is nothing to retire and the run fails.
		xm_pod_exec cl /usr/bin/python3 "$XM_TOOLS_PY/urllib3_pool.py" "http://$VIP:$PORT" 11 \
			--threads 24 --think 0.005 --start "$start" >"$XM_RUN_DIR/$name.urllib3" 2>&1 ||
			{ cat "$XM_RUN_DIR/$name.urllib3" >&2; xm_fail "urllib3 client failed"; }
		tail -n1 "$XM_RUN_DIR/$name.urllib3" >&2
	else
		# A pool that holds 24 idle connections, opened at t = 0.5 s (a third on each replica).
		xm_pod_bg cl sh -c 'sleep 1.5; exec /usr/bin/python3 "$0" "$1" 24 9' \
			"$XM_TOOLS_PY/idle_pool.py" "$VIP:$PORT" >"$XM_RUN_DIR/$name.idle" 2>&1
		ipid=$XM_LAST_PID
		if [ "$2" = true ]; then
			# A real client library with its own pool, from t = 4 s (replica 2 slow) for 6 s.
			xm_pod_bg cl sh -c 'sleep 5; exec /usr/bin/python3 "$0" "$1" 6 --out "$2"' \
				"$XM_TOOLS_PY/urllib3_pool.py" "http://$VIP:$PORT" "$XM_RUN_DIR/$name.urllib3.csv" \
				>"$XM_RUN_DIR/$name.urllib3" 2>&1
			upid=$XM_LAST_PID
		fi
		# Connections live long (1000 requests, 60 s): only rebalancing moves them.
		# Under qemu TCG (XM_SMALL) one emulated vCPU runs the three Python and C
		# clients, the servers and the agent: at the scenario's 120/s the open
		# loop fell 1.2 s behind and 303 requests hit the 3 s timeout (6.1
		# matrix, 2026-12-01). A third of the rate still brings the slow
		# replica's requests every tick; the timeout leaves room for the lag.
		xm_pod_exec cl "$XM_TOOLS/xm-load" rr --target $VIP:$PORT --scenario "$SCN" --start "$start" \
			--rate "$(xm_size 120 40)" --timeout "$(xm_size 3 10)" \
			--per-conn 1000 --max-age 60 --retry --proto http \
			--csv "$XM_RUN_DIR/$name.csv" >"$XM_RUN_DIR/$name.out" || xm_fail "xm-load rr failed"
		tail -n1 "$XM_RUN_DIR/$name.out" >&2
		wait "$ipid" || { cat "$XM_RUN_DIR/$name.idle" >&2; xm_fail "idle pool client failed"; }
		tail -n1 "$XM_RUN_DIR/$name.idle" >&2
		if [ "$2" = true ]; then
			wait "$upid" || { cat "$XM_RUN_DIR/$name.urllib3" >&2; xm_fail "urllib3 client failed"; }
			tail -n1 "$XM_RUN_DIR/$name.urllib3" >&2
		fi
	fi
	xm_ctl -j backend list interval 0 >"$XM_RUN_DIR/$name.backends.json" || xm_fail "backend list failed"
	xm_ctl backend list interval 0 >"$XM_RUN_DIR/$name.backends.txt" || xm_fail "backend list (plain) failed"
	grep -q "CONNS.*RET/S" "$XM_RUN_DIR/$name.backends.txt" || xm_fail "backend list shows no CONNS, RET/S"
	kill "${spids[@]}" 2>/dev/null
	kill "$XM_AGENT_PID" 2>/dev/null
	wait "$XM_AGENT_PID" 2>/dev/null
}

# field NAME BACKEND KEY: from the run's backend list JSON (xm_backend_field)
field() { xm_backend_field "$XM_RUN_DIR/$1.backends.json" "$2" "$3"; }
# slow_held NAME: the connections replica 2 (10.79.1.12) held in its first
# rebalancing plan of run NAME (the tick it turned slow), from the agent's debug log
slow_held() {
	local id
	id=$(field "$1" "10.79.1.12:$PORT" id)
	sed -n "s/.*rebalance: backend $id: retired .* held \([0-9]*\) .*/\1/p" \
		"$XM_RUN_DIR/$1.agent.log" | head -n1
}
# pool_held NAME: the idle pool's connections to replica 2 in run NAME (of its 24)
pool_held() {
	tail -n1 "$XM_RUN_DIR/$1.idle" | sed -n 's/.*backends=\(.*,\)*2:\([0-9]*\).*/\2/p'
}

# fresh_run NAME MIN HELD PORT... -- RUN ARGS: run NAME on a service of its own
# (the first port; a fresh table), repeated on the next port while replica 2
# held fewer than MIN connections when it turned slow (HELD NAME: slow_held or
# pool_held). Too few is within the hysteresis, and nothing to retire is then
# right: a replica far slower right now is planned at weight 0, and still must
# hold more than margin / n (a tenth here) of the service's connections. The
# binomial of an even table gives the pool's 24 connections 5 or fewer on one
# replica in 1 run in 7; and the table the pool meets at t = 0.5 s is l3's
# after 0.5 s of the slow start, not always even (a CI run: 15, 7 and 2 of 24,
# and 11 of xm-load's requests to replica 2: it held about 3 of 39
# connections, and none was retired, rightly). Sets RUN_PORT to the port of
# the run kept and RUN_HELD0 to lb_held_segments before it.
fresh_run() {
	local name=$1 min=$2 heldfn=$3 held= ports=() port
	shift 3
	while [ "$1" != -- ]; do ports+=("$1"); shift; done
	shift
	for port in "${ports[@]}"; do
		RUN_PORT=$port
		# (no such counter before an agent first loaded the LB programs: none held)
		RUN_HELD0=$(xm_stat lb_held_segments 2>/dev/null || echo 0)
		PORT=$port run "$name" "$@"
		held=$(PORT=$port "$heldfn" "$name")
		[ "${held:-0}" -ge "$min" ] && break
		xm_log "$name: replica 2 held ${held:-0} connections when it turned slow (fewer than $min: within the margin); again on a fresh service"
	done
	xm_log "$name: replica 2 held ${held:-0} connections when it turned slow (port $RUN_PORT)"
}
# busy_run NAME PORT... -- RUN ARGS: a BUSY=1 l3x fresh_run (about 8 of the
# urllib3 pool's 24 connections per replica on a fresh table), kept once
# replica 2 held 6 or more when it turned slow. A tick's poll takes a unit of
# quota whenever it finds one of the slow replica's connections idle, and
# replica 2 goes only down to the margin (3 of 24): holding 4, both went to
# the polls of two ticks, and the read events had nothing left to retire.
busy_run() {
	local name=$1
	shift
	BUSY=1 ALGO=l3x fresh_run "$name" 6 slow_held "$@"
}

# Ports 8080, 8090, 8091 (the off run takes 8080 again at the end).
fresh_run on 6 pool_held 8080 8090 8091 -- true
ON_PORT=$RUN_PORT
if [ "$VIA" = sockdiag ]; then
	# The kernel's answer, word for word, when it cannot destroy over sock_diag.
	line=$(grep -o "SOCK_DESTROY over sock_diag fails: .*" "$XM_RUN_DIR/on.agent.log" | head -n1)
	[ -n "$line" ] && xm_skip "$line"
	grep -q "closed with SOCK_DESTROY over sock_diag netlink" "$XM_RUN_DIR/on.agent.log" ||
		xm_fail "the agent did not take the sock_diag fallback"
fi
retired=$(field on 10.79.1.12:$ON_PORT retired)
xm_assert "$retired" -gt 0 "idle connections to the slow replica retired"
load_line=$(tail -n1 "$XM_RUN_DIR/on.out")
failed=$(awk -F, 'NR > 1 && $4 == 0' "$XM_RUN_DIR/on.csv" | wc -l)
xm_assert "$failed" -eq 0 "failed requests of the retrying pool client"
for b in 10 11 12; do
	xm_assert "$(field on 10.79.1.$b:$ON_PORT aborted)" -eq 0 \
		"requests cut in flight on 10.79.1.$b (aborted)"
done
# whose_retired NAME: which client held the connections the agent retired (its
# debug lines name the client's port; xm-load's and urllib3's CSVs name theirs)
whose_retired() {
	python3 - "$XM_RUN_DIR/$1" <<'PY'
import csv, os, re, sys
run = sys.argv[1]
def ports(path, cols):
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {r[c] for r in csv.DictReader(f) for c in cols if r.get(c)}
load = ports(run + ".csv", ("lport", "first_lport"))
u3 = ports(run + ".urllib3.csv", ("lport",))
got = {"xm-load": 0, "urllib3": 0, "idle pool (or unseen)": 0}
for line in open(run + ".agent.log", errors="replace"):
    m = re.search(r"rebalance: retired [0-9.]+:(\d+) ->", line)
    if m:
        who = "xm-load" if m[1] in load else "urllib3" if m[1] in u3 else "idle pool (or unseen)"
        got[who] += 1
print(", ".join(f"{k} {v}" for k, v in got.items()))
PY
}

# Each client's own evidence of a pooled connection closed under it while idle:
# the idle pool's check before reuse; xm-load's EOF on an idle connection, or a
# request retried on a reused one; urllib3's replaced dropped connections
# ("dropped") and retried requests. Which connections are retired first is the
# agent's pick: they can all be urllib3's, which none of the other counts sees.
read -r iclosed ifailed < <(tail -n1 "$XM_RUN_DIR/on.idle" |
	sed -n 's/.*closed_while_idle=\([0-9]*\) failed=\([0-9]*\).*/\1 \2/p')
lclosed=$(xm_kv idle_closed "$load_line")
lretried=$(xm_kv retried "$load_line")
uline=$(tail -n1 "$XM_RUN_DIR/on.urllib3")
udropped=$(xm_kv dropped "$uline")
uretried=$(xm_kv retried "$uline")
xm_log "retired connections' clients: $(whose_retired on); seen closed: idle pool ${iclosed:-?}," \
	"xm-load ${lclosed:-?} idle + ${lretried:-?} retried, urllib3 ${udropped:-?} dropped + ${uretried:-?} retried"
xm_assert "$((${iclosed:-0} + ${lclosed:-0} + ${lretried:-0} + ${udropped:-0} + ${uretried:-0}))" -gt 0 \
	"pooled connections the clients found closed while idle (idle pool, xm-load rr, urllib3)"
xm_assert "${ifailed:-x}" -eq 0 "failed requests of the idle pool (retries once)"
ufailed=$(xm_kv failed "$uline")
xm_assert "${ufailed:-x}" -eq 0 "failed requests of the urllib3 pool (retries once)"
# The pods here share the host's TCP hash table (unless this machine set
# tcp_child_ehash_entries): every walk reads all of it, and the agent says how
# to give each pod a table of its own, once.
ehash=$(ip netns exec "$XM_PREFIX-cl" sysctl -n net.ipv4.tcp_ehash_entries 2>/dev/null || echo 0)
if [ "$ehash" -lt -16384 ]; then
	xm_assert "$(grep -c "share the host's TCP hash table ($((-ehash)) buckets).*tcp_child_ehash_entries" \
		"$XM_RUN_DIR/on.agent.log")" -eq 1 "the agent's hint on the shared TCP hash table, once"
fi

# Bounds, from the agent's debug lines: "backend ID: retired R, spent S (M marked on
# reads), held H (...), quota Q ...": R connections closed and S units of quota taken
# (by passes, and by read marks, whose closes take none) since the tick before.
# check_bounds RUN [MUST_RETIRE]: MUST_RETIRE 0 lets the run retire nothing.
check_bounds() {
grep -n "quota accounting is broken\|more quota left than given" "$XM_RUN_DIR/$1.agent.log" &&
	xm_fail "the agent found its quota accounting broken ($1)"
python3 - "$XM_RUN_DIR/$1.agent.log" "$SHARE" "$RATE" "${2:-1}" <<'EOF2' || xm_fail "rebalancing bounds ($1)"
import math, re, sys
share, rate, must_retire = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
quota = {}
retired_total = spent_total = marked_total = 0
passes = 0
for line in open(sys.argv[1]):
    m = re.search(r"rebalance: backend (\d+): retired (\d+), spent (\d+) \((\d+) marked on reads\), "
                  r"held (\d+) .*quota (\d+)", line)
    if not m:
        continue
    be, ret, spent, marked, held, q = (int(x) for x in m.groups())
    passes += 1
    # The quota the previous tick gave is never overspent, by passes and read marks together.
    assert spent <= quota.get(be, 0), f"backend {be}: spent {spent} > quota {quota.get(be, 0)}"
    assert marked <= spent, f"backend {be}: {marked} marks > {spent} units spent"
    # What a pass closed never exceeds that quota either.
    assert ret <= quota.get(be, 0), f"backend {be}: retired {ret} > quota {quota.get(be, 0)}"
    # A quota never exceeds share_per_tick of the backend's connections (or one at a time).
    assert q <= max(1, math.floor(share * held)), f"backend {be}: quota {q} > {share} x {held}"
    quota[be] = q
    retired_total += ret
    spent_total += spent
    marked_total += marked
    # No connection is closed without a unit of quota (a mark's close used the mark's).
    assert retired_total <= spent_total, f"{retired_total} retired > {spent_total} units spent"
print(f"rebalance: {passes} plan lines, {retired_total} retired, {spent_total} units spent "
      f"({marked_total} on read marks)")
# 12 s of run (+1 s burst) at most rate per second for the whole service.
assert retired_total <= rate * 14, f"{retired_total} retired > {rate}/s"
assert retired_total > 0 or not must_retire
EOF2
xm_log "ok: rebalancing bounds hold (quota per pass, share per tick, rate): $1"
}
check_bounds on

# The fast path alone: idle_ms 60 s, longer than the run, so only an urgent
# backend can lose connections, at their first idle moment. fast_factor 2
# (= slow_factor): what is tested is what the path does; its threshold is
# unit-tested (with 3 backends and l3's slow filters, the median is that of
# estimates still falling from the slow start, and under load replica 2 did
# not always reach 4x it). Ports 8092-8094: a fresh table (the on run left
# replica 2 at the floor weight, holding none or one).
fresh_run urgent 6 pool_held 8092 8093 8094 -- true 60000 2 10 0
grep -q "quota [1-9].*at the first idle moment" "$XM_RUN_DIR/urgent.agent.log" ||
	xm_fail "no retire-now quota for the far slower replica"
xm_assert "$(field urgent 10.79.1.12:$RUN_PORT retired)" \
	-gt 0 "connections to the far slower replica retired with idle_ms 60 s (fast path)"
xm_assert "$(awk -F, 'NR > 1 && $4 == 0' "$XM_RUN_DIR/urgent.csv" | wc -l)" -eq 0 \
	"failed requests of the retrying pool client (fast path)"
for b in 10 11 12; do
	xm_assert "$(field urgent 10.79.1.$b:$RUN_PORT aborted)" -eq 0 "requests cut in flight on 10.79.1.$b (fast path)"
done
xm_assert "$(tail -n1 "$XM_RUN_DIR/urgent.urllib3" | sed -n 's/.* failed=\([0-9]*\).*/\1/p')" \
	-eq 0 "failed requests of the urllib3 pool (fast path)"
check_bounds urgent

# read_retired NAME: what the agent's closing line says read events retired / the poll retired
read_retired() {
	sed -n 's/.*rebalance: far slower backends: \([0-9]*\) connections retired on \([0-9]*\) read events.*, \([0-9]*\) by the urgent_ms poll.*/\1 \2 \3/p' \
		"$XM_RUN_DIR/$1.agent.log" | tail -n1
}
# busy_clean NAME PORT WHAT: no request of busy run NAME cut in flight, none failed
busy_clean() {
	local b
	for b in 10 11 12; do
		xm_assert "$(field "$1" "10.79.1.$b:$2" aborted)" -eq 0 \
			"requests cut in flight on 10.79.1.$b ($3)"
	done
	xm_assert "$(xm_kv failed "$(tail -n1 "$XM_RUN_DIR/$1.urllib3")")" -eq 0 \
		"failed requests of the urllib3 pool ($3)"
}
# The read-event run: ports 8082-8084 (never the table the runs before left:
# there replica 2 is at the floor weight and holds none or one).
busy_run onread 8082 8083 8084 -- true 60000 2 10000 1
read -r rretired revents rpoll < <(read_retired onread)
grep "rebalance: \(the read\|attach the read\)" "$XM_RUN_DIR/onread.agent.log" >&2
xm_log "read events: ${revents:-0} events, ${rretired:-0} retired on them, ${rpoll:-0} by the poll (at the ticks)"
if [ "$VIA" = sockdiag ]; then
	# SOCK_DESTROY comes after the iterator's check, outside the socket lock: no read events
	xm_assert "${revents:-0}" -eq 0 "read events with the sock_diag fallback"
else
	xm_assert "${revents:-0}" -gt 0 "read events from the far slower replica's connections"
	xm_assert "${rretired:-0}" -gt 0 "connections retired at the idle moment a read event found"
fi
busy_clean onread "$RUN_PORT" "read events"
# Over sock_diag a busy pool's connection must be silent 50 ms to go, and this
# run's pool is rarely that quiet: there the bounds hold whether or not one went.
if [ "$VIA" = sockdiag ]; then check_bounds onread 0; else check_bounds onread; fi

# Walks on a slow machine: each namespace's walk 80 ms longer (the kernel
# matrix's one-vCPU emulated 6.1 guest took 40-160 ms a walk of its TCP hash
# table: the tick's pass and the urgent_ms poll took its CPU and the clients
# timed out). The busy pool (on_read 0: the poll alone) keeps the poll going;
# the walks take at most a fifth of the agent's time (without the budget: a
# tick's pass every 250 ms, about a third, and the poll back to back on top),
# ticks' passes are skipped and poll waits made longer for it, and nothing
# fails. Ports 8087-8089: a fresh table, as for the read-event run.
XMESH_TEST_WALK_DELAY_MS=80 busy_run slowpoll 8087 8088 8089 -- true 60000 2 10 0
grep -q "XMESH_TEST_WALK_DELAY_MS=80" "$XM_RUN_DIR/slowpoll.agent.log" ||
	xm_fail "the agent did not take the test knob XMESH_TEST_WALK_DELAY_MS"
walks=$(sed -n "s/.*rebalance: \([0-9]*\) ticks' passes, \([0-9]*\) us each on average over \([0-9.]*\) network namespaces .*, \([0-9]*\) urgent_ms passes over \([0-9.]*\) (the namespaces with client connections); these walks took \([0-9.]*\) % of the time since the first (at most 1\/5: \([0-9]*\) ticks' passes skipped, \([0-9]*\) poll waits made longer.*/\1 \2 \3 \4 \5 \6 \7 \8/p" \
	"$XM_RUN_DIR/slowpoll.agent.log" | tail -n1)
[ -n "$walks" ] || xm_fail "no summary of the rebalancer's walks in the agent's log"
read -r passes pass_us tick_ns polls poll_ns share skipped longer <<<"$walks"
xm_log "slowpoll: $passes ticks' passes of $pass_us us over $tick_ns namespaces, $skipped skipped; $polls polls over $poll_ns, $longer waits made longer; walks $share % of the time"
# the ticks walk the client pod and the server-like pod; the poll the client's alone
xm_assert "$(awk -v t="$tick_ns" -v p="$poll_ns" -v n="$polls" 'BEGIN { print (t > 1.0 && n > 0 && p <= 1.0) }')" \
	-eq 1 "namespaces a tick's pass walks ($tick_ns) and an urgent_ms pass ($poll_ns: those with client connections)"
xm_assert "$skipped" -ge 3 "ticks' passes skipped while the walks had had their share"
xm_assert "$(awk -v s="$share" 'BEGIN { print (s <= 20.5) }')" -eq 1 \
	"the share of the time the walks took ($share %) at most a fifth"
# Over sock_diag the pool's connections go after 50 ms of silence, and the
# quota can be spent in the first poll or two (one wait made longer in each of
# two runs on the 6.1 guest): the count of longer waits only with bpf_sock_destroy.
if [ "$VIA" = bpf ]; then
	xm_assert "$longer" -ge 3 "poll waits made longer than urgent_ms (10 ms) for the walks' share"
fi
busy_clean slowpoll "$RUN_PORT" "slow walks"
# the bounds hold; with walks this slow a run may retire nothing (1 plan of 10 ticks' passes once)
check_bounds slowpoll 0

run off false
# The runs since the on run (each a port of its own) removed this service (8080); the off run's
# agent created it again, on backend ids handed out afresh, which may be ids
# an earlier run's backends held (with retired connections). A row published
# per id starts from zero at handout: with rebalancing off and l3 (no
# stickiness) nothing counts connections, so no row, or one with nothing
# retired. (Whether ids are reused here depends on the order of handouts:
# test_lb_restart.sh checks the reset itself, with rows made stale by hand.)
for b in 10 11 12; do
	xm_assert "$(python3 -c 'import json, sys
rows = {r["backend"]: r for r in json.load(open(sys.argv[1]))}
print(rows[sys.argv[2]].get("rebalance", {}).get("retired", 0))' \
		"$XM_RUN_DIR/off.backends.json" "10.79.1.$b:$PORT")" -eq 0 \
		"connections shown retired from 10.79.1.$b, re-created with rebalancing off"
done
grep -q "rebalance: backend .*: retired [1-9]" "$XM_RUN_DIR/off.agent.log" &&
	xm_fail "the agent retired connections with rebalancing off"
xm_assert "$(awk -F, 'NR > 1 && $4 == 0' "$XM_RUN_DIR/off.csv" | wc -l)" -eq 0 \
	"failed requests with rebalancing off"
xm_assert "$(tail -n1 "$XM_RUN_DIR/off.idle" | sed -n 's/.*closed_while_idle=\([0-9]*\).*/\1/p')" \
	-eq 0 "idle pooled connections closed with rebalancing off"
xm_assert "$(xm_kv idle_closed "$(tail -n1 "$XM_RUN_DIR/off.out")")" -eq 0 \
	"pooled connections xm-load rr found closed with rebalancing off"
# Last: its own service (port 8081) replaces the one the runs above share.
# hold_on_read (bpf_sock_destroy only): a read that leaves such a connection idle
# also marks it, so that the client's next request is held (lb_held_segments)
# until the pass closes the connection; that request fails at the client and
# urllib3 sends it again on a new connection. None aborted, none failed.
if [ "$VIA" = bpf ]; then
	# the agent's test knob: each read event's pass starts 20 ms late, after the
	# pool's next request (5 ms): only a hold lets the pass retire the connection.
	# A service of its own (port 8081), not the table the run before left: as
	# for the read-event run (port 8082), an even table to start from, so that
	# replica 2 holds some of the pool's connections when it turns slow.
	XMESH_TEST_DESTROY_DELAY_MS=20 busy_run holdread 8081 8085 8086 -- true 60000 2 10000 1 1
	PORT=$RUN_PORT
	held=$(($(xm_stat lb_held_segments) - RUN_HELD0))
	read -r rretired revents rpoll < <(read_retired holdread)
	xm_log "hold_on_read: ${revents:-0} read events, ${rretired:-0} retired on them, $held segments held"
	xm_assert "${rretired:-0}" -gt 0 "connections retired on read events (hold_on_read)"
	xm_assert "$held" -gt 0 "requests held from a read to its pass (hold_on_read)"
	busy_clean holdread "$PORT" "hold_on_read"
	check_bounds holdread
fi
exit 0
