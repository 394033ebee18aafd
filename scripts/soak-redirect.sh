#!/bin/bash
# SPDX-License-Identifier: MIT
# Churn soak of socket redirection (issue 11, "Also"; `make soak-redirect`,
# not part of make test). Between two pods, THREADS client threads open, use
# and abort connections with random sizes and timing for DURATION seconds
# (xm-sockapi soak-client against echo-server: every echoed byte checked,
# every message bounded by a timeout, so a hang fails). Meanwhile the agent
# is killed and restarted every RESTART seconds (+- RESTART_JITTER, so that
# restarts land at random moments), and once, at UNINSTALL_AT seconds
# (default the middle), uninstalled (draining) and installed again; with
# UNINSTALL_EVERY=N, again every N seconds after that. STALL_AT=T STALL_S=S
# freezes the echo server (SIGSTOP) at T for S seconds: the check that the
# failure records tell a late byte (the client's deadline) from a lost one.
# At the end: no failure, the client's descriptors back to where they were,
# the redirect map empty.
#
# Everything is kept in SOAK_DIR (default build/soak/xm-soak-<UTC time>,
# printed at the end, also on failure, never deleted): run.log (this
# script, the agent), soak.out (the client: one soak-fail/soak-late line per
# failure), events.log (restarts, uninstall, reinstall: wall clock),
# counters.jsonl (xmesh and TCP counters every second), fail-ID.txt (the
# redirect map and ss of both pods when a failure was seen) and
# failures.txt (each failure placed among the events, with its evidence).
#
#   DURATION=60 THREADS=64 RESTART=15 make soak-redirect
set -eu
. "$(dirname "$0")/../tests/integration/lib.sh"
DURATION=${DURATION:-60}
THREADS=${THREADS:-64}
RESTART=${RESTART:-15}
RESTART_JITTER=${RESTART_JITTER:-0}
UNINSTALL_AT=${UNINSTALL_AT:-$((DURATION / 2))}
UNINSTALL_EVERY=${UNINSTALL_EVERY:-0}
TIMEOUT_MS=${TIMEOUT_MS:-10000}
STALL_AT=${STALL_AT:--1}
STALL_S=${STALL_S:-12}
SOAK_DIR=${SOAK_DIR:-$XM_TOP/build/soak/xm-soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$SOAK_DIR/bin"
exec > >(tee -a "$SOAK_DIR/run.log") 2>&1
# The binaries this soak runs, kept with its results (and safe from a rebuild meanwhile).
cp "$XM_BIN/xmesh-agent" "$XM_BIN/xmeshctl" "$XM_TOOLS/xm-sockapi" "$SOAK_DIR/bin/"
XM_BIN=$SOAK_DIR/bin XM_TOOLS=$SOAK_DIR/bin
git -C "$XM_TOP" describe --always --dirty >"$SOAK_DIR/bin/version" 2>/dev/null || true
# Also on failure: place every failure among the events, then say where it all is.
xm_cleanup_extra() {
	[ -s "$SOAK_DIR/soak.out" ] && "$XM_TOP/scripts/soak_redirect.py" report "$SOAK_DIR" "$TIMEOUT_MS"
	echo "soak: everything kept in $SOAK_DIR"
}
soak_event() { echo "$(date +%s.%N) $*" >>"$SOAK_DIR/events.log"; }
xm_setup
# Mark the teardown before it kills anything: failures after it are the test's own.
soak_teardown() {
	local rc=$?
	set +e
	soak_event "teardown (exit $rc)"
	(exit $rc) # xm_cleanup reads the exit status from $?
	xm_cleanup
}
trap soak_teardown EXIT
# the recvmsg counters on (off by default): the soak reports the EAGAINs they see
echo '{"redirect_recv_counters": true}' >"$SOAK_DIR/agent.json"
xm_two_pods --config "$SOAK_DIR/agent.json"
out=$SOAK_DIR/soak.out
xm_pod_bg b "$XM_TOOLS/xm-sockapi" echo-server 10.77.0.3 7900
sleep 0.3
xm_log "soak: $THREADS threads for $DURATION s, agent restarted every $RESTART s," \
	"uninstall at $UNINSTALL_AT s, output in $SOAK_DIR"
: >"$out"
xm_bg "$XM_TOP/scripts/soak_redirect.py" watch "$SOAK_DIR" "$XM_BIN/xmeshctl" "$XM_PIN" \
	"$XM_PREFIX-a" "$XM_PREFIX-b"
soak_event "soak start: $THREADS threads for $DURATION s"
xm_pod_exec a "$XM_TOOLS/xm-sockapi" soak-client 10.77.0.3 7900 -n "$THREADS" -d "$DURATION" \
	-t "$TIMEOUT_MS" >"$out" 2>&1 &
soak=$!
XM_PIDS+=($soak)
start=$SECONDS restarts=0 uninstalled=0 next_restart=$RESTART next_uninstall=$UNINSTALL_AT
while kill -0 $soak 2>/dev/null; do
	sleep 1
	t=$((SECONDS - start))
	if [ "$STALL_AT" -ge 0 ] && [ $t -ge "$STALL_AT" ]; then
		soak_event "stall: echo server stopped (SIGSTOP) for $STALL_S s"
		ip netns pids "$XM_PREFIX-b" | xargs -r kill -STOP
		# continued on its own clock: an uninstall meanwhile waits for it
		xm_bg sh -c "sleep $STALL_S; ip netns pids $XM_PREFIX-b | xargs -r kill -CONT;
			echo \"\$(date +%s.%N) stall: echo server continued (SIGCONT)\" >>$SOAK_DIR/events.log"
		STALL_AT=-1
	fi
	[ $t -lt $((DURATION - 2)) ] || continue
	if [ "$next_uninstall" -ge 0 ] && [ $t -ge "$next_uninstall" ]; then
		soak_event "uninstall: agent stopped"
		kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
		u0=$SECONDS
		soak_event "uninstall: draining"
		"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" \
			--drain-timeout 30 >"$SOAK_DIR/uninstall.log" 2>&1 ||
			xm_fail "uninstall under load: $(cat "$SOAK_DIR/uninstall.log")"
		soak_event "uninstall: drained, pins removed"
		xm_log "soak: uninstalled at ${t}s (drained in $((SECONDS - u0)) s), installing again"
		[ -e "$XM_PIN" ] && xm_fail "pins left after the drain"
		soak_event "reinstall: starting the agent"
		xm_agent_start --config "$SOAK_DIR/agent.json"
		soak_event "reinstall: agent ready"
		xm_register a 10.77.0.2
		xm_register b 10.77.0.3
		soak_event "reinstall: pods registered"
		uninstalled=$((uninstalled + 1))
		next_uninstall=-1
		[ "$UNINSTALL_EVERY" = 0 ] || next_uninstall=$((t + UNINSTALL_EVERY))
	elif [ $t -ge $next_restart ]; then
		next_restart=$((next_restart + RESTART))
		[ "$RESTART_JITTER" = 0 ] ||
			next_restart=$((next_restart + RANDOM % (2 * RESTART_JITTER + 1) - RESTART_JITTER))
		soak_event "restart $((restarts + 1)): agent killed (SIGKILL)"
		kill -9 "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
		soak_event "restart $((restarts + 1)): starting the agent"
		xm_agent_start --config "$SOAK_DIR/agent.json"
		soak_event "restart $((restarts + 1)): agent ready"
		restarts=$((restarts + 1))
		xm_log "soak: agent killed and restarted at ${t}s ($(grep -c '^soak:' "$out" || true) reports)"
	fi
done
soak_rc=0
wait $soak || soak_rc=$?
soak_event "soak end"
[ $soak_rc = 0 ] || xm_fail "soak failed: $(grep -v '^soak-' "$out" | tail -n 5)"
result=$(grep '^soak: connections=' "$out")
xm_log "$result"
for _ in $(seq 50); do [ "$(xm_ctl -j sock list | xm_json 'len(j)')" = 0 ] && break; sleep 0.1; done
left=$(xm_ctl -j sock list | xm_json 'len(j)')
xm_assert "$left" -eq 0 "redirect map empty once the clients are gone"
redirected=$(xm_stat redirect_bytes)
eagain=$(xm_stat redirect_recv_eagain)
eval "$(echo "$result" | sed 's/^soak: //; s/ /\n/g')"
echo "bench soak-redirect: duration_s=$DURATION threads=$THREADS restarts=$restarts uninstalls=$uninstalled" \
	"connections=$connections aborted=$aborted failed=$failed late_intact=$late_intact" \
	"bytes_checked=$bytes" \
	"redirect_bytes_after_reinstall=$redirected fds_before=$fds_before fds_after=$fds_after" \
	"map_entries_left=$left recv_eagain=$eagain"
