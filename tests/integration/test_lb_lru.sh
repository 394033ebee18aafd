#!/bin/bash
# SPDX-License-Identifier: MIT
# LRU evictions of the LB's per-connection maps are counted (issue 12,
# item 3): with --lb-udp-max 64, 300 UDP sockets sending to a VIP create
# 300 reverse entries (lb_rev_new) of which at least 236 were evicted
# (lb_rev_evictions); 150 TCP connections held open to a local backend, both
# ends registered pods (so redirected), share 150 flow states (lb_flows_new)
# with the backend's sockets under the client's ISNs, which both ends' redirect
# keys hold (no map from the backend's tuple to the client), ended by the
# backend's FIN (lb_flows_ended, lb_flows_evictions). The
# counters are in `xmeshctl -j stats` and in the metrics.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 b 10.77.0.3/24
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<'EOC'
{ "services": [
  { "vip": "10.96.0.53", "port": 53, "protocol": "udp", "backends": [ { "address": "10.77.0.3", "port": 5353 } ] },
  { "vip": "10.96.0.10", "port": 80, "backends": [ { "address": "10.77.0.3", "port": 8080 } ] } ] }
EOC
xm_agent_start --config "$CFG" --lb-udp-max 64
xm_lb_wait 10.96.0.53:53/udp 1
xm_lb_wait 10.96.0.10:80 1
stat() { xm_ctl -j stats | xm_json "j['$1']"; }

# --- UDP reverse entries ---
xm_pod_exec c python3 -c '
import socket
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(300)]
for s in socks:
    s.sendto(b"q", ("10.96.0.53", 53))
'
xm_assert "$(stat lb_rev_new)" -ge 300 "UDP reverse entries created"
for _ in $(seq 30); do [ "$(stat lb_rev_evictions)" -ge 236 ] && break; sleep 0.2; done
xm_assert "$(stat lb_rev_evictions)" -ge 236 "UDP reverse entries evicted from an LRU of 64"

# --- flow states shared with a local backend (a registered pod address), ended by its FIN ---
# (only a redirected connection shares: a client outside the endpoints map is never redirected)
xm_ctl endpoint add 10.77.0.2 netns "$(xm_netns_path c)"
xm_ctl endpoint add 10.77.0.3 netns "$(xm_netns_path b)"
# Both ends hold their 150 sockets until told; then the backend closes first:
# its FIN ends the shared state. (A client that closed first can already be a
# timewait socket when that FIN comes, which no program sees: its state is
# left to the LRU.)
xm_pod_bg b python3 -c '
import os, socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("10.77.0.3", 8080)); l.listen(512)
held = [l.accept()[0] for _ in range(150)]
while not os.path.exists(sys.argv[1] + ".go"):
    time.sleep(0.05)
for a in held:
    a.close()
time.sleep(600)
' "$XM_RUN_DIR/held"
sleep 1
xm_pod_bg c python3 -c '
import socket, sys
held = [socket.create_connection(("10.96.0.10", 80), timeout=5) for _ in range(150)]
open(sys.argv[1] + ".up", "w").close()
for s in held:
    s.settimeout(60)
    s.recv(1) # the backend closed
    s.close()
' "$XM_RUN_DIR/held"
for _ in $(seq 100); do [ -e "$XM_RUN_DIR/held.up" ] && break; sleep 0.1; done
[ -e "$XM_RUN_DIR/held.up" ] || xm_fail "client did not connect"
# Both ends find the shared state under the client's ISNs, which their
# redirect keys hold: no map from the backend's tuple to the client exists.
xm_ctl -j sock list >"$XM_RUN_DIR/socks.json"
bpftool -j map dump pinned "$XM_PIN/maps/xm_lb_flows" >"$XM_RUN_DIR/flows.json"
matched=$(python3 - "$XM_RUN_DIR/socks.json" "$XM_RUN_DIR/flows.json" <<'EOP'
import json, sys
socks = json.load(open(sys.argv[1]))
socks = socks.get("sockets", socks) if isinstance(socks, dict) else socks
clients = {s["local_isn"] << 32 | s["remote_isn"] for s in socks if s.get("remote_port") == 8080}
keys = {int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little")
        for e in json.load(open(sys.argv[2]))}
print(len(clients & keys))
EOP
)
xm_assert "$matched" -eq 150 "shared states keyed by the ISNs of the 150 client sockets"
touch "$XM_RUN_DIR/held.go"
xm_assert "$(stat lb_flows_new)" -ge 150 "flow states shared with the local backend"
for _ in $(seq 30); do [ "$(stat lb_flows_ended)" -ge 150 ] && break; sleep 0.2; done
xm_assert "$(stat lb_flows_ended)" -ge 150 "flow states ended at close"
sleep 1.5
xm_assert "$(stat lb_flows_evictions)" -eq 0 "flow states evicted (none: the map is large)"
xm_ctl -j stats | grep -q '"lb_rev_evictions"' || xm_fail "lb_rev_evictions not in stats"
xm_log "ok: LRU evictions counted"
