#!/bin/bash
# SPDX-License-Identifier: MIT
# The pin root and what the agent leaves on the node (issue 12, item 2):
# - a failed start (bad --metrics, missing --overlay-dev, metrics port in
#   use, a number flag that is not one, a Kubernetes flag without --k8s) rolls back: nothing pinned, nothing attached; on a pin root that
#   already held a datapath, that datapath stays intact (meta map readable);
# - lock and control socket are keyed by the canonical pin root: a trailing
#   slash, a symlink or ".." cannot start a second agent; xmeshctl with a
#   pin root that does not exist never reaches another agent;
# - bpffs is mounted only at the pin root itself, never over its parent and
#   never over a non-empty directory;
# - lock files and stale sockets are removed (exit, start after a SIGKILL,
#   uninstall): uninstall leaves the run dir and /sys/fs/bpf as before.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
NB=$XM_RUN_DIR/notbpf
xm_cleanup_extra() {
	for p in "$NB/xmesh" "$NB/full"; do
		grep -q " $p bpf " /proc/mounts && umount -l "$p"
	done
	rm -rf "$NB"
	rmdir "$XM_RUN_DIR" 2>/dev/null || true # lib.sh's rm -rf ran while a mount was left
}
snapshot() { { ls -A "$XM_RUN_DIR"; ls -A /sys/fs/bpf | grep "^$XM_PREFIX" || true; } | sort; }
mkdir -p "$NB"
before=$(snapshot)
attached() { bpftool cgroup show "$XM_CGROUP" 2>/dev/null | grep -c . || true; }

# --- failed starts roll back ---
agent() { "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" "$@"; }
agent --metrics nonsense 2>"$XM_RUN_DIR/e1" && xm_fail "bad --metrics accepted"
grep -q -- "--metrics nonsense: give ADDR:PORT" "$XM_RUN_DIR/e1" || xm_fail "bad --metrics: unclear"
agent --overlay-dev xm-nodev 2>"$XM_RUN_DIR/e2" && xm_fail "missing --overlay-dev accepted"
grep -q "no such interface" "$XM_RUN_DIR/e2" || xm_fail "missing --overlay-dev: unclear"
# bad_flag MESSAGE FLAG...: refused at start with MESSAGE (was: "5m" read as 5, "abc" as the
# default, --node-name without Kubernetes mode, --overlay-vxlan without
# --overlay-dev and --force without uninstall ignored)
bad_flag() {
	local want=$1
	shift
	agent "$@" 2>"$XM_RUN_DIR/e3" && xm_fail "accepted: $*"
	grep -qF -- "$want" "$XM_RUN_DIR/e3" || xm_fail "$*: unclear: $(cat "$XM_RUN_DIR/e3")"
}
bad_flag "--k8s-watch-timeout 5m: give a whole number from 1 to 86400" --kubeconfig /dev/null --k8s-watch-timeout 5m
bad_flag "--lb-udp-max abc: give a whole number from 1 to" --lb-udp-max abc
bad_flag "--overlay-max-flows 1.5: give a whole number" --overlay-max-flows 1.5
bad_flag "--node-name needs --k8s or --kubeconfig FILE" --node-name n1
bad_flag "--k8s and --kubeconfig: give one" --k8s --kubeconfig /dev/null
bad_flag "--overlay-vxlan needs --overlay-dev IF" --overlay-vxlan vx0
bad_flag "--overlay-max-flows needs --overlay-dev IF" --overlay-max-flows 1024
bad_flag "--force belongs to 'xmesh-agent uninstall'" --force
bad_flag "--drain-timeout belongs to 'xmesh-agent uninstall'" --drain-timeout 5
xm_log "ok: bad number flags, and flags without the one they need (Kubernetes, overlay, uninstall), refused at start"
ip netns exec "$XM_PREFIX-n1" python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 9464)); s.listen(); time.sleep(3600)' &
XM_PIDS+=($!)
# The port must be taken before the agent tries it (a slow python would let the
# agent win it and run on): wait for the listener, and bound the agent's runs.
for _ in $(seq 100); do
	ip netns exec "$XM_PREFIX-n1" ss -Hltn 'sport = :9464' | grep -q . && break
	sleep 0.1
done
ip netns exec "$XM_PREFIX-n1" ss -Hltn 'sport = :9464' | grep -q . ||
	xm_fail "the test's listener on 127.0.0.1:9464 did not start"
timeout 60 "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" \
	--netns "$(xm_netns_path n1)" --metrics 127.0.0.1:9464 2>"$XM_RUN_DIR/e3" &&
	xm_fail "start with the metrics port in use succeeded"
