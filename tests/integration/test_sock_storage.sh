#!/bin/bash
# SPDX-License-Identifier: MIT
# One socket storage for the LB and redirection (include/xmesh/sock.h): a
# client that connects through a VIP to a backend on its own node gets its LB
# state from connect4 and its redirect state from sockops in the same storage
# element (two maps would cost the kernel an allocation more per socket and
# sk_msg a lookup more per message: docs/benchmarks.md, session 7). Checked:
#   - every program the agent attached to the cgroup uses one SK_STORAGE map
#     at most, and it is the same map for all of them;
#   - both parts work on the same sockets: getpeername() shows the VIP (LB
#     part), the bytes go socket-to-socket (redirect part), and the kernel
#     counts every request exactly (the LB part shared with the backend's
#     socket for timing, sk_msg finding both parts in one lookup);
#   - a socket redirection alone created storage for (no VIP) is neither
#     balanced nor timed: nothing counted for it.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 l 10.77.0.3/24
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<EOC
{ "services": [
  { "vip": "10.96.0.30", "port": 80, "backends": [ { "address": "10.77.0.3", "port": 8080 } ] },
  { "vip": "10.96.0.31", "port": 80, "backends": [ { "address": "10.77.0.3", "port": 8081 } ] }
] }
EOC
xm_agent_start --config "$CFG"
xm_lb_wait 10.96.0.30:80 1
xm_lb_wait 10.96.0.31:80 1
xm_ctl endpoint add 10.77.0.2 netns "$(xm_netns_path c)"
xm_ctl endpoint add 10.77.0.3 netns "$(xm_netns_path l)"
# the backends in the agent's cgroup: both ends of each connection redirected
xm_pod_bg l "$XM_TOOLS/xm-serve" label --listen 10.77.0.3:8080 --label l
xm_pod_bg l "$XM_TOOLS/xm-serve" http --listen 10.77.0.3:8081 --label l
for port in 8080 8081; do
	for _ in $(seq 30); do ip netns exec "$XM_PREFIX-l" ss -ltn | grep -q "10.77.0.3:$port" && break; sleep 0.1; done
done

# --- the programs' socket storage maps ---
storage_maps=$(bpftool -j cgroup show "$XM_CGROUP" | python3 -c '
import json, subprocess, sys
ids = set()
for p in json.load(sys.stdin):
    prog = json.loads(subprocess.check_output(["bpftool", "-j", "prog", "show", "id", str(p["id"])]))
    for m in prog.get("map_ids", []):
        if json.loads(subprocess.check_output(["bpftool", "-j", "map", "show", "id", str(m)]))["type"] == "sk_storage":
            ids.add(m)
print(len(ids))')
xm_log "SK_STORAGE maps used by the cgroup's programs: $storage_maps"
xm_assert "$storage_maps" -eq 1 "one socket storage map for every program (LB and redirection)"

# --- both parts on the same sockets ---
rbefore=$(xm_stat redirect_msgs)
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t 10.96.0.30:80 -P label --new -n 200)
xm_log "label server through the VIP: $out"
xm_assert "$(echo "$out" | xm_json 'j["backend"].get("l", 0)')" -eq 200 "every connect reached the local backend"
xm_assert "$(echo "$out" | xm_json 'j["not_vip"]')" -eq 0 "getpeername() is the VIP (LB part)"
client=$(xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.31:80 -n 200 -c 2 -k 1)
kern=$(xm_ctl -j backend list 10.96.0.31:80 interval 0)
xm_log "a new connection per request: $client kernel: $kern"
xm_assert $(($(xm_stat redirect_msgs) - rbefore)) -ge 400 "requests and responses went socket-to-socket (redirect part)"
xm_assert "$(echo "$kern" | xm_json 'j[0]["requests"]')" -eq 200 "every redirected request timed exactly (LB part)"
xm_assert "$(echo "$kern" | xm_json 'j[0]["in_flight"]')" -eq 0 "nothing left in flight"

# --- redirected without a VIP: storage, but no LB state ---
lbefore=$(xm_stat lb_connects)
rbefore=$(xm_stat redirect_msgs)
xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.77.0.3:8081 -n 50 -c 1 -k 1 >/dev/null
after=$(xm_ctl -j backend list 10.96.0.31:80 interval 0 | xm_json 'j[0]["requests"]')
xm_assert $(($(xm_stat redirect_msgs) - rbefore)) -ge 100 "pod IP: redirected"
xm_assert "$(xm_stat lb_connects)" -eq "$lbefore" "pod IP: not balanced"
xm_assert "$after" -eq 200 "pod IP: not timed for the service"
