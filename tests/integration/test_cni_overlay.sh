#!/bin/bash
# SPDX-License-Identifier: MIT
# xmesh-cni and the overlay cache: on ADD the plugin itself hooks the pod's
# host veth into the cache (the agent is stopped, so nobody else does), CHECK
# notices a missing hook, DEL unhooks it. Skipped in a tree without the
# overlay cache (user/lib/overlay.h, scripts/testbed.sh).
set -eu
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
[ -f "$XM_TOP/user/lib/overlay.h" ] && [ -f "$XM_TOP/scripts/testbed.sh" ] ||
	xm_skip "no overlay cache in this tree"
. "$XM_TOP/scripts/testbed.sh"
xm_tb_cluster vxlan 1
TMP=$(mktemp -d "/tmp/$XM_PREFIX-cniovl.XXXXXX")
xm_cleanup_extra() { rm -rf "$TMP"; }
mkdir -p "$TMP/bin"
ln -s "$XM_BIN/xmesh-cni" "$TMP/bin/xmesh-cni"
PIN=$XM_PIN/n1
xm_tb_agent 1
[ -e "$PIN/progs/xm_ovl_pod_ingress" ] || xm_fail "the overlay cache pins its pod programs"
kill "${XM_TB_AGENT_PID[1]}"; wait "${XM_TB_AGENT_PID[1]}" 2>/dev/null || true
cat >"$TMP/net.conflist" <<EOT
{ "cniVersion": "1.0.0", "name": "xm-$XM_ID", "plugins": [
  { "type": "bridge", "bridge": "xmb$XM_ID",
    "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.79.0.0/24" }]], "dataDir": "$TMP/ipam" } },
  { "type": "xmesh-cni", "pinRoot": "$PIN", "stateDir": "$TMP/state", "logFile": "$TMP/cni.log" } ] }
EOT
chain() {
	nsenter --net="/var/run/netns/$XM_PREFIX-n1" python3 "$HERE/cni_chain.py" --conflist "$TMP/net.conflist" \
		--cache "$TMP/cache" --path "/usr/lib/cni:$TMP/bin" "$@"
}
xm_netns q1
T="c1=/var/run/netns/$XM_PREFIX-q1"
chain add "$T" >/dev/null || xm_fail "ADD"
idx=$(python3 -c 'import json,glob,sys; print(json.load(open(glob.glob(sys.argv[1])[0]))["hostIfindex"])' "$TMP/state/*/c1:eth0.json")
xm_assert "$(ls "$PIN/links" | grep -c "^ovl_pod_${idx}_\(in\|out\)$")" -eq 2 \
	"ADD hooked host veth $idx into the overlay cache (agent stopped)"
# A TCX link, or where the agent found no TCX, the program of a cls_bpf filter on that veth.
bpftool link show pinned "$PIN/links/ovl_pod_${idx}_in" >/dev/null 2>&1 ||
	nsenter --net="/var/run/netns/$XM_PREFIX-n1" tc filter show dev "$(nsenter \
		--net="/var/run/netns/$XM_PREFIX-n1" ip -o link show | awk -F': ' -v i="$idx" \
		'$1 == i {sub(/@.*/, "", $2); print $2}')" ingress | grep -q "direct-action" ||
	xm_fail "ADD attached nothing live to host veth $idx"
chain check "$T" >/dev/null || xm_fail "CHECK with the hooks in place"
rm "$PIN/links/ovl_pod_${idx}_in"
if chain check "$T" >/dev/null; then xm_fail "CHECK must notice a missing hook"; fi
xm_log "ok: CHECK notices a missing hook"
chain del "$T" >/dev/null || xm_fail "DEL"
xm_assert "$(ls "$PIN/links" | grep -c "^ovl_pod_${idx}_" || true)" -eq 0 "DEL unhooked the veth"
