#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs xmesh-cni on a node and chains it into the node's CNI config.
# Run by the DaemonSet's init container (host dirs mounted under /host) and
# usable by hand on a plain host (HOST_ROOT=).
#
#   HOST_ROOT            prefix of the host's filesystem        (default /host)
#   CNI_BIN_DIR          plugin dir on the host                 (default /opt/cni/bin)
#   CNI_CONF_DIR         config dir on the host                 (default /etc/cni/net.d)
#   XMESH_CNI_PLUGIN     our conflist entry, a JSON file        (default /etc/xmesh/cni-plugin.json)
#   XMESH_BIN_DIR        where the image keeps its binaries     (default /usr/local/bin)
#
# Idempotent: a second run changes nothing. Never fails the pod for a config
# it cannot chain into (an old cniVersion, no config yet): it says so and the
# node keeps plain networking; the cni-watch container chains as soon as a
# usable config appears.
set -eu
HOST_ROOT=${HOST_ROOT-/host}
BIN_DIR=$HOST_ROOT${CNI_BIN_DIR:-/opt/cni/bin}
CONF_DIR=$HOST_ROOT${CNI_CONF_DIR:-/etc/cni/net.d}
PLUGIN=${XMESH_CNI_PLUGIN:-/etc/xmesh/cni-plugin.json}
SRC=${XMESH_BIN_DIR:-/usr/local/bin}/xmesh-cni

log() { echo "install-cni: $*" >&2; }

mkdir -p "$BIN_DIR" "$CONF_DIR"
# Replace the binary by rename: a runtime executing the old one is not disturbed
# and never sees a half-written file.
if ! cmp -s "$SRC" "$BIN_DIR/xmesh-cni"; then
	cp "$SRC" "$BIN_DIR/.xmesh-cni.new"
	chmod 0755 "$BIN_DIR/.xmesh-cni.new"
	mv -f "$BIN_DIR/.xmesh-cni.new" "$BIN_DIR/xmesh-cni"
	log "installed $BIN_DIR/xmesh-cni"
else
	log "$BIN_DIR/xmesh-cni is up to date"
fi
set -- --dir "$CONF_DIR"
[ -f "$PLUGIN" ] && set -- "$@" --plugin-file "$PLUGIN"
if ! "$SRC" conflist add "$@"; then
	log "xmesh-cni is not chained yet (see above): pods get plain networking until it is"
fi
exit 0
