#!/bin/bash
# SPDX-License-Identifier: MIT
# Mark-and-hold (include/xmesh/lb.h): over the sock_diag fallback (kernels
# without bpf_sock_destroy, forced here with XMESH_DISABLE_FEATURES) the
# iterator picks an idle connection under the socket lock and the agent closes
# it afterwards. A request written in between must never reach the backend:
# the pick marks the socket, and while the mark is fresh its payload is held
# (cgroup_skb egress drops its data segments, sk_msg passes a redirected
# socket's sends to TCP to meet that drop); the close then fails the request
# at the client, which sends it again on a new connection.
#
# The window is made wide and certain with the agent's test knob
# XMESH_TEST_DESTROY_DELAY_MS (each SOCK_DESTROY 50 ms after its pick). The
# client is urllib3 with 12 threads and 60 ms between a response and the next
# request; replica 2 turns 40x slower at t = 4 s (scenarios/e2e-pool.json) and
# is shed at the first idle moment (fast_factor 2; over sock_diag after 50 ms
# of silence), so a pick falls 50-60 ms after a response and the next request
# on that connection comes inside the 50 ms before its close. Asserted: some
# data was held, connections were retired, no request was cut in flight (the
# probes' `aborted`, and every request each replica logged was answered), no
# client request failed (urllib3 retries once). Run twice: plain TCP, and with
# every address registered so that the connections are redirected (sk_msg).
# Without the hold the requests written in the window reach replica 2 and are
# cut there (aborted > 0, requests "gone" in the replica's log).
#
# Then the stale mark: with a delay of 300 ms, past the 150 ms within which
# the agent still closes (XM_LB_HOLD_CLOSE_NS), the agent leaves the picked
# connections open, the hold ends after 200 ms, and TCP sends the held
# request late: urllib3 without retries must see no failed request, and no
# request is cut.
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/xm-serve" ] || xm_skip "build the test tools (make)"
python3 -c 'import urllib3' 2>/dev/null || xm_skip "python3-urllib3 missing (scripts/install-deps.sh)"
export XMESH_DISABLE_FEATURES=sock_destroy

VIP=10.79.0.20 # xm_rebal_config's
PORT=8080 # the first run's; each run takes the next
SCN=$XM_TOP/scenarios/e2e-pool.json
XM_TOOLS_PY=$XM_TOP/tests/tools

xm_node n1
xm_pod n1 cl 10.79.0.2/16
for i in 0 1 2; do xm_pod n1 b$i 10.79.1.$((10 + i))/16; done

# Each run has a service of its own (a port of its own), so that no run starts
# from the table and the backend counters another left. l3: its smooth
# filters spread the first connections evenly (l3x may leave a replica none,
# whose default estimate of 5 s then lifts the median above the slow one's).
write_config() {
	xm_rebal_config "$1" l3 '{"enabled": true, "idle_ms": 60000, "share_per_tick": 0.25,
		"max_per_s": 40, "ticks": 2, "margin": 0.3, "fast_factor": 2, "urgent_ms": 10,
		"on_read": 0}'
}

# run NAME DELAY_MS [urllib3 options...]: agent (destroys delayed), replicas, the client.
# REDIRECT=1: all addresses registered, replicas in the test cgroup: redirected connections.
run() {
	local name=$1 delay=$2 start i spids=() held0 msgs0 serve=(ip netns exec)
	shift 2
	PORT=$((PORT + 1))
	write_config $PORT
	XMESH_TEST_DESTROY_DELAY_MS=$delay xm_agent_start --config "$XM_RUN_DIR/agent.json" \
		--log-level debug 2>"$XM_RUN_DIR/$name.agent.log"
	if [ "${REDIRECT:-0}" = 1 ]; then
		xm_register cl 10.79.0.2
		for i in 0 1 2; do xm_register b$i 10.79.1.$((10 + i)); done
		serve=(xm_pod_exec)
	fi
	held0=$(xm_stat lb_held_segments)
	msgs0=$(xm_stat lb_held_msgs)
	start=$(python3 -c 'import time; print(f"{time.time() + 1.0:.3f}")')
	for i in 0 1 2; do
		if [ "${REDIRECT:-0}" = 1 ]; then
			xm_pod_bg b$i "$XM_TOOLS/xm-serve" scenario --listen 10.79.1.$((10 + i)):$PORT \
				--replica $i --scenario "$SCN" --start "$start" --csv "$XM_RUN_DIR/$name.b$i.csv"
		else
			xm_bg ip netns exec "$XM_PREFIX-b$i" "$XM_TOOLS/xm-serve" scenario \
				--listen 10.79.1.$((10 + i)):$PORT --replica $i --scenario "$SCN" \
				--start "$start" --csv "$XM_RUN_DIR/$name.b$i.csv"
		fi
		spids+=("$XM_LAST_PID")
	done
	xm_pod_exec cl /usr/bin/python3 "$XM_TOOLS_PY/urllib3_pool.py" "http://$VIP:$PORT" 11 \
		--threads 12 --pool-per-thread --think "$THINK" --start "$start" "$@" >"$XM_RUN_DIR/$name.urllib3" 2>&1 ||
		{ tail -n 20 "$XM_RUN_DIR/$name.urllib3" >&2; xm_fail "urllib3 client failed ($name)"; }
	tail -n1 "$XM_RUN_DIR/$name.urllib3" >&2
	HELD=$(($(xm_stat lb_held_segments) - held0))
	HELD_MSGS=$(($(xm_stat lb_held_msgs) - msgs0))
	xm_ctl -j backend list interval 0 >"$XM_RUN_DIR/$name.backends.json" ||
		xm_fail "backend list failed"
	kill "${spids[@]}" 2>/dev/null
	wait "${spids[@]}" 2>/dev/null
	kill "$XM_AGENT_PID" 2>/dev/null
	wait "$XM_AGENT_PID" 2>/dev/null
}

