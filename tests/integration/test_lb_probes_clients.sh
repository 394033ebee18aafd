#!/bin/bash
# SPDX-License-Identifier: MIT
# The per-packet probes do work only on a node that has balanced clients
# (xm_lb_clients, bpf/lb.bpf.c): they serve connections whose connect() was
# balanced, and the kernel runs them for every packet of the cgroup.
# - before any connect() to a VIP, traffic between pods (a server's node)
#   looks up no probe state (lb_probe_lookups stays 0);
# - the node's very first balanced connections are timed from their first
#   request: exact count;
# - an agent restart keeps timing a connection balanced before it (the new
#   programs start with the flag clear; the agent restores it from the
#   pinned counters).
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 s 10.77.0.3/24
xm_pod_bg s "$XM_TOOLS/xm-serve" http --listen 10.77.0.3:8080 --label s
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<EOC
{ "services": [
  { "vip": "10.96.0.10", "port": 80, "backends": [ { "address": "10.77.0.3", "port": 8080 } ] } ] }
EOC
xm_agent_start --config "$CFG"
xm_lb_wait 10.96.0.10:80 1
xm_wait_listen s 8080
requests() { xm_ctl -j backend list 10.96.0.10:80 interval 0 | xm_json 'j[0]["requests"]'; }
[ -e "$XM_PIN/links/lb_egress" ] && [ -e "$XM_PIN/links/lb_ingress" ] || xm_fail "probe links not attached"

# --- no balanced client yet: pod-to-pod requests pass the probes untouched ---
l0=$(xm_stat lb_probe_lookups)
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.77.0.3:8080 -n 100 -c 2 -k 10)
xm_log "direct: $out"
xm_assert "$(echo "$out" | xm_json 'j["backend"]["s"]')" -eq 100 "direct requests answered"
xm_assert "$(($(xm_stat lb_probe_lookups) - l0))" -eq 0 "no balanced client: no packet looked up probe state"
xm_assert "$(xm_stat lb_connects)" -eq 0 "nothing balanced yet"

# --- the node's first balanced connections: every request timed ---
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.10:80 -n 100 -c 2 -k 10)
xm_log "through the VIP: $out"
xm_assert "$(requests)" -eq 100 "the node's first balanced connections: every request timed"
xm_assert "$(xm_stat lb_probe_lookups)" -gt "$l0" "a balanced client: the probes look"

# --- a connection balanced before an agent restart is timed after it ---
fifo=$XM_RUN_DIR/go
mkfifo "$fifo"
xm_pod_exec c python3 -c '
import socket, sys
s = socket.create_connection(("10.96.0.10", 80), timeout=10)
for i in range(2):
    if i:
        sys.stdin.readline()
    s.sendall(b"GET / HTTP/1.1\r\nHost: s\r\n\r\n")
    r = b""
    while b"\r\n\r\n" not in r:
        d = s.recv(4096)
        if not d:
            sys.exit("closed")
        r += d
    print("response", i, flush=True)
' <"$fifo" >"$XM_RUN_DIR/keep.out" &
cpid=$!
XM_PIDS+=("$cpid")
exec 3>"$fifo"
for _ in $(seq 50); do grep -q "response 0" "$XM_RUN_DIR/keep.out" && break; sleep 0.1; done
xm_assert "$(requests)" -eq 101 "the kept connection's first request timed"
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
xm_agent_start --config "$CFG"
xm_lb_wait 10.96.0.10:80 1
echo >&3
wait "$cpid" || xm_fail "kept connection: $(cat "$XM_RUN_DIR/keep.out")"
exec 3>&-
xm_assert "$(requests)" -eq 102 "after the restart: the kept connection's second request timed"
xm_log "PASS"
