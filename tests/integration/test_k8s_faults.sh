#!/bin/bash
# SPDX-License-Identifier: MIT
# Faults on the real test cluster, with the agent's Kubernetes source:
# - the agent SIGKILLed while the cluster changes, then restarted: the pinned
#   tables keep serving (no connection fails, no connect() finds no backend),
#   and the restarted agent resyncs to the change it missed;
# - the API server stopped (SIGSTOP) for 20 s: tables kept, traffic served,
#   and once it runs again the watch resumes (a scale reaches the tables);
# - a forced 410 Gone (API server restarted over a compacted etcd): the agent
#   lists again without a wipe.
# Client traffic runs in the client pod through its netns, mount namespace
# and cgroup, not through kubectl exec, which needs the API server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/k8s_lib.sh"

xm_k8s_setup
M=$XM_TOP/tests/k8s/manifests
AGENT_ARGS=(--kubeconfig "$XM_K8S_AGENT_KUBECONFIG" --node-name "$XM_K8S_NODE_NAME")

AGENT_LOG=$XM_K8S_DIR/agent.log
xm_agent_start "${AGENT_ARGS[@]}" 2> >(tee -a "$AGENT_LOG" >&2)
xm_kubectl apply -f "$M/echo.yaml" -f "$M/echo-svc.yaml" >&2
xm_k8s_wait_ready app=xm-echo 3
xm_k8s_wait_ready app=xm-client 1
CIP=$(xm_kubectl get service xm-echo -o 'jsonpath={.spec.clusterIP}')
xm_lb_wait "$CIP:81" 3

# The client container's main process: the pod's namespaces and cgroup.
uid=$(xm_kubectl get pod xm-client -o 'jsonpath={.metadata.uid}')
cg= cpid=
for f in $(find "$XM_CGROUP/kubepods" -path "*pod$uid/*" -name cgroup.procs); do
	for p in $(cat "$f"); do
		[ "$(cat "/proc/$p/comm")" = xm-whoami ] && cg=$(dirname "$f") cpid=$p
	done
done
[ -n "$cpid" ] || xm_fail "client container process not found under $XM_CGROUP/kubepods/*pod$uid"
in_client() {
	sh -c 'echo $$ >"$0/cgroup.procs" && p=$1 && shift && exec nsenter -t "$p" -n -m -- "$@"' \
		"$cg" "$cpid" "$@"
}
in_client /bin/xm-whoami ask "$CIP" 81 >/dev/null || xm_fail "client -> $CIP:81 from the pod's namespaces"

# backends_now: selectable backends of the who port, from the pins.
backends_now() {
	xm_ctl -j service show "$CIP:81" 2>/dev/null | xm_json 'j["backend_count"]' 2>/dev/null || echo none
}
# wait_backends N SECONDS: until the table has N backends (the agent resynced).
wait_backends() {
	for _ in $(seq $(($2 * 5))); do
		[ "$(backends_now)" = "$1" ] && return 0
		sleep 0.2
	done
	xm_fail "service $CIP:81 has $(backends_now) backends after $2 s, expected $1"
}

# 1. Agent SIGKILL; the Deployment scales to 4 while it is away; restart.
no_backend0=$(xm_stat lb_no_backend)
xm_bg in_client /bin/xm-whoami ask "$CIP" 81 -n 400 -i 50 -T >"$XM_K8S_DIR/probe-restart"
probe=$XM_LAST_PID
kill -9 "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
xm_log "agent SIGKILLed"
xm_assert "$(backends_now)" = 3 "backends in the pinned table with the agent down"
in_client /bin/xm-load traffic -t "$(xm_hostport "$CIP" 80)" -s 64K --answer 256K -c 2 -n 4 >&2 ||
	xm_fail "byte-exact traffic to $CIP:80 with the agent down"
xm_kubectl scale deployment xm-echo --replicas 4 >&2
xm_k8s_wait_ready app=xm-echo 4
xm_assert "$(backends_now)" = 3 "table unchanged while the agent is down"
xm_agent_start "${AGENT_ARGS[@]}" 2> >(tee -a "$AGENT_LOG" >&2)
wait_backends 4 30
xm_log "ok: restarted agent resynced to 4 backends"
wait "$probe" || true
xm_assert "$(grep -c ' error' "$XM_K8S_DIR/probe-restart" || true)" = 0 \
	"failed connections across the agent's SIGKILL and restart"
