#!/bin/bash
# SPDX-License-Identifier: MIT
# `xmesh-agent uninstall` drains, never drops (issue 11, case 2): with live
# redirected connections holding unread bytes, uninstall detaches sockops
# (no new socket is redirected), keeps the connections redirecting until
# they close, reports them in `xmeshctl status`, and removes the last pins
# once they are gone; every byte arrives. Past --drain-timeout it stops
# without --force (pins stay, a later uninstall resumes) and removes the
# map with --force.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_two_pods
go=$XM_RUN_DIR/go
draining() { xm_ctl -j status 2>/dev/null | xm_json 'j.get("draining_sockets", -1)'; }

# Two connections with bytes the peer has not read: one on 127.0.0.1 in pod a,
# and 4 long transfers between the pods spread over 3 s.
xm_pod_exec a "$XM_TOOLS/xm-sockapi" hold 127.0.0.1 7600 -s 300000 -w "$go" -t 20000 \
	>"$XM_RUN_DIR/hold.out" 2>&1 &
hold=$!
XM_PIDS+=($hold)
xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 10.77.0.3:7601 --size 2M --answer 2M
sleep 0.2
xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7601 -s 2M --answer 2M -c 4 -d 3 \
	>"$XM_RUN_DIR/long.out" 2>&1 &
long=$!
for _ in $(seq 50); do grep -q "sent" "$XM_RUN_DIR/hold.out" && break; sleep 0.1; done
grep -q "sent" "$XM_RUN_DIR/hold.out" || xm_fail "hold client did not send: $(cat "$XM_RUN_DIR/hold.out")"
before=$(xm_stat redirect_bytes)
xm_assert "$before" -ge 300000 "the held bytes were redirected (sit in the peer's redirect queue)"

kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" --drain-timeout 30 \
	>"$XM_RUN_DIR/uninstall.out" 2>&1 &
uninstall=$!
XM_PIDS+=($uninstall)
for _ in $(seq 50); do [ "$(draining)" -ge 2 ] 2>/dev/null && break; sleep 0.1; done
n=$(draining)
xm_assert "$n" -ge 2 "xmeshctl status reports the redirected sockets still draining"
xm_ctl status | grep -q "^draining:" || xm_fail "plain status does not say it is draining"
[ -e "$XM_PIN/links/sockops" ] && xm_fail "sockops still attached while draining"
xm_assert "$(ls "$XM_PIN/links")" = "sk_msg" "only the sk_msg link is left while draining"

# A connection opened while draining is not redirected (sockops is gone) and works over TCP.
socks=$(xm_ctl -j sock list | xm_json 'len(j)')
xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 10.77.0.3:7602 --size 100K --answer 100K
sleep 0.2
xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7602 -s 100K --answer 100K >/dev/null ||
	xm_fail "a new connection during the drain failed"
xm_assert "$(xm_ctl -j sock list | xm_json 'len(j)')" -le "$socks" "no new socket entered the redirect map"

touch "$go"
wait "$hold" || xm_fail "bytes in flight across uninstall were lost: $(cat "$XM_RUN_DIR/hold.out")"
xm_log "$(tail -n1 "$XM_RUN_DIR/hold.out")"
wait "$long" || xm_fail "long transfers across uninstall: $(cat "$XM_RUN_DIR/long.out")"
xm_assert "$(xm_kv ok "$(tail -n1 "$XM_RUN_DIR/long.out")")" -eq 4 "all long transfers completed"
xm_assert "$(( $(xm_stat redirect_bytes 2>/dev/null || echo "$before") ))" -ge "$before" \
	"counters readable while draining"
xm_kill_tree "$XM_LAST_PID"
for p in "${XM_PIDS[@]}"; do [ "$p" = "$uninstall" ] || xm_kill_tree "$p"; done
wait "$uninstall" || xm_fail "uninstall failed: $(cat "$XM_RUN_DIR/uninstall.out")"
[ -e "$XM_PIN" ] && xm_fail "pins left after the drain: $(find "$XM_PIN")"
xm_log "ok: uninstall drained and removed every pin: $(tail -n1 "$XM_RUN_DIR/uninstall.out")"
[ -z "$(bpftool cgroup show "$XM_CGROUP" 2>/dev/null)" ] || xm_fail "programs still attached"

# Bound and --force: a connection that never closes.
rm -f "$go"
xm_agent_start
xm_pod_exec a "$XM_TOOLS/xm-sockapi" hold 127.0.0.1 7603 -s 1000 -w "$go" -t 20000 \
	>"$XM_RUN_DIR/hold2.out" 2>&1 &
XM_PIDS+=($!)
for _ in $(seq 50); do grep -q "sent" "$XM_RUN_DIR/hold2.out" && break; sleep 0.1; done
kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
if "$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" --drain-timeout 0.5 \
	2>"$XM_RUN_DIR/u2.err"; then
	xm_fail "uninstall returned success with connections still draining"
fi
grep -q "still open" "$XM_RUN_DIR/u2.err" || xm_fail "no reason given: $(cat "$XM_RUN_DIR/u2.err")"
xm_assert "$(draining)" -ge 2 "after the bound the connections still drain (pins kept)"
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" --drain-timeout 0 --force \
	2>"$XM_RUN_DIR/u3.err" || xm_fail "--force: $(cat "$XM_RUN_DIR/u3.err")"
[ -e "$XM_PIN" ] && xm_fail "--force left pins"
xm_log "ok: --drain-timeout bounds the wait, --force removes the map"
