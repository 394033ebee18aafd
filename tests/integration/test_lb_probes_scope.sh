#!/bin/bash
# SPDX-License-Identifier: MIT
# Config "probes": which balanced connections the per-packet probes time.
# - absent ("all", the default): the cgroup_skb links are attached and every
#   request of a static service is counted, as before;
# - "weighted" with only static services: no cgroup_skb link (no packet of the
#   cgroup pays the hooks), no request counted, for a remote-style backend
#   (cgroup_skb) or a redirected local one (no state shared, sk_msg times
#   nothing); balancing and redirection unchanged; also after a restart;
# - "weighted" with an l3x service: attached again, requests counted;
# - a bad value: the config is rejected with the accepted values, nothing changes.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 r 10.77.0.3/24
xm_pod n1 l 10.77.0.4/24
xm_bg ip netns exec "$XM_PREFIX-r" "$XM_TOOLS/xm-serve" http --listen 10.77.0.3:8080 --label r
CFG=$XM_RUN_DIR/xm-config.json
# config PROBES ALGO: both services with ALGO, "probes": PROBES unless empty
config() {
	local p=""
	[ -n "$1" ] && p="\"probes\": \"$1\","
	cat >"$CFG.new" <<EOC
{ $p "services": [
  { "vip": "10.96.0.10", "port": 80, "algorithm": "$2", "backends": [ { "address": "10.77.0.3", "port": 8080 } ] },
  { "vip": "10.96.0.11", "port": 80, "algorithm": "$2", "backends": [ { "address": "10.77.0.4", "port": 8080 } ] } ] }
EOC
	mv "$CFG.new" "$CFG"
}
config "" static
LOG=$XM_RUN_DIR/agent.log
xm_agent_start --config "$CFG" 2>"$LOG"
xm_lb_wait 10.96.0.10:80 1
xm_lb_wait 10.96.0.11:80 1
xm_ctl endpoint add 10.77.0.2 netns "$(xm_netns_path c)" >/dev/null
xm_ctl endpoint add 10.77.0.4 netns "$(xm_netns_path l)" >/dev/null
xm_pod_bg l "$XM_TOOLS/xm-serve" http --listen 10.77.0.4:8080 --label l
for _ in $(seq 30); do ip netns exec "$XM_PREFIX-l" ss -ltn | grep -q 10.77.0.4:8080 && break; sleep 0.1; done

links() { # how many of the two probe links are pinned (attached)
	local n=0 l
	for l in lb_egress lb_ingress; do [ -e "$XM_PIN/links/$l" ] && n=$((n + 1)); done
	echo $n
}
wait_links() { for _ in $(seq 50); do [ "$(links)" = "$1" ] && return 0; sleep 0.1; done; }
requests() { xm_ctl -j backend list "$1" interval 0 | xm_json 'j[0]["requests"]'; }
# requests started and never seen to end, both backends (a request timed at its
# start only would stay "in flight" for ever)
in_flight() {
	echo $(($(xm_ctl -j backend list 10.96.0.10:80 interval 0 | xm_json 'j[0]["in_flight"]') +
		$(xm_ctl -j backend list 10.96.0.11:80 interval 0 | xm_json 'j[0]["in_flight"]')))
}
# run LABEL N: N requests to each service, then what the probes counted
run() {
	local r0 l0 f0 m0
	r0=$(requests 10.96.0.10:80) l0=$(requests 10.96.0.11:80)
	f0=$(xm_stat lb_flows_new) m0=$(xm_stat redirect_msgs)
	xm_pod_exec c "$XM_TOOLS/xm-load" get -t 10.96.0.10:80 -n "$2" -c 2 >/dev/null
	xm_pod_exec c "$XM_TOOLS/xm-load" get -t 10.96.0.11:80 -n "$2" -c 2 >/dev/null
	REMOTE=$(($(requests 10.96.0.10:80) - r0)) LOCAL=$(($(requests 10.96.0.11:80) - l0))
	SHARED=$(($(xm_stat lb_flows_new) - f0)) REDIRECTED=$(($(xm_stat redirect_msgs) - m0))
	INFLIGHT=$(in_flight)
	xm_log "$1: counted remote $REMOTE local $LOCAL, shared $SHARED, redirected msgs $REDIRECTED, in flight $INFLIGHT"
}

# --- default: every balanced connection timed, as before ---
xm_assert "$(links)" -eq 2 "default: both probe links attached"
run default 100
xm_assert "$REMOTE" -eq 100 "default: remote-style backend's requests counted"
xm_assert "$LOCAL" -eq 100 "default: redirected backend's requests counted"

# --- "weighted", static services only: no per-packet probes at all ---
config weighted static
xm_ctl service reload >/dev/null
wait_links 0
grep -q 'probes detached' "$LOG" || xm_fail "not logged: $(tail -3 "$LOG")"
xm_assert "$(links)" -eq 0 "weighted, static services: probe links detached"
p0=$(xm_stat lb_probe_lookups)
run weighted-static 100
xm_assert "$(($(xm_stat lb_probe_lookups) - p0))" -eq 0 "weighted, static: no packet looked at a probe"
xm_assert "$REMOTE" -eq 0 "weighted, static: remote-style requests not timed"
xm_assert "$LOCAL" -eq 0 "weighted, static: redirected requests not timed"
xm_assert "$SHARED" -eq 0 "weighted, static: no state shared with the backend's socket"
xm_assert "$REDIRECTED" -ge 200 "weighted, static: still redirected"
xm_assert "$INFLIGHT" -eq 0 "weighted, static: no request started without an end"

# --- a bad value: rejected, nothing changes ---
printf '{ "probes": "some", "services": [] }\n' >"$CFG.new"
mv "$CFG.new" "$CFG"
out=$(xm_ctl service reload 2>&1) && xm_fail "a bad \"probes\" value was accepted: $out"
grep -q 'xm-config.json:1:13: "probes" must be "all"' "$LOG" ||
	xm_fail "no located error for a bad \"probes\": $(tail -3 "$LOG")"
xm_assert "$(links)" -eq 0 "bad value: nothing changed"
xm_lb_wait 10.96.0.10:80 1

# --- "weighted" with a service the loop weighs: attached again ---
config weighted l3x
xm_ctl service reload >/dev/null
wait_links 2
xm_assert "$(links)" -eq 2 "weighted, l3x services: probe links attached again"
run weighted-l3x 100
xm_assert "$REMOTE" -eq 100 "weighted, l3x: remote-style requests counted"
xm_assert "$LOCAL" -eq 100 "weighted, l3x: redirected requests counted"
xm_assert "$SHARED" -ge 1 "weighted, l3x: state shared with the redirected backend's socket"

# --- a restarted agent with "weighted" and static services: detached again ---
config weighted static
wait_links 0
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
xm_agent_start --config "$CFG" 2>>"$LOG"
xm_lb_wait 10.96.0.10:80 1
wait_links 0
xm_assert "$(links)" -eq 0 "restarted, weighted, static: probe links detached"
run restarted 50
xm_assert "$REMOTE" -eq 0 "restarted: remote-style requests not timed"
xm_assert "$LOCAL" -eq 0 "restarted: redirected requests not timed"
xm_assert "$SHARED" -eq 0 "restarted: no state shared with the backend's socket"
xm_assert "$INFLIGHT" -eq 0 "restarted: no request started without an end"
xm_log "PASS"
