#!/bin/bash
# SPDX-License-Identifier: MIT
# xmesh-cni (issue 12, item 3):
# - DEL fails open like ADD: with the state dir unusable, DEL succeeds (pod
#   teardown never sticks) and the log says what was left;
# - a prevResult with a 20-byte (InfiniBand) MAC or an IP without a prefix:
#   ADD fails with code 7 and a message naming what is wrong; DEL succeeds;
# - the shipped plugin has no test hook (XMESH_CNI_TEST_CRASH).
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
T=$XM_RUN_DIR/cni
mkdir -p "$T"
echo "not a directory" >"$T/file"
conf() { # STATE_DIR PREV_RESULT
	printf '{"cniVersion":"1.0.0","name":"xm-net","type":"xmesh-cni","pinRoot":"%s","stateDir":"%s","logFile":"%s","prevResult":%s}' \
		"$XM_PIN" "$1" "$T/cni.log" "$2"
}
cni() { # COMMAND STATE_DIR PREV_RESULT
	conf "$2" "$3" | CNI_COMMAND=$1 CNI_CONTAINERID=xm-$XM_ID-c1 CNI_IFNAME=eth0 \
		CNI_NETNS=/proc/self/ns/net CNI_PATH=/nonexistent "$XM_BIN/xmesh-cni"
}
GOOD='{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"02:00:00:00:00:01","sandbox":"/proc/self/ns/net"}],"ips":[{"address":"10.78.0.9/24","interface":0}]}'
MAC20='{"cniVersion":"1.0.0","interfaces":[{"name":"ib0","mac":"80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0c:e5:f1"}],"ips":[]}'
NOPREFIX='{"cniVersion":"1.0.0","ips":[{"address":"10.78.0.9"}]}'

# --- DEL with an unusable state dir ---
out=$(cni DEL "$T/file/state" "$GOOD") || xm_fail "DEL with an unusable state dir failed: $out"
grep -q "fail-open" "$T/cni.log" || xm_fail "DEL did not log what it left: $(cat "$T/cni.log")"
xm_log "ok: DEL fails open"

# --- bad prevResult: ADD says what is wrong (code 7), DEL goes on ---
for case in MAC20 NOPREFIX; do
	out=$(cni ADD "$T/state" "${!case}") && xm_fail "ADD with $case succeeded"
	code=$(echo "$out" | xm_json 'j["code"]')
	xm_assert "$code" -eq 7 "ADD with $case: CNI error code"
	msg=$(echo "$out" | xm_json 'j["msg"]')
	case $case in
	MAC20) grep -q "6-byte Ethernet MAC" <<<"$msg" || xm_fail "unclear: $msg" ;;
	NOPREFIX) grep -q "no prefix length" <<<"$msg" || xm_fail "unclear: $msg" ;;
	esac
	out=$(cni DEL "$T/state" "${!case}") || xm_fail "DEL with $case failed: $out"
done
xm_log "ok: bad prevResult: ADD code 7 with a clear message, DEL succeeds"

# --- no test hook in the shipped plugin ---
if grep -aq XMESH_CNI_TEST_CRASH "$XM_BIN/xmesh-cni"; then
	xm_fail "the shipped xmesh-cni carries the XMESH_CNI_TEST_CRASH test hook"
fi
xm_log "ok: no test hook in the shipped plugin"
