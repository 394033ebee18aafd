# SPDX-License-Identifier: MIT
# Shared by the tests that run on the one-machine Kubernetes test cluster
# (tests/integration/test_k8s_*.sh), on top of lib.sh:
#
#   . tests/integration/lib.sh
#   . tests/integration/k8s_lib.sh
#   xm_k8s_setup                 # cluster up (built on first use), env sourced,
#                                # XM_CGROUP/XM_PIN = the cluster's, torn down on exit
#   xm_kubectl get pods
#   xm_k8s_down_checked          # tear down now and fail on any leftover
#
# The cluster tests never skip on their own: XM_QUICK=1 (make test-quick) is
# the only way to skip them, and they say so.

XM_K8S_ENV=

xm_kubectl() { "$XM_K8S_KUBECTL" "$@"; }

xm_k8s_setup() {
	[ "${XM_QUICK:-0}" = 1 ] &&
		xm_skip "XM_QUICK=1: the Kubernetes test cluster tests are skipped (make test runs them)"
	xm_setup
	# lib.sh made a cgroup and a run dir of its own; the cluster's replace them.
	rmdir "$XM_CGROUP" "$XM_RUN_DIR"
	rmdir "$(dirname "$XM_RUN_DIR")" 2>/dev/null || true
	# Known before k8s-up runs: a test stopped meanwhile (SIGTERM waits for
	# k8s-up to finish) still takes the cluster down in its cleanup.
	XM_K8S_ENV=${XM_K8S_DATA:-/var/tmp}/xm-k8s-$XM_ID/env
	"$XM_TOP/scripts/k8s-up.sh" "$XM_ID" >&2 || xm_fail "k8s-up.sh failed (output above)"
	# shellcheck disable=SC1090
	. "$XM_K8S_ENV"
	export KUBECONFIG
	XM_CGROUP=$XM_K8S_CGROUP
	XM_PIN=$XM_K8S_PIN
	# The agent runs as on the node: in its netns and mount namespace (where
	# the pods' netns are mounted), its control socket in the data dir, which
	# both namespaces see, and xmesh-cni's records where the plugin keeps them.
	XM_AGENT_WRAP=$XM_K8S_ON_NODE
	export XM_RUN_DIR=$XM_K8S_DIR/run/xmesh
	export XMESH_CNI_STATE_DIR=$XM_K8S_CNI_STATE_DIR
}

# The cluster goes after lib.sh's cleanup stopped the agent and removed its pins.
xm_cleanup_extra() {
	[ -n "$XM_K8S_ENV" ] && [ -f "$XM_K8S_ENV" ] && "$XM_TOP/scripts/k8s-down.sh" "$XM_ID" >&2
}

# xm_k8s_wait_ready SELECTOR N [NAMESPACE]: wait until N pods matching SELECTOR are Ready.
xm_k8s_wait_ready() {
	local n
	for _ in $(seq 240); do
		n=$(xm_kubectl -n "${3:-default}" get pods -l "$1" -o \
			'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
			grep -c True || true)
		[ "$n" = "$2" ] && return 0
		sleep 0.5
	done
	xm_kubectl get pods -A -o wide >&2
	xm_kubectl -n "${3:-default}" describe pods -l "$1" >&2
	xm_fail "pods '$1': $n Ready, expected $2"
}

# xm_k8s_pod_ips SELECTOR: the pod IPs, one a line, sorted.
xm_k8s_pod_ips() {
	xm_kubectl get pods -l "$1" -o 'jsonpath={range .items[*]}{.status.podIP}{"\n"}{end}' | sort
}

# xm_k8s_client CMD...: run CMD in the client pod (its cgroup and netns, so
# the agent's programs see its sockets, as they would for any pod).
xm_k8s_client() { xm_kubectl exec xm-client -c main -- "$@"; }

# xm_k8s_no_service_rules VIP: no kube-proxy in the cluster and no service rule
# (KUBE-SVC chains, the VIP, either service range) in nftables/iptables, in the
# cluster's netns or the host's: ClusterIP traffic is xmesh's alone.
xm_k8s_no_service_rules() {
	local p rules where
	for p in $(ip netns pids "$XM_K8S_NETNS") $(xm_k8s_cgroup_pids_all); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = kube-proxy ] &&
			xm_fail "a kube-proxy runs in the cluster (pid $p)"
	done
	for where in cluster host; do
		if [ $where = cluster ]; then
			rules=$($XM_K8S_IN_NETNS nft list ruleset 2>&1)
		else
			rules=$(nft list ruleset 2>&1)
		fi
		if echo "$rules" | grep -Eq "KUBE-SVC|KUBE-SERVICES|${1//./\\.}|10\.96\.|fd00:10:96:"; then
			xm_fail "service rules in the $where netns: $rules"
		fi
	done
	xm_log "ok: no kube-proxy, no service rule in nftables/iptables (cluster netns and host)"
}

# Pids in the cluster's cgroups, any hierarchy.
xm_k8s_cgroup_pids_all() {
	find /sys/fs/cgroup/*/"$XM_K8S_NAME" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u
}

# xm_k8s_down_checked: remove the cluster now and fail on anything left:
# processes, netns, cgroups in any hierarchy, mounts, data dir, pins.
xm_k8s_down_checked() {
	local h left=""
	if [ -n "${XM_AGENT_PID:-}" ] && kill -0 "$XM_AGENT_PID" 2>/dev/null; then
		kill "$XM_AGENT_PID"
		wait "$XM_AGENT_PID" 2>/dev/null || true
	fi
	# The pods first: uninstall drains, and waits for every redirected
	# connection the pods still hold to close. k8s-down.sh uninstalls the pins
	# once the pods are gone, so nothing is left to wait for.
	"$XM_TOP/scripts/k8s-down.sh" "$XM_ID" >&2 || xm_fail "k8s-down.sh reported leftovers"
	if [ -e "$XM_PIN" ]; then
		"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" >&2 ||
			xm_fail "xmesh-agent uninstall failed"
	fi
	ip netns list | grep -q "^$XM_K8S_NAME\b" && left="$left netns"
	for h in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/mounts); do
		[ -e "$h/$XM_K8S_NAME" ] && left="$left cgroup:$h/$XM_K8S_NAME"
	done
	grep -q "$XM_K8S_NAME" /proc/self/mounts && left="$left mounts"
	[ -e "$XM_K8S_DIR" ] && left="$left $XM_K8S_DIR"
	[ -e "$XM_K8S_PIN" ] && left="$left $XM_K8S_PIN"
	pgrep -f "$XM_K8S_DIR" >/dev/null && left="$left processes:$(pgrep -f "$XM_K8S_DIR" | tr '\n' ' ')"
	[ -z "$left" ] || xm_fail "left behind after k8s-down:$left"
	xm_log "ok: cluster $XM_K8S_NAME removed, nothing left behind"
	XM_K8S_ENV=
}
