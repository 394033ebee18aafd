#!/bin/bash
# SPDX-License-Identifier: MIT
# What `xmeshctl service show`, `backend list` and /metrics show as a
# backend's slots, share and weight is the table in force, whoever wrote it
# and with no write of the backend entries after it (the weighting loop no
# longer writes them: xm_lb_backend_foreach() counts the active table, and
# takes a weighed service's weight from the loop's xm_lb_wstate rows).
# - l3x service A, its table rewritten by the loop (fake_probes: backends of
#   different latencies): in every snapshot each backend's slots and share
#   equal its count in the active table, and the weights shown are the ones
#   that table was apportioned from (within a slot).
# - static service B, its table replaced behind the agent's back (a flip
#   written with bpftool, no display write): the new slots are shown at once,
#   with the configured weights.
# - agent restarted with A made static (weights 1, no name, tick 60 s: the
#   loop does not run before the checks): the config's table is written (the
#   adopted service's weights are the loop's, so the config differs from it)
#   and the config's slots and weights are shown, not the loop's last ones.
set -u
. "$(dirname "$0")/lib.sh"
xm_setup
[ -x "$XM_TOOLS/fake_probes" ] || xm_skip "build the test tools (make)"
command -v bpftool >/dev/null || xm_skip "needs bpftool"
command -v curl >/dev/null || xm_skip "needs curl"

VA=10.96.8.1
VB=10.96.8.2
svc_json() { # VIP ALGORITHM WEIGHT ADDRESS...
	local vip=$1 algo=$2 w=$3 b= a
	shift 3
	for a in "$@"; do b="$b${b:+, }{\"address\": \"$a\", \"port\": 80, \"weight\": $w}"; done
	echo "{\"name\": \"s$vip\", \"vip\": \"$vip\", \"port\": 80${algo:+, \"algorithm\": \"$algo\"}, \"backends\": [$b]}"
}
BA="10.79.2.10 10.79.2.11 10.79.2.12 10.79.2.13"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MPORT=$(free_port)
# shellcheck disable=SC2086
cat >"$XM_RUN_DIR/agent.json" <<EOF
{"weighting": {"tick_ms": 2500}, "services": [$(svc_json $VA l3x 1 $BA),
 {"name": "b", "vip": "$VB", "port": 80, "backends": [
  {"address": "10.79.3.10", "port": 80, "weight": 1}, {"address": "10.79.3.11", "port": 80, "weight": 2},
  {"address": "10.79.3.12", "port": 80, "weight": 3}]}]}
EOF
xm_agent_start --config "$XM_RUN_DIR/agent.json" --metrics "127.0.0.1:$MPORT"
xm_lb_wait "$VA:80" 4
xm_lb_wait "$VB:80" 3

# check VIP [WEIGHTS]: one snapshot of service show, backend list, /metrics and
# the active table agree ("" if so; "again" if the service flipped to another
# table while it was taken); WEIGHTS "a,b,c": the weights shown must be these
# (in backend id order), else they must be those the table came from.
active_of() { xm_ctl -j service show "$1:80" | python3 -c 'import json,sys; s = json.load(sys.stdin); print(s["id"] * 2 + s["active_table"])'; }
check() {
	local vip=$1 want=${2:-} show list table id
	show=$(xm_ctl -j service show "$vip:80") || { echo "service show failed"; return; }
	id=$(python3 -c 'import json,sys; s = json.loads(sys.argv[1]); print(s["id"] * 2 + s["active_table"])' "$show")
	table=$(bpftool -j map lookup pinned "$XM_PIN/maps/xm_lb_tables" key \
		$((id & 255)) $((id >> 8 & 255)) 0 0) || { echo "table lookup failed"; return; }
	list=$(xm_ctl -j backend list "$vip:80") || { echo "backend list failed"; return; }
	curl -sf "http://127.0.0.1:$MPORT/metrics" >"$XM_RUN_DIR/m.txt" || { echo "GET /metrics failed"; return; }
	# a flip in between: the reads saw two tables (ticks of 2.5 s: at most one flip)
	[ "$(active_of "$vip")" = "$id" ] || { echo again; return; }
	python3 - "$show" "$list" "$table" "$XM_RUN_DIR/m.txt" "$vip" "$want" <<'EOF'
import json, re, struct, sys
show, lst, table = (json.loads(a) for a in sys.argv[1:4])
metrics, vip, want = open(sys.argv[4]).read(), sys.argv[5], sys.argv[6]
raw = bytes(int(b, 16) for b in table["value"])
slots = struct.unpack(f"<{len(raw) // 4}I", raw)
bes = sorted(show["backends"], key=lambda b: b["id"])
rows = {r["backend"]: r for r in (lst if isinstance(lst, list) else lst.get("backends", lst))}
def metric(name, ep):
    m = re.search(r'^%s\{service="%s:80/tcp",backend="%s"[^}]*\} (\S+)$' % (name, re.escape(vip), re.escape(ep)),
                  metrics, re.M)
    return float(m.group(1)) if m else None
tw = sum(b["weight"] for b in bes)
for b in bes:
    n = slots.count(b["id"])
    r = rows.get(b["backend"])
    if b["slots"] != n:
        sys.exit(print(f"backend {b['id']}: service show says {b['slots']} slots, the table holds {n}"))
    if r is None or round(r["share"] * len(slots)) != n or abs(r["weight"] - b["weight"]) > 1e-9:
        sys.exit(print(f"backend {b['id']}: backend list says {r and (r['share'], r['weight'])}, the table holds {n}"))
    ms, mw = metric("xmesh_backend_share", b["backend"]), metric("xmesh_backend_weight", b["backend"])
    if ms is None or round(ms * len(slots)) != n or mw is None or abs(mw - b["weight"]) > 0.0015:
        sys.exit(print(f"backend {b['id']}: /metrics says share {ms} weight {mw}, the table holds {n}"))
    if want:
        continue
    if tw <= 0 or abs(b["weight"] / tw * len(slots) - n) > 1.5:
        sys.exit(print(f"backend {b['id']}: weight {b['weight']} of {tw} is {b['weight'] / tw * len(slots):.1f} slots, the table holds {n}"))
if want and [b["weight"] for b in bes] != [float(x) for x in want.split(",")]:
    sys.exit(print(f"weights shown {[b['weight'] for b in bes]}, configured {want}"))
EOF
}

