#!/bin/bash
# SPDX-License-Identifier: MIT
# Upgrade from a real ABI-1 datapath (docs/install.md, "Upgrade"): the last
# commit before ABI 2 is built from this repository's history (cached in
# build/abi1-<commit>), its agent pins a datapath and redirects a connection
# that holds unread bytes, and is stopped (its datapath stays). Then:
#   - the new agent refuses that pin root, exits non-zero, and says what it
#     is (ABI 1, the old agent's version) and what to run; it changes nothing:
#     the old connection still redirects and its bytes arrive later;
#   - the documented path: the new `xmesh-agent uninstall` drains the ABI-1
#     datapath (waits for the connection, removes every pin), and the new
#     agent then starts and redirects.
set -eu
. "$(dirname "$0")/lib.sh"
ABI2_COMMIT=d0bcdf5 # "redirect: key each connection incarnation by its ISNs" (ABI 2)
git -C "$XM_TOP" rev-parse -q --verify "$ABI2_COMMIT^{commit}" >/dev/null 2>&1 ||
	xm_skip "no git history with $ABI2_COMMIT here (shallow clone?): cannot build the ABI-1 agent"
old=$(git -C "$XM_TOP" rev-parse "$ABI2_COMMIT^")
OLD=$XM_TOP/build/abi1-${old:0:12}
if [ ! -x "$OLD/build/bin/xmesh-agent" ] || [ ! -x "$OLD/build/bin/xmeshctl" ]; then
	xm_log "building the ABI-1 agent at ${old:0:12} in $OLD (once; about a minute)"
	rm -rf "$OLD" && mkdir -p "$OLD"
	git -C "$XM_TOP" archive "$old" | tar -x -C "$OLD"
	make -C "$OLD" -j2 -s build/bin/xmesh-agent build/bin/xmeshctl >"$OLD.log" 2>&1 ||
		xm_fail "building the ABI-1 agent failed: $(tail -n 20 "$OLD.log")"
fi
"$OLD/build/bin/xmesh-agent" -V | grep -q "ABI 1" || xm_fail "$OLD is not an ABI-1 agent"
xm_setup
go=$XM_RUN_DIR/go

# The old agent pins its datapath and redirects a loopback connection in pod a.
xm_node n1
xm_pod n1 a 10.77.0.2/24
xm_bg "$OLD/build/bin/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" 2>"$XM_RUN_DIR/old.log"
old_agent=$XM_LAST_PID
# Ready once its datapath is attached (its xmeshctl's status reads differently).
for _ in $(seq "$(xm_size 100 600)"); do grep -q "datapath ready" "$XM_RUN_DIR/old.log" && break; sleep 0.1; done
grep -q "datapath ready" "$XM_RUN_DIR/old.log" || xm_fail "ABI-1 agent not ready: $(tail -n 5 "$XM_RUN_DIR/old.log")"
xm_pod_exec a "$XM_TOOLS/xm-sockapi" hold 127.0.0.1 7600 -s 200000 -w "$go" -t 30000 \
	>"$XM_RUN_DIR/hold.out" 2>&1 &
hold=$!
XM_PIDS+=($hold)
for _ in $(seq 100); do grep -q "sent" "$XM_RUN_DIR/hold.out" && break; sleep 0.1; done
grep -q "sent" "$XM_RUN_DIR/hold.out" || xm_fail "hold client did not send: $(cat "$XM_RUN_DIR/hold.out")"
n=$("$OLD/build/bin/xmeshctl" --pin-root "$XM_PIN" -j sock list | xm_json 'len(j)')
xm_assert "$n" -eq 2 "the ABI-1 datapath redirects the held connection (both ends in its map)"
kill "$old_agent"; wait "$old_agent" 2>/dev/null || true

# The new agent refuses, clearly, and leaves the old datapath as it was.
if "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" >"$XM_RUN_DIR/new.out" 2>&1; then
	xm_fail "the new agent ran on an ABI-1 pin root"
fi
msg=$(grep -i "abi" "$XM_RUN_DIR/new.out" | head -n1)
xm_log "refusal: $msg"
echo "$msg" | grep -q "ABI 1" || xm_fail "the refusal does not name the old ABI: $(cat "$XM_RUN_DIR/new.out")"
echo "$msg" | grep -qF "xmesh-agent uninstall --pin-root $XM_PIN" ||
	xm_fail "the refusal does not say what to run: $msg"
ver=$("$OLD/build/bin/xmesh-agent" -V | awk '{print $2}')
echo "$msg" | grep -qF "$ver" || xm_fail "the refusal does not name the old agent's version ($ver): $msg"
xm_assert "$("$OLD/build/bin/xmeshctl" --pin-root "$XM_PIN" -j sock list | xm_json 'len(j)')" -eq 2 \
	"the refused start left the old datapath alone"

# The documented path: uninstall with the new agent drains the old datapath.
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" --drain-timeout 30 \
	>"$XM_RUN_DIR/uninstall.out" 2>&1 &
uninstall=$!
XM_PIDS+=($uninstall)
sleep 1
kill -0 "$uninstall" 2>/dev/null || xm_fail "uninstall did not wait for the open connection: $(cat "$XM_RUN_DIR/uninstall.out")"
[ -e "$XM_PIN" ] || xm_fail "uninstall removed the pins under a live connection"
touch "$go"
wait "$hold" || xm_fail "bytes in flight across the upgrade were lost: $(cat "$XM_RUN_DIR/hold.out")"
xm_log "$(tail -n1 "$XM_RUN_DIR/hold.out")"
wait "$uninstall" || xm_fail "uninstall of the ABI-1 datapath failed: $(cat "$XM_RUN_DIR/uninstall.out")"
[ ! -e "$XM_PIN" ] || xm_fail "pins left after draining the ABI-1 datapath: $(find "$XM_PIN")"
xm_log "ok: the ABI-1 datapath drained and removed: $(tail -n1 "$XM_RUN_DIR/uninstall.out")"

# And the new agent runs and redirects.
xm_agent_start 2>>"$XM_RUN_DIR/new-agent.log"
r0=$(xm_stat redirect_msgs)
xm_pod_exec a "$XM_TOOLS/xm-sockapi" nbconnect 127.0.0.1 7601 >/dev/null || xm_fail "connection after the upgrade"
xm_assert "$(($(xm_stat redirect_msgs) - r0))" -gt 0 "the new agent redirects after the upgrade"
