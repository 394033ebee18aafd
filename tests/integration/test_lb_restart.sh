#!/bin/bash
# SPDX-License-Identifier: MIT
# The LB outlives the agent: with the agent SIGKILLed, connects to the VIP
# are still balanced and probed (pinned maps and links); a restarted agent
# adopts the services with the same service and backend ids, so probe
# counters continue instead of restarting, and a connection held across
# all of it still talks to its backend.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
for i in 1 2; do
	xm_pod n1 b$i 10.77.0.$((i + 2))/24
	xm_bg ip netns exec "$XM_PREFIX-b$i" "$XM_TOOLS/xm-serve" http --listen 10.77.0.$((i + 2)):8080 --label b$i
done
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<EOC
{ "services": [ { "vip": "10.96.0.10", "port": 80,
    "backends": [ { "address": "10.77.0.3", "port": 8080 }, { "address": "10.77.0.4", "port": 8080, "weight": 3 } ] } ] }
EOC
xm_agent_start --config "$CFG"
xm_lb_wait 10.96.0.10:80 2
xm_pod_exec c "$XM_TOOLS/xm-load" hold -j -t 10.96.0.10:80 --wait-file "$XM_RUN_DIR/release" >"$XM_RUN_DIR/hold.out" 2>"$XM_RUN_DIR/hold.err" &
XM_PIDS+=($!)
hold_pid=$!
xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.10:80 -n 200 -c 2 -k 10 >/dev/null
ids() { xm_ctl -j backend list interval 0 | xm_json '" ".join("%s=%s" % (r["backend"], r["id"]) for r in j)'; }
reqs() { xm_ctl -j backend list interval 0 | xm_json 'sum(r["requests"] for r in j)'; }
ids_before=$(ids)
r1=$(reqs)
xm_assert "$r1" -ge 200 "requests probed with the agent up"

kill -9 "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
xm_log "agent killed with SIGKILL"
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.10:80 -n 200 -c 2 -k 10)
xm_assert "$(echo "$out" | xm_json 'sum(j["backend"].values())')" -eq 200 \
	"VIP still balanced while no agent runs"
r2=$(reqs)
xm_assert $((r2 - r1)) -ge 200 "and still probed"

xm_agent_start --config "$CFG"
xm_lb_wait 10.96.0.10:80 2
xm_assert "$(ids)" = "$ids_before" "restarted agent kept the backend ids"
xm_assert "$(reqs)" -ge "$r2" "probe counters continue across the restart"
xm_assert "$(xm_ctl -j service show 10.96.0.10:80 | xm_json 'j["id"]')" -eq 0 "service id kept"
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.10:80 -n 400 -c 2 -k 1)
xm_assert "$(echo "$out" | xm_json 'int(200 < j["backend"]["b2"] < 400)')" -eq 1 "weights 1:3 still in force"
touch "$XM_RUN_DIR/release"
wait "$hold_pid" || true
# both answers on the held connection from one backend
xm_assert "$(xm_json 'j["ok"] == 2 and len(j["backend"]) == 1' <"$XM_RUN_DIR/hold.out")" = True \
	"connection held across kill and restart still talks to its backend"

# A restart with another configuration: the service on port 80 goes, one on
# port 81 comes, on backend ids handed out afresh (ids may be ones a removed
# backend held). What the weighting publishes per id (xm_lb_wstate,
# xm_lb_rstate) must start empty at handout: rows made stale by hand for
# every id stand for what earlier backends left. Before the fix `backend
# list` showed the new backends with those rows (retired 77 here).
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
le32() { printf '%02x %02x 00 00' $(($1 & 255)) $(($1 >> 8 & 255)); }
# struct xm_lb_rstate: updated_ns 1, retired_total 77, held 5, idle 0, retired_milli_s 0, flags ENABLED
stale_row="01 00 00 00 00 00 00 00 4d 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00"
for id in $(seq 1 32); do
	# shellcheck disable=SC2046,SC2086
	bpftool map update pinned "$XM_PIN/maps/xm_lb_rstate" key hex $(le32 "$id") value hex $stale_row
done
sed 's/"port": 80,/"port": 81,/' "$CFG" >"$XM_RUN_DIR/xm-config-81.json"
xm_agent_start --config "$XM_RUN_DIR/xm-config-81.json"
xm_lb_wait 10.96.0.10:81 2
xm_assert "$(xm_ctl -j backend list interval 0 |
	xm_json 'sum(1 for r in j if r.get("rebalance", {}).get("retired") == 77)')" -eq 0 \
	"backends on ids handed out afresh that show an earlier holder's row"
xm_assert "$(xm_ctl -j backend list interval 0 | xm_json 'len(j)')" -eq 2 "backends of the port 81 service listed"

# A restart with another map size than the pinned map's (here --lb-udp-max for
# xm_lb_rev, made with the default): libbpf refuses to reuse a pinned map of
# another max_entries, and before the fix the agent exited, leaving the
# datapath without one. The pinned map (and its entries) is kept, with a word.
size() { bpftool -j map show pinned "$XM_PIN/maps/xm_lb_rev" | xm_json 'j["max_entries"]'; }
size0=$(size)
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
xm_agent_start --config "$XM_RUN_DIR/xm-config-81.json" --lb-udp-max 4096 2>"$XM_RUN_DIR/agent-size.err"
xm_lb_wait 10.96.0.10:81 2
xm_assert "$(size)" -eq "$size0" "pinned xm_lb_rev kept its size"
xm_assert "$(grep -c "pinned map xm_lb_rev keeps its $size0 entries (this agent asked for 4096)" \
	"$XM_RUN_DIR/agent-size.err")" -eq 1 "the agent says the new size waits for an uninstall"
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.10:81 -n 20 -c 1 -k 1)
xm_assert "$(echo "$out" | xm_json 'sum(j["backend"].values())')" -eq 20 "balanced after that restart"
