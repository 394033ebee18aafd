#!/bin/bash
# SPDX-License-Identifier: MIT
# Validate before touching anything (issue 12, item 2):
# - 3 services x 1000 backends (each under the per-service limit, together
#   over the node's) is rejected whole, by reload and by the control socket:
#   nothing half applied, the running services stay;
# - 65 distinct `cluster` labels over time do not exhaust the label table,
#   and an agent restarted on a table full of stale labels recovers;
# - a FIFO, a /dev/zero symlink or an oversized file as config: a clear
#   error at once (no blocking, no garbage in the message), the agent serves on.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
D=$XM_RUN_DIR/cfg
mkdir -p "$D"
CFG=$D/config.json
LOG=$XM_RUN_DIR/agent.log
svc_json() { # VIP NBACKENDS [CLUSTER]
	local i sep="" cl=${3:-local}
	printf '{"vip": "%s", "port": 80, "backends": [' "$1"
	for ((i = 0; i < $2; i++)); do
		printf '%s{"address": "10.100.%d.%d", "port": 8080, "cluster": "%s"}' "$sep" \
			$((i / 256)) $((i % 256)) "$cl"
		sep=,
	done
	printf ']}'
}
write_cfg() { # SERVICE_JSON...
	local IFS=,
	echo "{\"services\": [$*]}" >"$CFG.tmp" && mv "$CFG.tmp" "$CFG"
}
services() { xm_ctl -j service list | xm_json '" ".join(sorted("%s=%d" % (s["service"], s["backend_count"]) for s in j))'; }
write_cfg "$(svc_json 10.96.0.1 3)"
xm_agent_start --config "$CFG" 2>"$LOG"
xm_lb_wait 10.96.0.1:80 3
before=$(services)

# --- node-wide backend limit: rejected whole ---
write_cfg "$(svc_json 10.96.0.10 1000)" "$(svc_json 10.96.0.11 1000)" "$(svc_json 10.96.0.12 1000)"
out=$(xm_ctl service reload 2>&1) && xm_fail "3 x 1000 backends accepted: $out"
sleep 0.3
xm_assert "$(services)" = "$before" "services after a reload over the node limit"
grep -q "3000 backends in all services" "$LOG" || xm_fail "no clear reason in the log: $(tail -n 3 "$LOG")"
write_cfg "$(svc_json 10.96.0.1 3)"
xm_ctl service reload
for v in 10 11; do xm_ctl service add "$(svc_json 10.96.0.$v 1000)"; done
out=$(xm_ctl service add "$(svc_json 10.96.0.12 1000)" 2>&1) && xm_fail "third 1000-backend service accepted"
grep -q "at most 2047" <<<"$out" || xm_fail "unclear error: $out"
xm_ctl -j service list | xm_json '[s["service"] for s in j]' | grep -q 10.96.0.12 &&
	xm_fail "the refused service was half applied"
xm_ctl service reload
xm_log "ok: over the node's backend limit -> rejected whole"

# --- 65 distinct cluster labels over time ---
for i in $(seq 1 66); do
	write_cfg "$(svc_json 10.96.0.1 3 "c$i")"
	xm_ctl service reload >/dev/null 2>&1 || xm_fail "label c$i refused: $(grep -i "error\|rejected" "$LOG" | tail -n 2)"
done
xm_ctl -j backend list 10.96.0.1:80 interval 0 | grep -q '"c66"' || xm_fail "label c66 not applied"
xm_log "ok: 66 labels over time"
# A table full of stale labels (as an agent of before this fix left it): a restart recovers.
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
for i in $(seq 0 63); do
	bpftool map update pinned "$XM_PIN/maps/xm_lb_cluster" key $i 0 0 0 \
		value 0x73 0x$(printf %x $((0x30 + i % 10))) 0x$(printf %x $((0x30 + i / 10))) $(printf '0 %.0s' $(seq 29))
done
write_cfg "$(svc_json 10.96.0.1 3 fresh)"
xm_agent_start --config "$CFG" 2>>"$LOG"
for _ in $(seq 30); do
	xm_ctl -j backend list 10.96.0.1:80 interval 0 | grep -q '"fresh"' && break
	sleep 0.1
done
xm_ctl -j backend list 10.96.0.1:80 interval 0 | grep -q '"fresh"' ||
	xm_fail "restart on a full label table did not recover: $(tail -n 3 "$LOG")"
xm_log "ok: restart frees stale labels"

# --- config files that are not regular files of sane size ---
printable() { ! LC_ALL=C grep -q '[^[:print:][:space:]]' "$1"; }
rm -f "$CFG"; mkfifo "$CFG.fifo"; mv "$CFG.fifo" "$CFG"
out=$(timeout 10 "$XM_BIN/xmeshctl" --pin-root "$XM_PIN" service reload 2>&1) &&
	xm_fail "a FIFO config accepted"
[ $? -ne 124 ] || xm_fail "reload blocked on a FIFO"
grep -q "not a regular file" <<<"$(tail -n 5 "$LOG")" || xm_fail "FIFO: unclear error: $(tail -n 2 "$LOG")"
xm_lb_wait 10.96.0.1:80 3
rm -f "$CFG"; ln -s /dev/zero "$CFG"
timeout 10 "$XM_BIN/xmeshctl" --pin-root "$XM_PIN" service reload >/dev/null 2>&1 &&
	xm_fail "/dev/zero config accepted"
grep -q "not a regular file" <<<"$(tail -n 3 "$LOG")" || xm_fail "/dev/zero: unclear error"
rm -f "$CFG"; head -c $((9 << 20)) /dev/zero | tr '\0' ' ' >"$CFG"
timeout 10 "$XM_BIN/xmeshctl" --pin-root "$XM_PIN" service reload >/dev/null 2>&1 &&
	xm_fail "a 9 MiB config accepted"
grep -q "larger than 8 MiB" <<<"$(tail -n 3 "$LOG")" || xm_fail "oversized: unclear error"
printable "$LOG" || xm_fail "the log holds unprintable bytes"
kill -0 "$XM_AGENT_PID" || xm_fail "agent died"
kill "$XM_AGENT_PID"
for _ in $(seq 50); do kill -0 "$XM_AGENT_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$XM_AGENT_PID" 2>/dev/null && xm_fail "agent ignores SIGTERM"
xm_log "ok: FIFO, /dev/zero, 9 MiB config refused at once"