xm_assert "$(($(xm_stat lb_no_backend) - no_backend0))" = 0 "connects that found no backend (table never wiped)"

# 2. The API server stopped for 20 s.
api=$(cat "$XM_K8S_DIR/run/kube-apiserver.pid")
no_backend0=$(xm_stat lb_no_backend)
probe_log=$XM_K8S_DIR/probe-api
xm_bg in_client /bin/xm-whoami ask "$CIP" 81 -n 300 -i 50 -T >"$probe_log"
probe=$XM_LAST_PID
kill -STOP "$api"
xm_log "kube-apiserver (pid $api) stopped"
sleep 10
in_client /bin/xm-load traffic -t "$(xm_hostport "$CIP" 80)" -s 64K --answer 256K -c 2 -n 4 >&2 ||
	xm_fail "byte-exact traffic to $CIP:80 with the API server stopped"
sleep 10
xm_assert "$(backends_now)" = 4 "backends kept with the API server stopped 20 s"
kill -CONT "$api"
xm_log "kube-apiserver running again"
wait "$probe" || true
xm_assert "$(grep -c ' error' "$probe_log" || true)" = 0 "failed connections while the API server was stopped"
xm_assert "$(grep -c '^[0-9]* xm-echo' "$probe_log" || true)" -ge 250 "connections answered meanwhile"
xm_assert "$(($(xm_stat lb_no_backend) - no_backend0))" = 0 "connects that found no backend"
xm_kubectl scale deployment xm-echo --replicas 2 >&2
wait_backends 2 60
xm_log "ok: the watch resumed: scale to 2 reached the table"

# 3. A forced 410 Gone: the API server restarts over an etcd whose revision
# moved on and was compacted, so the agent's watches resume from a
# resourceVersion the server no longer has: it lists again, and the tables
# stay as they are until the new lists are complete.
etcd() { $XM_K8S_IN_NETNS curl -fsS -X POST "http://127.0.0.1:2379/v3/kv/$1" -d "$2"; }
no_backend0=$(xm_stat lb_no_backend)
relists0=$(grep -c 'listing again' "$AGENT_LOG" || true)
probe_log=$XM_K8S_DIR/probe-410
xm_bg in_client /bin/xm-whoami ask "$CIP" 81 -n 300 -i 50 -T >"$probe_log"
probe=$XM_LAST_PID
"$XM_TOP/scripts/k8s-ctl.sh" "$XM_ID" stop kube-apiserver >&2
etcd put '{"key": "L3htLXRlc3QvYnVtcA==", "value": "MQ=="}' >/dev/null # /xm-test/bump
rev=$(etcd range '{"key": "L3htLXRlc3QvYnVtcA=="}' | xm_json 'j["header"]["revision"]')
etcd compaction "{\"revision\": \"$rev\", \"physical\": true}" >/dev/null
xm_log "etcd at revision $rev, compacted"
"$XM_TOP/scripts/k8s-ctl.sh" "$XM_ID" start kube-apiserver >&2
for _ in $(seq 240); do xm_kubectl get --raw /readyz >/dev/null 2>&1 && break; sleep 0.5; done
for _ in $(seq 150); do
	[ "$(grep -c 'listing again' "$AGENT_LOG" || true)" -ge $((relists0 + 2)) ] && break
	sleep 0.2
done
xm_assert "$(grep -c 'listing again' "$AGENT_LOG" || true)" -ge $((relists0 + 2)) \
	"410 Gone for both watches: the agent lists again"
xm_assert "$(backends_now)" = 2 "backends kept across the relist"
wait "$probe" || true
xm_assert "$(grep -c ' error' "$probe_log" || true)" = 0 "failed connections across the 410 and relist"
xm_assert "$(($(xm_stat lb_no_backend) - no_backend0))" = 0 "connects that found no backend"
xm_kubectl scale deployment xm-echo --replicas 3 >&2
wait_backends 3 60
xm_log "ok: after the relist a scale reaches the table"

xm_k8s_down_checked