grep -q "rolled back" "$XM_RUN_DIR/e3" || xm_fail "no rollback: $(tail -n 3 "$XM_RUN_DIR/e3")"
rm -f "$XM_RUN_DIR"/e[123]
xm_assert "$(attached)" -eq 0 "programs attached to the cgroup after failed starts"
xm_assert "$(snapshot)" = "$before" "run dir and /sys/fs/bpf after failed starts"
# A failed restart on a working datapath leaves it working.
xm_agent_start
kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
timeout 60 "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" \
	--netns "$(xm_netns_path n1)" --metrics 127.0.0.1:9464 2>/dev/null && xm_fail "restart succeeded"
xm_ctl -j status | xm_json 'j["abi_version"]' >/dev/null || xm_fail "meta map unreadable after a failed restart"
xm_assert "$(attached)" -gt 0 "programs still attached after a failed restart"
xm_log "ok: failed starts roll back; a failed restart keeps the datapath"

# --- one agent per canonical pin root ---
xm_agent_start
ln -s "$XM_PIN" "$XM_RUN_DIR/pinlink"
for spelling in "$XM_PIN/" "$XM_PIN//" "$XM_RUN_DIR/pinlink" "$XM_PIN/../$(basename "$XM_PIN")"; do
	agent 2>"$XM_RUN_DIR/e4" --pin-root "$spelling" && xm_fail "second agent on $spelling"
	grep -q "another xmesh-agent" "$XM_RUN_DIR/e4" || xm_fail "$spelling: $(cat "$XM_RUN_DIR/e4")"
done
rm -f "$XM_RUN_DIR/e4" "$XM_RUN_DIR/pinlink"
xm_ctl service add '{"vip": "10.96.0.10", "port": 80, "backends": [{"address": "10.77.0.3", "port": 80}]}'
"$XM_BIN/xmeshctl" --pin-root "/nonexistent/x/$(basename "$XM_PIN")" service del 10.96.0.10:80 2>/dev/null &&
	xm_fail "xmeshctl with a missing pin root reached an agent"
xm_lb_wait 10.96.0.10:80 1
xm_ctl --pin-root "$XM_PIN/" service del 10.96.0.10:80 || xm_fail "trailing slash does not reach the agent"
xm_log "ok: one agent per canonical pin root"

# --- SIGKILL leaves a socket; the next start and uninstall remove it ---
kill -9 "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
ls "$XM_RUN_DIR"/*.sock >/dev/null 2>&1 || xm_fail "expected a stale socket after SIGKILL"
xm_agent_start
kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
xm_assert "$(ls "$XM_RUN_DIR" | grep -c '\.lock$\|\.sock$' || true)" -eq 0 "lock and socket after a clean stop"
xm_agent_start
kill -9 "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN"
xm_assert "$(attached)" -eq 0 "programs attached after uninstall"
xm_assert "$(snapshot)" = "$before" "run dir and /sys/fs/bpf after uninstall"
xm_log "ok: uninstall leaves the node as before"

# --- bpffs only at the pin root, never over files ---
echo keep >"$NB/keep"
mkdir -p "$NB/full" && echo x >"$NB/full/file"
agent --pin-root "$NB/full" 2>"$XM_RUN_DIR/e5" && xm_fail "bpffs mounted over a non-empty directory"
grep -q "would hide its files" "$XM_RUN_DIR/e5" || xm_fail "non-empty pin root: $(cat "$XM_RUN_DIR/e5")"
[ -f "$NB/full/file" ] || xm_fail "the non-empty directory lost its file"
rm -f "$XM_RUN_DIR/e5"
XM_PIN_SAVED=$XM_PIN
XM_PIN=$NB/xmesh
xm_agent_start
[ -f "$NB/keep" ] || xm_fail "the pin root's parent lost its files"
xm_assert "$(awk -v p="$NB" '$2 == p' /proc/mounts | wc -l)" -eq 0 "mounts on the parent"
xm_assert "$(awk -v p="$NB/xmesh" '$2 == p && $3 == "bpf"' /proc/mounts | wc -l)" -eq 1 "bpffs at the pin root"
kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN"
xm_assert "$(awk -v p="$NB/xmesh" '$2 == p' /proc/mounts | wc -l)" -eq 0 "bpffs left at the pin root after uninstall"
[ ! -e "$NB/xmesh" ] || xm_fail "pin root left after uninstall"
XM_PIN=$XM_PIN_SAVED
xm_log "ok: bpffs only at the pin root"
