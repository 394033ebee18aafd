#!/bin/bash
# SPDX-License-Identifier: MIT
# uninstall leaves no program attached and no pin; the CLI rejects bad input
# with "Error: ..." (or {"error": ...} with -j) and exit 1; prefixes work.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_agent_start
ctl_fails() { # expect exit 1 and an Error: line
	local out rc=0
	out=$(xm_ctl "$@" 2>&1) || rc=$?
	[ "$rc" -eq 1 ] || xm_fail "xmeshctl $* exited $rc, expected 1"
	grep -q '^Error: ' <<<"$out" || xm_fail "xmeshctl $* printed no 'Error:' line: $out"
}
ctl_fails bogus
ctl_fails st              # ambiguous: status, stats
ctl_fails endpoint add 10.0.0.300 netns /proc/self/ns/net
ctl_fails endpoint add 10.0.0.1 netns /etc/hostname
ctl_fails endpoint add 10.0.0.1 netns
ctl_fails endpoint add 10.0.0.1 nets /proc/self/ns/net
ctl_fails endpoint del 10.9.9.9
ctl_fails stats extra
out=$(xm_ctl -j bogus || true)
python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert 'error' in d" "$out" ||
	xm_fail "-j errors must be JSON objects with 'error': $out"
xm_ctl so l >/dev/null || xm_fail "prefix 'so l' must mean 'sock list'"
xm_ctl e a 10.0.0.1 n /proc/self/ns/net 2>/dev/null && xm_fail "'n' is not 'netns'" || true
xm_ctl e a 10.0.0.1 netns /proc/self/ns/net || xm_fail "endpoint add by prefix"
xm_ctl e del 10.0.0.1 || xm_fail "endpoint del"
# the agent refuses a second instance on the same pin root
if "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" 2>"$XM_RUN_DIR/second.err"; then
	xm_fail "a second agent started on the same pin root"
fi
grep -q "another xmesh-agent" "$XM_RUN_DIR/second.err" || xm_fail "second agent: unclear error"
# agent input errors
"$XM_BIN/xmesh-agent" --pin-root "$XM_PIN-x" 2>&1 | grep -q -- "--cgroup PATH is required" ||
	xm_fail "missing --cgroup not explained"
"$XM_BIN/xmesh-agent" --cgroup /tmp --pin-root "$XM_PIN-x" 2>&1 | grep -q "not a cgroup v2" ||
	xm_fail "non-cgroup2 path not explained"

# not root
setpriv --reuid=65534 --regid=65534 --clear-groups "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" \
	--pin-root "$XM_PIN-x" 2>&1 | grep -q "must run as root" || xm_fail "non-root start not explained"
# a pin root written by another datapath ABI is refused, not misread
abi=$XM_PIN-abi
xm_cleanup_extra() { rm -rf "$abi"; }
mkdir -p "$abi/maps"
bpftool map create "$abi/maps/xm_meta" type array key 4 value 48 entries 1 name xm_meta
# magic "xmesh" (0x786d657368, little endian) and ABI 999
bpftool map update pinned "$abi/maps/xm_meta" key 0 0 0 0 value \
	0x68 0x73 0x65 0x6d 0x78 0 0 0  0xe7 0x03 0 0  0 0 0 0  $(printf '0 %.0s' $(seq 32))
if "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$abi" 2>"$XM_RUN_DIR/abi.err"; then
	xm_fail "agent accepted a pin root of another ABI"
fi
grep -q "another version (ABI 999" "$XM_RUN_DIR/abi.err" || xm_fail "ABI clash unclear: $(cat "$XM_RUN_DIR/abi.err")"
[ "$(ls "$abi/maps")" = xm_meta ] || xm_fail "the refused pin root was changed"
xm_assert "$(bpftool cgroup show "$XM_CGROUP" | grep -c xm_)" -ge 1 "programs attached before uninstall"
# uninstall while the agent runs is refused; after stopping it, everything goes
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" 2>/dev/null &&
	xm_fail "uninstall must refuse while the agent runs"
kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" ||
	xm_fail "uninstall failed"
xm_assert "$(bpftool cgroup show "$XM_CGROUP" | grep -c xm_ || true)" -eq 0 "no program attached after uninstall"
[ ! -e "$XM_PIN" ] || xm_fail "pin root still there after uninstall: $(ls -R "$XM_PIN")"
ctl_fails status
