#!/bin/sh
# SPDX-License-Identifier: MIT
# Takes xmesh off a node: unchains xmesh-cni, detaches and unpins the
# datapath, removes the plugin's records. Run by deploy/kubernetes/
# xmesh-uninstall.yaml once the xmesh DaemonSet is deleted, or by hand.
#
#   HOST_ROOT, CNI_BIN_DIR, CNI_CONF_DIR   as for install-cni.sh
#   XMESH_CGROUP     the cgroup the agent was attached to (default /host/sys/fs/cgroup)
#   XMESH_PIN_ROOT   default /sys/fs/bpf/xmesh
#   XMESH_STATE_DIR  the plugin's records on the host (default /var/lib/cni/xmesh)
#   XMESH_DRAIN_TIMEOUT  seconds to wait for redirected connections to close
#                    (default 60). Past it the script fails and leaves them
#                    draining; run again (the DaemonSet's init container is
#                    retried) to wait longer
#   XMESH_FORCE=1    after the wait, remove the redirect map anyway: bytes that
#                    open connections have not read yet are lost
#   XMESH_REMOVE_BINARY=1  also delete xmesh-cni from the plugin dir; leave it (the
#                    default) while pods created with it may still be deleted: a DEL
#                    for them must find the binary (it then just succeeds)
set -eu
HOST_ROOT=${HOST_ROOT-/host}
BIN_DIR=$HOST_ROOT${CNI_BIN_DIR:-/opt/cni/bin}
CONF_DIR=$HOST_ROOT${CNI_CONF_DIR:-/etc/cni/net.d}
CGROUP=${XMESH_CGROUP:-$HOST_ROOT/sys/fs/cgroup}
PIN=${XMESH_PIN_ROOT:-/sys/fs/bpf/xmesh}
STATE=$HOST_ROOT${XMESH_STATE_DIR:-/var/lib/cni/xmesh}
BIN=${XMESH_BIN_DIR:-/usr/local/bin}

log() { echo "uninstall: $*" >&2; }

# First stop new pods from reaching the plugin, then take the datapath away.
"$BIN/xmesh-cni" conflist remove --dir "$CONF_DIR"
# Drains: no new redirects, live ones keep working until they close.
if [ "${XMESH_FORCE:-0}" = 1 ]; then force=--force; else force=; fi
"$BIN/xmesh-agent" uninstall --cgroup "$CGROUP" --pin-root "$PIN" \
	--drain-timeout "${XMESH_DRAIN_TIMEOUT:-60}" $force
rm -rf "$STATE"
log "records in $STATE removed"
if [ "${XMESH_REMOVE_BINARY:-0}" = 1 ]; then
	rm -f "$BIN_DIR/xmesh-cni"
	log "$BIN_DIR/xmesh-cni removed"
fi
log "done: the node is as before xmesh"