# 1. the loop's tables
xm_bg "$XM_TOOLS/fake_probes" --pin-root "$XM_PIN" --rps 40 --period-ms 100 --duration 600
FP=$XM_LAST_PID
table_writes() {
	xm_ctl -j top count 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["loop"]["table_writes"])'
}
for _ in $(seq 300); do
	[ "$(table_writes)" -ge 3 ] && break
	sleep 0.1
done
xm_assert "$(table_writes)" -ge 3 "tables written by the loop"
flips=0
for i in $(seq 10); do
	# a snapshot taken across a flip is taken again (it cannot be judged)
	for _ in $(seq 10); do
		why=$(check "$VA")
		[ "$why" = again ] || break
		flips=$((flips + 1))
	done
	[ -z "$why" ] || xm_fail "l3x snapshot $i: $why"
	sleep 0.3
done
# the loop's weights are not the configured ones (1 each): this checked the loop's
unequal=$(xm_ctl -j service show "$VA:80" | python3 -c '
import json, sys; w = [b["weight"] for b in json.load(sys.stdin)["backends"]]; print(int(max(w) - min(w) > 0.02))')
xm_assert "$unequal" -eq 1 "the loop's weights differ between backends"
xm_log "ok: l3x: slots, shares and weights shown are the loop's table (10 snapshots, $flips taken again)"

# 2. service B's table replaced behind the agent's back: 512 / 256 / 256
xm_assert "$(check "$VB" 1,2,3)" = "" "static service as configured"
ids=$(xm_ctl -j service show "$VB:80" | python3 -c '
import json, sys; s = json.load(sys.stdin); print(s["id"], s["active_table"], *sorted(b["id"] for b in s["backends"]))')
# shellcheck disable=SC2086
set -- $ids
sid=$1 act=$2
python3 - "$3" "$4" "$5" >"$XM_RUN_DIR/table.hex" <<'EOF'
import struct, sys
a, b, c = map(int, sys.argv[1:4])
print(" ".join(str(x) for x in struct.pack("<1024I", *([a] * 512 + [b] * 256 + [c] * 256))))
EOF
inactive=$((sid * 2 + (act ^ 1)))
# shellcheck disable=SC2046
bpftool map update pinned "$XM_PIN/maps/xm_lb_tables" key $((inactive & 255)) $((inactive >> 8 & 255)) 0 0 \
	value $(cat "$XM_RUN_DIR/table.hex") || xm_fail "write the inactive table"
# the service entry: key {vip, port 80, tcp, AF_INET}, value {id, active ^ 1, backend_count 3}
key=$(python3 -c 'import socket, struct, sys; print(" ".join(str(x) for x in socket.inet_aton(sys.argv[1]) + bytes(12) + struct.pack("<HBB", 80, 6, 2)))' "$VB")
val=$(python3 -c 'import struct, sys; print(" ".join(str(x) for x in struct.pack("<IB3xII", int(sys.argv[1]), int(sys.argv[2]) ^ 1, 3, 0)))' "$sid" "$act")
# shellcheck disable=SC2086
bpftool map update pinned "$XM_PIN/maps/xm_lb_svc" key $key value $val || xm_fail "flip the service"
why=$(check "$VB" 1,2,3)
[ -z "$why" ] || xm_fail "after a flip behind the agent's back: $why"
got=$(xm_ctl -j service show "$VB:80" | python3 -c '
import json, sys; print(",".join(str(b["slots"]) for b in sorted(json.load(sys.stdin)["backends"], key=lambda b: b["id"])))')
xm_assert "$got" = "512,256,256" "slots shown after the flip"
xm_log "ok: a table written behind the agent's back is shown at once, with the configured weights"

# 3. restart with A static: the config's table and weights, not the loop's last
kill "$FP" 2>/dev/null
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
# shellcheck disable=SC2086
cat >"$XM_RUN_DIR/agent2.json" <<EOF
{"weighting": {"tick_ms": 60000}, "services": [{"vip": "$VA", "port": 80, "backends": [
  $(for a in $BA; do printf '{"address": "%s", "port": 80, "weight": 1}, ' "$a"; done | sed 's/, $//')]}]}
EOF
MPORT=$(free_port)
xm_agent_start --config "$XM_RUN_DIR/agent2.json" --metrics "127.0.0.1:$MPORT"
xm_lb_wait "$VA:80" 4
why=$(check "$VA" 1,1,1,1)
[ -z "$why" ] || xm_fail "after the restart with static weights: $why"
got=$(xm_ctl -j service show "$VA:80" | python3 -c '
import json, sys; print(",".join(str(b["slots"]) for b in json.load(sys.stdin)["backends"]))')
xm_assert "$got" = "256,256,256,256" "slots of the config's table"
xm_log "ok: restarted static: the config's slots and weights are shown"
exit 0
