#!/bin/bash
# SPDX-License-Identifier: MIT
# Chaos (issue 12): the agent under a steady stream of service and weight
# changes through its socket, control clients that connect and abort, 50
# concurrent slow metrics clients and a SIGHUP reload every 100 ms, with one
# SIGKILL and restart in the middle. Afterwards: every service is as the
# last accepted config says, no descriptor leaked, and the weighting tick
# never paused more than 2 ticks (the gap between two ticks, read from the
# loop's own mmapped map, stays below 3 tick intervals). About 50 s.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
CFG=$XM_RUN_DIR/xm-config.json
LOG=$XM_RUN_DIR/agent.log
PHASE=${XM_CHAOS_SECONDS:-10}
config() { # VARIANT: services 10.96.V.1..10 with 3 backends each
	local v=$1 i j sep="" bsep
	{
		printf '{"weighting": {"tick_ms": 500}, "services": ['
		printf '{"vip": "10.96.1.1", "port": 80, "backends": [{"address": "10.99.0.1", "port": 8080}]}'
		for ((i = 1; i <= 10; i++)); do
			# odd services static (weights checked at the end), even ones weighted by l3
			printf ', {"vip": "10.96.%d.%d", "port": 80, "algorithm": "%s", "backends": [' \
				$((v + 10)) "$i" "$([ $((i % 2)) = 1 ] && echo static || echo l3)"
			bsep=""
			for ((j = 1; j <= 3; j++)); do
				printf '%s{"address": "10.99.%d.%d", "port": 8080, "weight": %d}' "$bsep" "$i" "$j" $((j + v))
				bsep=,
			done
			printf ']}'
		done
		printf ']}\n'
	} >"$CFG.tmp"
	mv "$CFG.tmp" "$CFG"
}
start() {
	xm_agent_start --netns "$(xm_netns_path n1)" --config "$CFG" --metrics 127.0.0.1:9464 2>>"$LOG"
	SOCK=$(ls "$XM_RUN_DIR"/*.sock)
	# A few ticks first: the loop opens what it keeps (e.g. the rebalancer's
	# handles on the pods' network namespaces) at its first tick, not at start.
	sleep 1.5
}
nfds() { ls /proc/"$XM_AGENT_PID"/fd | wc -l; }
hups() { # SECONDS: SIGHUP every 100 ms, alternating the config between two variants
	local end=$((SECONDS + $1)) v=0
	while [ $SECONDS -lt $end ]; do
		config $((v = 1 - v))
		kill -HUP "$XM_AGENT_PID" 2>/dev/null || true
		sleep 0.1
	done
}
phase() { # NAME
	# The load runs niced: what is measured is the agent's loop, not who wins
	# the two shared cores.
	nice -n 10 python3 "$XM_TOP/tests/integration/chaos.py" "$PHASE" "$SOCK" "$(xm_netns_path n1)" 9464 \
		"$XM_PIN/maps/xm_lb_wloop" >"$XM_RUN_DIR/chaos-$1.json" &
	local py=$!
	XM_PIDS+=($py)
	hups "$PHASE"
	wait "$py" || xm_fail "chaos load $1 failed"
	kill -0 "$XM_AGENT_PID" 2>/dev/null || xm_fail "agent died during chaos $1: $(tail -n 5 "$LOG")"
	xm_log "chaos $1: $(cat "$XM_RUN_DIR/chaos-$1.json")"
	local gap tick
	gap=$(xm_json 'int(j["max_gap_ms"])' <"$XM_RUN_DIR/chaos-$1.json")
	tick=$(xm_json 'j["tick_ms"]' <"$XM_RUN_DIR/chaos-$1.json")
	xm_assert "$tick" -gt 0 "weighting ticks seen during chaos $1"
	xm_assert "$gap" -lt $((3 * tick)) "longest gap between two ticks (ms) during chaos $1"
	xm_assert "$(xm_json 'j["ok"]' <"$XM_RUN_DIR/chaos-$1.json")" -gt 10 "changes accepted during chaos $1"
	xm_assert "$(xm_json 'j["scrapes"]' <"$XM_RUN_DIR/chaos-$1.json")" -gt 0 "slow scrapes served during chaos $1"
}
settled_fds() { # WANT: wait for the clients to go (control deadline 5 s, metrics idle 5 s)
	local n
	for _ in $(seq 100); do
		n=$(nfds)
		[ "$n" -le "$1" ] && break
		sleep 0.1
	done
	echo "$n"
}

config 0
start
fd0=$(nfds)
phase 1
# SIGKILL in the middle of it all, then a new agent adopts the datapath.
kill -9 "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
start
fd1=$(nfds)
phase 2
fd2=$(settled_fds "$fd1")
xm_assert "$fd2" -eq "$fd1" "agent descriptors after chaos (before: $fd1; first agent at start: $fd0)"

# The last accepted config is what runs.
config 1
xm_ctl service reload || xm_fail "final reload refused"
want=$(python3 - "$CFG" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
print(" ".join(sorted("%s:%d/tcp=%d" % (s["vip"], s["port"], len(s["backends"])) for s in c["services"])))
EOF
)
got=$(xm_ctl -j service list | xm_json '" ".join(sorted("%s=%d" % (s["service"], s["backend_count"]) for s in j))')
xm_assert "$got" = "$want" "services after the final reload"
w=$(xm_ctl -j backend list 10.96.11.3:80 interval 0 | xm_json '" ".join(sorted("%s=%g" % (b["backend"], b["weight"]) for b in j))')
xm_assert "$w" = "10.99.3.1:8080=2 10.99.3.2:8080=3 10.99.3.3:8080=4" "weights after the final reload"
grep -q "Too many open files" "$LOG" && xm_fail "the agent ran out of descriptors"
xm_log "ok: chaos survived"
