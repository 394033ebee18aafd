#!/bin/bash
# SPDX-License-Identifier: MIT
# The weighting loop writes selection tables from its own copies of the
# service and backend entries (read with the topology, not again per write).
# Those copies must never outlive a change the agent made: while the loop
# rewrites a busy l3x service's table every tick (fake_probes feeds noisy
# latencies), the service's backend set is replaced through the control
# socket, back and forth. After every change:
# - the table in force holds only the service's current backends' ids, and
#   every current backend holds slots in it;
# - the backends shown (their entries' display fields) are exactly the
#   current ones, and their slots add up to the table's size;
# - a backend taken out is never shown or selected again.
# A loop that kept its copies across a change writes the old ids back.
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/fake_probes" ] || xm_skip "build the test tools (make)"
command -v bpftool >/dev/null || xm_skip "needs bpftool"

VIP=10.96.7.1
svc_json() { # ADDRESS...: the service with these backends
	local b= a
	for a in "$@"; do b="$b${b:+, }{\"address\": \"$a\", \"port\": 80}"; done
	echo "{\"name\": \"t\", \"vip\": \"$VIP\", \"port\": 80, \"algorithm\": \"l3x\", \"backends\": [$b]}"
}
cat >"$XM_RUN_DIR/agent.json" <<EOF
{"weighting": {"tick_ms": 200}, "services": [$(svc_json 10.79.0.10 10.79.0.11 10.79.0.12 10.79.0.13)]}
EOF
xm_agent_start --config "$XM_RUN_DIR/agent.json"
xm_lb_wait "$VIP:80" 4
table_writes() {
	xm_ctl -j top count 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["loop"]["table_writes"])'
}

# check ADDRESS...: the maps agree with this backend set (one snapshot; "" if so)
check() {
	local show table id
	show=$(xm_ctl -j service show "$VIP:80") || { echo "service show failed"; return; }
	id=$(python3 -c 'import json,sys; s = json.loads(sys.argv[1]); print(s["id"] * 2 + s["active_table"])' "$show")
	table=$(bpftool -j map lookup pinned "$XM_PIN/maps/xm_lb_tables" key \
		$((id & 255)) $((id >> 8 & 255)) 0 0) || { echo "table lookup failed"; return; }
	python3 - "$show" "$table" "$@" <<'EOF'
import json, struct, sys
show, table, want = json.loads(sys.argv[1]), json.loads(sys.argv[2]), set(sys.argv[3:])
raw = bytes(int(b, 16) for b in table["value"])
slots = struct.unpack(f"<{len(raw) // 4}I", raw)
ids = {b["id"]: b["backend"].split(":")[0] for b in show["backends"]}
shown = set(ids.values())
in_table = {i: slots.count(i) for i in set(slots)}
bad = [i for i in in_table if i not in ids]
if shown != want:
    print(f"backends shown {sorted(shown)}, expected {sorted(want)}")
elif bad:
    print(f"the table in force selects ids {bad}, not backends of the service {ids}")
elif set(in_table) != set(ids):
    print(f"backends without slots in the table in force: {set(ids) - set(in_table)}")
elif sum(b["slots"] for b in show["backends"]) != len(slots):
    print(f"slots shown add up to {sum(b['slots'] for b in show['backends'])}, not {len(slots)}")
EOF
}

# until_ok SECONDS ADDRESS...: check passes in some snapshot within SECONDS
until_ok() {
	local secs=$1 why; shift
	for _ in $(seq $((secs * 10))); do
		why=$(check "$@")
		[ -z "$why" ] && return 0
		sleep 0.1
	done
	xm_fail "after $secs s: $why"
}

xm_bg "$XM_TOOLS/fake_probes" --pin-root "$XM_PIN" --rps 40 --period-ms 100 --duration 600
w0=$(table_writes)
sets=("10.79.0.10 10.79.0.11 10.79.0.14 10.79.0.15" "10.79.0.10 10.79.0.11 10.79.0.12 10.79.0.13"
	"10.79.0.11 10.79.0.16" "10.79.0.10 10.79.0.11 10.79.0.12 10.79.0.13 10.79.0.17")
for round in 0 1 2 3; do
	# shellcheck disable=SC2086
	set -- ${sets[$((round % 4))]}
	xm_ctl service add "$(svc_json "$@")" >/dev/null || xm_fail "service add (round $round)"
	until_ok "$(xm_size 3 15)" "$@"
	# and it stays so while the loop keeps rewriting the table
	for _ in 1 2 3 4; do
		sleep 0.3
		why=$(check "$@")
		# a snapshot may fall between a table's flip and its display update: look again
		[ -z "$why" ] || { sleep 0.05; why=$(check "$@"); }
		[ -z "$why" ] || xm_fail "round $round: $why"
	done
	xm_log "ok: round $round: backends $*"
done
w1=$(table_writes)
xm_assert $((w1 - w0)) -ge 10 "tables rewritten by the loop during the changes"
exit 0
