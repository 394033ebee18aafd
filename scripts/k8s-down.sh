#!/bin/bash
# SPDX-License-Identifier: MIT
# Remove test cluster ID (scripts/k8s-up.sh): every process it started, by
# pid (components from their pid files; shims and containers from the
# cluster's cgroups), its mount namespace with every mount in it, its netns,
# its cgroups in every hierarchy, its pin root and its data dir. Works on a
# partial or failed cluster; safe to run twice. Exit 1 if anything is left.
#
#   scripts/k8s-down.sh ID
set -uo pipefail

. "$(dirname "$0")/k8s-lib.sh"
ID=${1:-${XM_K8S_ID:-}}
[[ $ID =~ ^[0-9a-z]{1,6}$ ]] || { echo "usage: k8s-down.sh ID" >&2; exit 2; }
xm_k8s_names "$ID"
D=$XM_K8S_DIR
N=$XM_K8S_NAME
PIN=/sys/fs/bpf/$N
T0=$SECONDS
say() { echo "k8s-down: [$((SECONDS - T0))s] $*"; }

# stop NAME...: stop components (xm_k8s_stop) and say which.
stop() {
	local name pid
	xm_k8s_stop "$@" | while read -r name pid; do say "stopping $name (pid $pid)"; done
}

# kill_cgroups: SIGKILL whatever runs in the cluster's cgroups (containers,
# shims) until nothing does.
kill_cgroups() {
	local pids
	for _ in $(seq 50); do
		pids=$(xm_k8s_cgroup_pids)
		[ -z "$pids" ] && return 0
		# shellcheck disable=SC2086
		kill -9 $pids 2>/dev/null
		sleep 0.2
	done
	return 1
}

if [ -d "$D/run" ]; then
	# The kubelet first, so it restarts nothing; containers and shims next,
	# then the runtime and the control plane.
	stop kubelet
	for p in $(xm_k8s_cgroup_pids); do
		for f in "$D"/run/*.pid; do [ "$(cat "$f" 2>/dev/null)" = "$p" ] && continue 2; done
		kill -9 "$p" 2>/dev/null
	done
	stop containerd kube-scheduler kube-controller-manager kube-apiserver
	stop etcd
fi
kill_cgroups || say "WARNING: processes remain in cgroup $XM_K8S_CGROUP"
if [ -e "/run/netns/$N" ]; then
	for p in $(ip netns pids "$N" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
fi

# The test's agent pins here; the cluster owns the name, so it goes too.
if [ -d "$PIN" ]; then
	"$XM_K8S_TOP/build/bin/xmesh-agent" uninstall --cgroup "$XM_K8S_CG2_MOUNT$XM_K8S_CGROUP" \
		--pin-root "$PIN" >/dev/null 2>&1
	rm -rf "$PIN"
	say "removed pin root $PIN"
fi

# Every mount the components made is inside the mount namespace; with its
# processes gone, unmounting its handle frees it and all its mounts.
for m in $(xm_k8s_mounts_under "$D"); do
	umount "$m" 2>/dev/null || umount -l "$m"
	say "unmounted $m"
done

if [ -e "/run/netns/$N" ]; then
	ip netns del "$N" && say "deleted netns $N"
fi

for h in $(xm_k8s_hierarchies); do
	[ -d "$h$XM_K8S_CGROUP" ] || continue
	for _ in $(seq 25); do
		find "$h$XM_K8S_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null
		[ -d "$h$XM_K8S_CGROUP" ] || break
		sleep 0.2
	done
done
say "removed cgroup $XM_K8S_CGROUP"

if [ -d "$D" ]; then
	if [ -n "$(xm_k8s_mounts_under "$D")" ]; then
		say "WARNING: mounts remain under $D; not removing it"
	else
		rm -rf --one-file-system "$D" && say "removed $D"
	fi
fi

# What is left, if anything, is a bug: say exactly what.
left=""
[ -n "$(xm_k8s_cgroup_pids)" ] && left="$left processes:$(xm_k8s_cgroup_pids | tr '\n' ',')"
for h in $(xm_k8s_hierarchies); do [ -d "$h$XM_K8S_CGROUP" ] && left="$left cgroup:$h$XM_K8S_CGROUP"; done
[ -e "/run/netns/$N" ] && left="$left netns:$N"
[ -e "$D" ] && left="$left dir:$D"
[ -e "$PIN" ] && left="$left pins:$PIN"
grep -q " $D[/ ]" /proc/self/mounts && left="$left mounts-under:$D"
if [ -n "$left" ]; then
	echo "k8s-down: LEFT BEHIND:$left" >&2
	exit 1
fi
say "cluster $N removed"
