#!/bin/bash
# SPDX-License-Identifier: MIT
# The datapath outlives the agent: SIGKILL in the middle of transfers and a
# restart (which adopts the pinned maps and swaps programs inside the pinned
# links) break no connection and lose no byte; redirection goes on, also for
# connections made while no agent runs.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 a 10.77.0.2/24
xm_pod n1 b 10.77.0.3/24
xm_agent_start
xm_ctl endpoint add 10.77.0.2 netns "$(xm_netns_path a)"
xm_ctl endpoint add 10.77.0.3 netns "$(xm_netns_path b)"
xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 10.77.0.3:7500 --size 3M --answer 3M
sleep 0.2

# 20 connections, 3 MiB each way, each write spread over 8 s (45 s with XM_SMALL: every step
# is slow there): the agent is killed while they write. (Over 4 s, once on a loaded machine,
# all 20 had finished by the kill: no byte was left to redirect while no agent ran.)
# Below the 4 MiB after which a one-way sender is demoted to TCP: these stay redirected.
xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7500 -s 3M --answer 3M -c 20 \
	-d "$(xm_size 8 45)" >"$XM_RUN_DIR/long.out" 2>&1 &
long=$!
for _ in $(seq 50); do # until all are connected (a loaded machine connects them slowly)
	in_map=$(xm_ctl -j sock list | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
	[ "$in_map" -ge 40 ] && break
	sleep 0.2
done
xm_assert "$in_map" -ge 40 "the 20 long connections (both ends) are in the redirect map"
b1=$(xm_stat redirect_bytes)
kill -9 "$XM_AGENT_PID"
xm_log "agent killed with SIGKILL"
sleep 0.5
b2=$(xm_stat redirect_bytes)
xm_assert "$b2" -gt "$b1" "bytes keep being redirected while no agent runs"
xm_ctl status >/dev/null || xm_fail "status must report the datapath loaded without an agent"
# A connection made while the agent is down is redirected as well.
xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 10.77.0.3:7501 --size 1M --answer 1M
sleep 0.2
b3=$(xm_stat redirect_bytes)
xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7501 -s 1M --answer 1M >/dev/null ||
	xm_fail "new connection while agent down"
xm_assert "$(( $(xm_stat redirect_bytes) - b3 ))" -ge $((2 * 1024 * 1024)) \
	"new connection redirected while the agent is down"

links_before=$(ls "$XM_PIN/links" | sort | tr '\n' ' ')
ids_before=$(bpftool link show | grep -c .)
xm_agent_start
links_after=$(ls "$XM_PIN/links" | sort | tr '\n' ' ')
xm_assert "$links_after" = "$links_before" "restarted agent adopted the same pinned links"
# The long transfers may be over by now on a loaded machine: a new connection
# shows that redirection goes on under the restarted agent.
b4=$(xm_stat redirect_bytes)
xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7501 -s 1M --answer 1M >/dev/null ||
	xm_fail "new connection after the restart"
xm_assert "$(( $(xm_stat redirect_bytes) - b4 ))" -ge $((2 * 1024 * 1024)) \
	"redirect continues after the restart"
wait $long || xm_fail "a connection broke or lost bytes across the agent restart: $(cat "$XM_RUN_DIR/long.out")"
xm_log "long transfers: $(tail -n1 "$XM_RUN_DIR/long.out")"
xm_assert "$(xm_kv ok "$(tail -n1 "$XM_RUN_DIR/long.out")")" -eq 20 "all 20 connections completed"
# Only one cgroup program is attached: the restart did not stack a second one.
xm_assert "$(bpftool cgroup show "$XM_CGROUP" | grep -c xm_sockops)" -eq 1 "one sockops program attached"
: "$ids_before"
