#!/bin/bash
# SPDX-License-Identifier: MIT
# deploy/: the manifests parse and carry what xmesh needs (check_deploy.py,
# which must also reject broken variants); the installer script chains
# xmesh-cni into a node's Antrea conflist idempotently; the uninstall script
# leaves the node as before (no pins, conflist restored, no records).
set -eu
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
python3 -c 'import yaml' 2>/dev/null || xm_skip "python3-yaml missing"
xm_setup
TMP=$(mktemp -d "/tmp/$XM_PREFIX-deploy.XXXXXX")
xm_cleanup_extra() { rm -rf "$TMP"; }

# --- manifests -------------------------------------------------------------
python3 "$HERE/check_deploy.py" "$XM_TOP/deploy" >"$TMP/check.out" ||
	xm_fail "deploy/ checks: $(grep FAIL "$TMP/check.out")"
xm_log "ok: deploy/ manifests: $(grep -c '^ok' "$TMP/check.out") checks"
# The checker is not a rubber stamp: each broken variant must be caught.
broken() { # WHAT PYTHON-EDIT
	rm -rf "$TMP/d" && cp -r "$XM_TOP/deploy" "$TMP/d"
	python3 - "$TMP/d/kubernetes/xmesh.yaml" "$2" <<'EOF'
import sys
p, edit = sys.argv[1], sys.argv[2]
s = open(p).read()
old, new = edit.split("=>")
assert old in s, old
open(p, "w").write(s.replace(old, new))
EOF
	if python3 "$HERE/check_deploy.py" "$TMP/d" >"$TMP/b.out" 2>&1; then
		xm_fail "checker accepted a manifest with $1"
	fi
	xm_log "ok: checker rejects $1"
}
broken "a preStop that uninstalls" '"status"]=>"status"]
                command: ["/usr/local/bin/xmesh-agent", "uninstall"]'
broken "no --cgroup" '- --cgroup=/host/sys/fs/cgroup=>- --log-level=debug'
broken "no hostNetwork" 'hostNetwork: true=>hostNetwork: false'
broken "a ClusterRole that grants more" 'resources: ["nodes"]
    verbs: ["get"]=>resources: ["nodes"]
    verbs: ["get", "list"]'
broken "readiness not on /readyz" 'path: /readyz=>path: /metrics'
broken "no --k8s" '- --k8s
=>'
broken "no bpffs mount" 'path: /sys/fs/bpf
            type: Directory=>path: /var/tmp/bpf
            type: Directory'
broken "invalid JSON in the ConfigMap" '"services": []=>"services": [,]'
broken "invalid YAML" 'kind: DaemonSet=>kind: [DaemonSet'

# --- install-cni.sh on a node with Antrea ------------------------------------
host=$TMP/host
mkdir -p "$host/etc/cni/net.d" "$host/opt/cni/bin"
cp "$XM_TOP/tests/fixtures/cni/10-antrea.conflist" "$host/etc/cni/net.d/"
install_cni() {
	HOST_ROOT=$host XMESH_BIN_DIR=$XM_BIN XMESH_CNI_PLUGIN=$XM_TOP/deploy/cni/xmesh-cni-plugin.json \
		"$XM_TOP/deploy/install-cni.sh" 2>>"$TMP/install.log"
}
install_cni
cmp -s "$XM_BIN/xmesh-cni" "$host/opt/cni/bin/xmesh-cni" || xm_fail "binary not installed"
conf=$host/etc/cni/net.d/10-antrea.conflist
last=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["plugins"][-1], sort_keys=True))' "$conf")
want=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))' "$XM_TOP/deploy/cni/xmesh-cni-plugin.json")
xm_assert "$last" = "$want" "installer chained the ConfigMap's entry last in Antrea's conflist"
fp=$(echo "$(md5sum <"$conf" | cut -c1-32).$(stat -c %i "$conf")")
install_cni
xm_assert "$(echo "$(md5sum <"$conf" | cut -c1-32).$(stat -c %i "$conf")")" = "$fp" "installer run twice: conflist untouched"
echo stale >"$host/opt/cni/bin/xmesh-cni"
install_cni
cmp -s "$XM_BIN/xmesh-cni" "$host/opt/cni/bin/xmesh-cni" || xm_fail "upgrade must replace the binary"
xm_assert "$(ls -a "$host/opt/cni/bin" | grep -c xmesh)" -eq 1 "no temporary binary left"

# --- uninstall-node.sh -------------------------------------------------------
mkdir -p "$host/var/lib/cni/xmesh/antrea"
echo '{}' >"$host/var/lib/cni/xmesh/antrea/c1:eth0.json"
xm_agent_start
[ -d "$XM_PIN/links" ] || xm_fail "agent did not pin"
kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true # the DaemonSet is deleted first
[ -n "$(ls "$XM_PIN/links")" ] || xm_fail "stopping the agent must leave its links pinned"
HOST_ROOT=$host XMESH_CGROUP=$XM_CGROUP XMESH_PIN_ROOT=$XM_PIN XMESH_BIN_DIR=$XM_BIN \
	"$XM_TOP/deploy/uninstall-node.sh" 2>>"$TMP/uninstall.log" || xm_fail "uninstall-node.sh: $(cat "$TMP/uninstall.log")"
[ ! -e "$XM_PIN" ] || xm_fail "pins left after uninstall: $(ls -R "$XM_PIN")"
xm_assert "$(bpftool cgroup show "$XM_CGROUP" | grep -c xm_ || true)" -eq 0 "no program left on the cgroup"
python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
	"$conf" "$XM_TOP/tests/fixtures/cni/10-antrea.conflist" || xm_fail "Antrea's conflist not restored"
[ ! -e "$host/var/lib/cni/xmesh" ] || xm_fail "records left"
[ -x "$host/opt/cni/bin/xmesh-cni" ] || xm_fail "the binary stays by default (DELs of old pods need it)"
xm_log "ok: uninstall left the node as before"
