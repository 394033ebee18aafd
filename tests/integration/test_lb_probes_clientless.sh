#!/bin/bash
# SPDX-License-Identifier: MIT
# A node that balances no TCP connect() (its pods only serve) detaches the
# per-packet probes after "probes_clientless_s": they would time nothing, and
# each of their runs costs every packet of the cgroup the kernel's dispatch.
# - attached at the start (the first clients, if they come soon, are timed
#   from their first request), detached once the wait is over, "probes": "all"
#   or not: no cgroup_skb program is left on the cgroup;
# - the node's first balanced connect() attaches them again within a tick,
#   and from then on every request is timed;
# - an agent restart on a node that has had clients keeps them attached past
#   the wait (the flag is restored from the pinned counters).
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 s 10.77.0.3/24
xm_pod_bg s "$XM_TOOLS/xm-serve" http --listen 10.77.0.3:8080 --label s
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<EOC
{ "probes_clientless_s": 2, "weighting": { "tick_ms": 100 },
  "services": [ { "vip": "10.96.0.10", "port": 80, "backends": [ { "address": "10.77.0.3", "port": 8080 } ] } ] }
EOC
LOG=$XM_RUN_DIR/agent.err
xm_agent_start --config "$CFG" 2>"$LOG"
xm_lb_wait 10.96.0.10:80 1
xm_wait_listen s 8080
linked() { [ -e "$XM_PIN/links/lb_egress" ] && [ -e "$XM_PIN/links/lb_ingress" ] && echo 1 || echo 0; }
# cgroup_skb programs on the agent's cgroup (the probes are its only ones)
skb_progs() { bpftool -j cgroup show "$XM_CGROUP" | xm_json \
	'sum(1 for p in j if p["attach_type"] in ("cgroup_inet_ingress", "cgroup_inet_egress"))'; }
requests() { xm_ctl -j backend list 10.96.0.10:80 interval 0 | xm_json 'j[0]["requests"]'; }
wait_linked() { # WANT SECONDS
	for _ in $(seq $(($2 * 10))); do [ "$(linked)" = "$1" ] && return 0; sleep 0.1; done
	return 1
}
xm_assert "$(linked)" -eq 1 "probes attached at the start"
xm_assert "$(skb_progs)" -eq 2 "two cgroup_skb programs on the cgroup at the start"

# --- pod-to-pod traffic only: detached after the wait ---
xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.77.0.3:8080 -n 50 -c 2 -k 10 >/dev/null
wait_linked 0 6 || xm_fail "probes still attached 6 s into a clientless node (wait 2 s)"
xm_assert "$(skb_progs)" -eq 0 "no cgroup_skb program left on the clientless node's cgroup"
xm_assert "$(grep -c 'probes detached: no balanced TCP connect() on this node in 2 s' "$LOG")" \
	-eq 1 "the agent says why"

# --- the first balanced connect(): attached again, then every request timed ---
xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.10:80 -n 10 -c 1 -k 10 >/dev/null
wait_linked 1 3 || xm_fail "probes not attached again 3 s after the first balanced connect()"
r0=$(requests)
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.10:80 -n 100 -c 2 -k 10)
xm_assert "$(echo "$out" | xm_json 'j["ok"]')" -eq 100 "requests through the VIP answered"
xm_assert "$(($(requests) - r0))" -eq 100 "after the first client: every request timed"
sleep 3
xm_assert "$(linked)" -eq 1 "a node with a client keeps its probes past the wait"

# --- restart: the node has had clients, so the probes stay ---
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
xm_agent_start --config "$CFG" 2>>"$LOG"
xm_lb_wait 10.96.0.10:80 1
sleep 3
xm_assert "$(linked)" -eq 1 "restarted agent on a node with clients keeps the probes past the wait"

# --- "probes_clientless_s": 0 keeps them on a clientless node; a bad value is refused ---
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" --force 2>/dev/null
sed 's/"probes_clientless_s": 2/"probes_clientless_s": 0/' "$CFG" >"$XM_RUN_DIR/keep.json"
xm_agent_start --config "$XM_RUN_DIR/keep.json" 2>>"$LOG"
xm_lb_wait 10.96.0.10:80 1
sleep 3
xm_assert "$(linked)" -eq 1 "\"probes_clientless_s\": 0 keeps the probes on a clientless node"
sed 's/"probes_clientless_s": 2/"probes_clientless_s": 1.5/' "$CFG" >"$XM_RUN_DIR/bad.json"
cp "$XM_RUN_DIR/bad.json" "$XM_RUN_DIR/keep.json"
kill -HUP "$XM_AGENT_PID"
for _ in $(seq 50); do grep -q 'config rejected.*probes_clientless_s' "$LOG" && break; sleep 0.1; done
grep -q '"probes_clientless_s" must be an integer from 0 to 86400' "$LOG" ||
	xm_fail "bad probes_clientless_s: no clear error"
sleep 3
xm_assert "$(linked)" -eq 1 "a rejected config changes nothing (the probes stay)"
xm_log "PASS"
