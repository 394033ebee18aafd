#!/bin/bash
# SPDX-License-Identifier: MIT
# Stop or start one component of test cluster ID (scripts/k8s-up.sh), for
# fault tests:
#
#   scripts/k8s-ctl.sh ID stop NAME    SIGTERM, SIGKILL after 10 s; its command
#                                      line is kept in $XM_K8S_DIR/run/NAME.cmdline
#   scripts/k8s-ctl.sh ID start NAME   start it again with that command line, in
#                                      the cluster's cgroup and namespaces
# NAME: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# containerd, kubelet.
set -euo pipefail

. "$(dirname "$0")/k8s-lib.sh"
[ $# = 3 ] || { echo "usage: k8s-ctl.sh ID stop|start NAME" >&2; exit 2; }
xm_k8s_names "$1"
name=$3
run=$XM_K8S_DIR/run
case $2 in
stop)
	[ -f "$run/$name.pid" ] || { echo "k8s-ctl: $name is not running in $XM_K8S_NAME" >&2; exit 1; }
	tr '\0' '\n' <"/proc/$(cat "$run/$name.pid")/cmdline" >"$run/$name.cmdline"
	xm_k8s_stop "$name" >/dev/null
	echo "k8s-ctl: stopped $name"
	;;
start)
	[ -f "$run/$name.cmdline" ] || { echo "k8s-ctl: no stopped $name in $XM_K8S_NAME" >&2; exit 1; }
	mapfile -t argv <"$run/$name.cmdline"
	xm_k8s_start "$name" "${argv[@]}"
	echo "k8s-ctl: started $name (pid $(cat "$run/$name.pid"))"
	;;
*)
	echo "usage: k8s-ctl.sh ID stop|start NAME" >&2
	exit 2
	;;
esac
