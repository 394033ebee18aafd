#!/bin/bash
# SPDX-License-Identifier: MIT
# UDP and IPv6 through a VIP: unconnected and connected UDP datagrams to a
# VIP reach every backend and every reply appears to come from the VIP
# (recvmsg hook); an
# IPv6 VIP balances over IPv6 backends with getpeername() = VIP; a
# dual-stack socket reaches an IPv4 VIP as ::ffff:VIP; probes work over IPv6.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24 fd77::2/64
for i in 1 2 3; do
	xm_pod n1 b$i 10.77.0.$((i + 2))/24 fd77::$((i + 2))/64
	ns=$XM_PREFIX-b$i
	xm_bg ip netns exec "$ns" "$XM_TOOLS/xm-serve" udp --listen 10.77.0.$((i + 2)):5353 --label u$i
	xm_bg ip netns exec "$ns" "$XM_TOOLS/xm-serve" label --listen "[fd77::$((i + 2))]:8080" --label v$i
	xm_bg ip netns exec "$ns" "$XM_TOOLS/xm-serve" label --listen 10.77.0.$((i + 2)):8080 --label b$i
done
xm_bg ip netns exec "$XM_PREFIX-b1" "$XM_TOOLS/xm-serve" http --listen "[fd77::3]:8081" --label h1 --error-rate 0.1
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<EOC
{ "services": [
  { "vip": "10.96.0.53", "port": 53, "protocol": "udp", "algorithm": "round-robin",
    "backends": [ { "address": "10.77.0.3", "port": 5353 }, { "address": "10.77.0.4", "port": 5353 },
                  { "address": "10.77.0.5", "port": 5353 } ] },
  { "vip": "fd96::10", "port": 80,
    "backends": [ { "address": "fd77::3", "port": 8080 }, { "address": "fd77::4", "port": 8080 },
                  { "address": "fd77::5", "port": 8080, "weight": 2 } ] },
  { "vip": "10.96.0.54", "port": 53, "protocol": "udp", "backends": [] },
  { "vip": "fd96::11", "port": 80, "backends": [ { "address": "fd77::3", "port": 8081 } ] },
  { "vip": "10.96.0.10", "port": 80,
    "backends": [ { "address": "10.77.0.3", "port": 8080 }, { "address": "10.77.0.4", "port": 8080 } ] }
] }
EOC
xm_agent_start --config "$CFG"
xm_lb_wait 10.96.0.53:53/udp 3
xm_lb_wait '[fd96::10]:80' 3
# IPv6 duplicate address detection is off (nodad); give the neighbours a moment
sleep 0.5

# --- unconnected UDP ---
before=$(xm_stat lb_revnat)
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" udp -j -t 10.96.0.53:53 -n 3000)
xm_log "UDP: $out"
xm_assert "$(echo "$out" | xm_json 'j["err"]["timeout"]')" -eq 0 "every datagram answered"
xm_assert "$(echo "$out" | xm_json 'j["not_vip"]')" -eq 0 "every reply comes from the VIP"
xm_assert "$(echo "$out" | xm_json 'min(j["backend"].get(k,0) for k in ("u1","u2","u3"))')" -gt 800 \
	"round-robin over three UDP backends (each > 800 of 3000)"
xm_assert $(($(xm_stat lb_revnat) - before)) -eq 3000 "lb_revnat counts each reply"
xm_assert "$(xm_stat lb_sendmsg)" -ge 3000 "lb_sendmsg counts each datagram"
# a UDP service without backends: sendto() fails at once with ECONNREFUSED
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" udp -j -t 10.96.0.54:53 -n 5)
xm_assert "$(echo "$out" | xm_json 'j.get("errno",{}).get("ECONNREFUSED",0)')" -eq 5 "empty UDP service: sendto() ECONNREFUSED"
# connected UDP: connect() picks the backend, recvfrom() still names the VIP
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" udp -j -t 10.96.0.53:53 -n 600 --connected)
xm_log "connected UDP: $out"
xm_assert "$(echo "$out" | xm_json 'j["err"]["timeout"]')" -eq 0 "connected UDP: every datagram answered"
xm_assert "$(echo "$out" | xm_json 'j["not_vip"]')" -eq 0 "connected UDP: replies from the VIP"
xm_assert "$(echo "$out" | xm_json 'len(j["backend"])')" -eq 3 "connected UDP: all backends used"

# --- IPv6 VIP ---
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t [fd96::10]:80 -P label --new -n 4000)
xm_log "IPv6: $out"
xm_assert "$(echo "$out" | xm_json 'sum(j["backend"].values())')" -eq 4000 "IPv6 connects all served"
xm_assert "$(echo "$out" | xm_json 'j["not_vip"]')" -eq 0 "getpeername() is the IPv6 VIP"
xm_assert "$(echo "$out" | xm_json 'int(1700 < j["backend"]["v3"] < 2300)')" -eq 1 \
	"weight 2 of 4 gets about half"

# --- dual-stack socket, IPv4 VIP as ::ffff:a.b.c.d ---
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t [::ffff:10.96.0.10]:80 -P label --new -n 500)
xm_log "v4-mapped: $out"
xm_assert "$(echo "$out" | xm_json 'j["backend"].get("b1",0) + j["backend"].get("b2",0)')" -eq 500 \
	"v4-mapped VIP balanced to IPv4 backends"
xm_assert "$(echo "$out" | xm_json 'j["not_vip"]')" -eq 0 "getpeername() is ::ffff:VIP"

# --- probes over IPv6 ---
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t [fd96::11]:80 -n 100 -c 2 -k 25)
kern=$(xm_ctl -j backend list '[fd96::11]:80' interval 0)
xm_log "IPv6 probes: client $out kernel $kern"
xm_assert "$(echo "$kern" | xm_json 'j[0]["requests"]')" -eq 100 "IPv6: request count exact"
xm_assert "$(echo "$kern" | xm_json 'j[0]["http_5xx"]')" -eq 10 "IPv6: 5xx count exact"
