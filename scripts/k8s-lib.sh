# SPDX-License-Identifier: MIT
# Names and helpers shared by scripts/k8s-up.sh and scripts/k8s-down.sh (sourced).
#
# One cluster = one id. Everything it creates is named after XM_K8S_NAME:
#   netns        /run/netns/xm-k8s-<id>     (every component's network; lo,
#                                          the node's dummy link, the CNI bridge)
#   mount ns     $D/ns/mnt                  (every component's mounts; /run,
#                                          /var/lib, /var/log overlaid by dirs of $D)
#   cgroup       /xm-k8s-<id> in every hierarchy (v1 and the cgroup2 mount)
#   data dir     $D = ${XM_K8S_DATA:-/var/tmp}/xm-k8s-<id>
# so removing those removes the cluster.

XM_K8S_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XM_K8S_BIN=${XM_K8S_BIN:-$XM_K8S_TOP/build/k8s/bin}

# xm_k8s_names ID: set the names of cluster ID.
xm_k8s_names() {
	XM_K8S_ID=$1
	XM_K8S_NAME=xm-k8s-$1
	XM_K8S_DIR=${XM_K8S_DATA:-/var/tmp}/$XM_K8S_NAME
	XM_K8S_NETNS=$XM_K8S_NAME
	XM_K8S_MNTNS=$XM_K8S_DIR/ns/mnt
	XM_K8S_CG2_MOUNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	XM_K8S_CGROUP=/$XM_K8S_NAME
}

# Every cgroup hierarchy's mount point (v1 controllers, named ones, cgroup2).
xm_k8s_hierarchies() {
	awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/mounts
}

# Pids of every process in the cluster's cgroups, in any hierarchy: the
# components, the containerd shims and every container process.
xm_k8s_cgroup_pids() {
	local h
	for h in $(xm_k8s_hierarchies); do
		[ -d "$h$XM_K8S_CGROUP" ] || continue
		find "$h$XM_K8S_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -un
}

# Mounts at or under DIR in the current mount namespace, deepest first.
xm_k8s_mounts_under() {
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

# Is PID a process of this cluster (in its cgroup)? Guards against pid reuse.
xm_k8s_ours() { grep -q ":$XM_K8S_CGROUP/" "/proc/$1/cgroup" 2>/dev/null; }

# xm_k8s_start NAME CMD...: start a component in the cluster's cgroup
# (system/, every hierarchy), network and mount namespaces; its pid in
# run/NAME.pid, its output appended to log/NAME.log.
xm_k8s_start() {
	local name=$1
	shift
	(
		for h in $(xm_k8s_hierarchies); do
			echo "$BASHPID" >"$h$XM_K8S_CGROUP/system/cgroup.procs"
		done
		exec nsenter --mount="$XM_K8S_MNTNS" --net="/run/netns/$XM_K8S_NETNS" -- "$@"
	) </dev/null >>"$XM_K8S_DIR/log/$name.log" 2>&1 &
	echo $! >"$XM_K8S_DIR/run/$name.pid"
}

# xm_k8s_stop NAME...: SIGTERM the components together, SIGKILL what still
# runs after 10 s. Prints "NAME PID" for each one it stopped.
xm_k8s_stop() {
	local name pid pids=""
	for name in "$@"; do
		[ -f "$XM_K8S_DIR/run/$name.pid" ] || continue
		pid=$(cat "$XM_K8S_DIR/run/$name.pid")
		rm -f "$XM_K8S_DIR/run/$name.pid"
		xm_k8s_ours "$pid" || continue
		kill "$pid" 2>/dev/null
		pids="$pids $pid"
		echo "$name $pid"
	done
	for pid in $pids; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		xm_k8s_ours "$pid" && kill -9 "$pid" 2>/dev/null
	done
	return 0
}