# field NAME BACKEND KEY: from the run's backend list JSON (xm_backend_field)
field() { xm_backend_field "$XM_RUN_DIR/$1.backends.json" "$2" "$3"; }

# no_cut NAME: no request cut in flight, by the probes and by the replicas' own logs
no_cut() {
	local b gone got
	for b in 10 11 12; do
		xm_assert "$(field "$1" 10.79.1.$b:$PORT aborted)" -eq 0 \
			"requests cut in flight on 10.79.1.$b (probes' aborted, $1)"
	done
	gone=$(cat "$XM_RUN_DIR/$1".b?.csv | grep -c ',gone$')
	got=$(cat "$XM_RUN_DIR/$1".b?.csv | grep -c ',answered$')
	xm_log "$1: the replicas answered $got requests"
	xm_assert "$got" -gt 0 "requests the replicas logged as answered ($1)"
	xm_assert "$gone" -eq 0 "requests the replicas received whose connection went before the answer ($1)"
}

# held NAME REDIRECT_LABEL: the window of 50 ms is always met by a held request
held_run() {
	local name=$1 retired failed retried attempt
	# The precondition is an urgent replica (the plan's rule, unit-tested): at
	# times a replica gets no connection at the start and its default estimate
	# keeps the slow one from being urgent. And a request in some pick's
	# window: with one pick (one retired, seen on 6.1 under qemu) the client's
	# 0.1 s think time can miss the 100 ms window. Then the run is repeated;
	# with holding broken every attempt holds nothing and the asserts fail.
	for attempt in 1 2 3; do
		run "$name" 100
		[ "$(field "$name" 10.79.1.12:$PORT retired)" -gt 0 ] && [ "$HELD" -gt 0 ] && break
		xm_log "$name: attempt $attempt: $(field "$name" 10.79.1.12:$PORT retired) retired, $HELD held" \
			"(no urgent replica, or no request in a pick's window): again"
	done
	grep -q "closed with SOCK_DESTROY over sock_diag netlink" "$XM_RUN_DIR/$name.agent.log" || {
		line=$(grep -o "SOCK_DESTROY over sock_diag fails: .*" "$XM_RUN_DIR/$name.agent.log" | head -n1)
		[ -n "$line" ] && xm_skip "$line"
		xm_fail "the agent did not take the sock_diag fallback"
	}
	grep -q "XMESH_TEST_DESTROY_DELAY_MS=100" "$XM_RUN_DIR/$name.agent.log" ||
		xm_fail "the agent did not take the destroy delay"
	retired=$(field "$name" 10.79.1.12:$PORT retired)
	xm_log "$name: $retired retired from the slow replica, $HELD segments held, $HELD_MSGS sends passed to TCP to be held"
	xm_assert "$retired" -gt 0 "connections to the slow replica retired ($name)"
	no_cut "$name"
	xm_assert "$HELD" -gt 0 "data segments held between a pick and its close ($name)"
	failed=$(xm_kv failed "$(tail -n1 "$XM_RUN_DIR/$name.urllib3")")
	retried=$(xm_kv retried "$(tail -n1 "$XM_RUN_DIR/$name.urllib3")")
	xm_log "$name: urllib3 retried $retried requests (a client without retries would have seen them fail)"
	xm_assert "${failed:-x}" -eq 0 "failed requests of the urllib3 pool (retries once, $name)"
}

THINK=0.1 held_run held

# The mark goes stale before the close: the agent leaves the connection open,
# TCP sends the held request late; a client without retries loses nothing.
for attempt in 1 2 3; do
	THINK=0.1 run stale 300 --no-retry
	left=$(sed -n 's/.*rebalance: \([0-9]*\) picked connections left open.*/\1/p' "$XM_RUN_DIR/stale.agent.log")
	[ "${left:-0}" -gt 0 ] && break
	xm_log "stale: nothing picked in attempt $attempt (no urgent replica): again"
done
xm_log "stale: ${left:-0} picks left open, $HELD segments held (then sent by TCP)"
xm_assert "${left:-0}" -gt 0 "picked connections left open once their mark was stale"
xm_assert "$HELD" -gt 0 "data segments held before the mark went stale"
xm_assert "$(field stale 10.79.1.12:$PORT retired)" -eq 0 \
	"connections retired with every close past the hold"
no_cut stale
xm_assert "$(xm_kv failed "$(tail -n1 "$XM_RUN_DIR/stale.urllib3")")" -eq 0 \
	"failed requests of urllib3 without retries (held requests sent late, none lost)"

# Redirected connections: the client's sends pass sk_msg, which must hand them to TCP.
REDIRECT=1 THINK=0.05 held_run redirected
xm_assert "$HELD_MSGS" -gt 0 "redirected sends passed to TCP to be held (redirected)"
exit 0
