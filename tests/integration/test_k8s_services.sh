#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent's Kubernetes source on the real test cluster, no kube-proxy:
# a ClusterIP Service over a 3-replica Deployment is programmed from the API
# server's Services and EndpointSlices and reached byte-exact from a client
# pod, redirected socket to socket, and over UDP; a headless Service is left
# alone; a bad algorithm annotation is shown by `xmeshctl service list` and
# harms nothing; `kubectl scale` to 5 and to 1 and a readiness probe that
# starts failing move new connections to the new set
# (the delay from the EndpointSlice change is measured and printed; the
# behaviour is asserted within a generous bound, not the time);
# internalTrafficPolicy Local leaves another node's endpoint out; a Service
# whose only endpoint is serving+terminating still serves; a RequireDualStack
# Service is reached on both ClusterIPs; a tokenFile token
# rotated under running watches, the old one revoked; an API server that
# answers garbage or hangs mid-stream (a fault proxy): logged, tables kept,
# recovered; a connection to it that dies silently is left for a new one;
# the node's zone label changed under the running agent moves locality.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/k8s_lib.sh"

xm_k8s_setup
M=$XM_TOP/tests/k8s/manifests
BOUND_S=10 # generous: the issue's target is 2 s; the machine is shared

xm_agent_start --kubeconfig "$XM_K8S_AGENT_KUBECONFIG" --node-name "$XM_K8S_NODE_NAME"
xm_kubectl apply -f "$M/echo.yaml" -f "$M/echo-svc.yaml" -f "$M/grace.yaml" >&2
xm_k8s_wait_ready app=xm-echo 3
xm_k8s_wait_ready app=xm-client 1
CIP=$(xm_kubectl get service xm-echo -o 'jsonpath={.spec.clusterIP}')
xm_log "service default/xm-echo: ClusterIP $CIP"
xm_lb_wait "$CIP:80" 3
xm_lb_wait "$CIP:81" 3
xm_ctl service list >&2
xm_ctl -j service list | grep -q '"source": *"cluster"' || xm_fail "service list shows no cluster source"

# 1. ClusterIP, no kube-proxy: byte-exact, over every backend, redirected.
before_msgs=$(xm_stat redirect_msgs)
xm_k8s_client /bin/xm-load traffic -t "$(xm_hostport "$CIP" 80)" -s 64K --answer 256K -c 4 -n 20 >&2 ||
	xm_fail "byte-exact traffic client -> ClusterIP $CIP:80 failed"
xm_log "ok: 20 connections client -> $CIP:80 (targetPort by name), byte-exact"
xm_assert "$(($(xm_stat redirect_msgs) - before_msgs))" -gt 0 "messages redirected socket to socket"
mapfile -t names < <(xm_kubectl get pods -l app=xm-echo -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')
answers=$(xm_k8s_client /bin/xm-whoami ask "$CIP" 81 -n 30)
for n in "${names[@]}"; do
	xm_assert "$(echo "$answers" | grep -cx "$n" || true)" -gt 0 "connections to $CIP:81 answered by $n"
done
xm_k8s_no_service_rules "$CIP"

# UDP (DNS-like) through the same Service: every datagram echoed byte for byte.
xm_k8s_client /bin/xm-load udp-send -t "$(xm_hostport "$CIP" 53)" -n 20 -s 10-1400 >&2 ||
	xm_fail "UDP client -> $CIP:53 (targetPort dns) failed"
xm_log "ok: 20 datagrams to $CIP:53/udp echoed byte for byte"

# Dual stack: a RequireDualStack Service has an IPv4 and an IPv6 ClusterIP and
# one EndpointSlice per family; both are programmed from their own family's
# slice and reached byte-exact from the client pod, redirected.
xm_kubectl apply -f "$M/echo-dual.yaml" >&2
mapfile -t dual < <(xm_kubectl get service xm-echo-dual -o 'jsonpath={range .spec.clusterIPs[*]}{@}{"\n"}{end}')
xm_assert "${#dual[@]}" -eq 2 "ClusterIPs of the RequireDualStack Service (${dual[*]})"
[[ ${dual[0]} != *:* && ${dual[1]} == *:* ]] || xm_fail "xm-echo-dual ClusterIPs are not IPv4 + IPv6: ${dual[*]}"
pod_ips6=$(xm_kubectl get pods -l app=xm-echo \
	-o 'jsonpath={range .items[*]}{.status.podIPs[1].ip}{"\n"}{end}' | sort)
for vip in "${dual[0]}" "[${dual[1]}]"; do
	xm_lb_wait "$vip:80" 3
	xm_lb_wait "$vip:81" 3
done
programmed6=$(xm_ctl -j service show "[${dual[1]}]:81" |
	xm_json '"\n".join(sorted(b["backend"].rsplit(":", 1)[0].strip("[]") for b in j["backends"]))')
xm_assert "$programmed6" = "$pod_ips6" "IPv6 backends of [${dual[1]}]:81 (the pods' IPv6 addresses, from the IPv6 slice)"
for ip in "${dual[@]}"; do
	before_msgs=$(xm_stat redirect_msgs)
	xm_k8s_client /bin/xm-load traffic -t "$(xm_hostport "$ip" 80)" -s 64K --answer 256K -c 4 -n 20 >&2 ||
		xm_fail "byte-exact traffic client -> ClusterIP $ip port 80 failed"
	xm_assert "$(($(xm_stat redirect_msgs) - before_msgs))" -gt 0 "messages to $ip redirected socket to socket"
	answers=$(xm_k8s_client /bin/xm-whoami ask "$ip" 81 -n 30)
	for n in "${names[@]}"; do
		xm_assert "$(echo "$answers" | grep -cx "$n" || true)" -gt 0 "connections to $ip port 81 answered by $n"
	done
done
xm_k8s_no_service_rules "${dual[1]}"
xm_log "ok: dual stack: ${dual[0]} and ${dual[1]} programmed from their own slices, byte-exact and redirected"

# A headless Service is left alone: its slice exists, nothing is programmed.
services_before=$(xm_ctl -j service list | xm_json 'len(j)')
xm_kubectl apply -f "$M/echo-headless.yaml" >&2
for _ in $(seq 50); do
	xm_kubectl get endpointslices -l kubernetes.io/service-name=xm-echo-headless \
		-o 'jsonpath={.items[*].endpoints[*].addresses[0]}' | grep -q . && break
	sleep 0.2
done
sleep 1 # one coalescing period and more
xm_assert "$(xm_ctl -j service list | xm_json 'len(j)')" -eq "$services_before" \
	"services programmed after a headless Service appeared"
xm_ctl service list | grep -q xm-echo-headless && xm_fail "headless service programmed: $(xm_ctl service list)"

# A bad annotation: logged, shown by service list, the service keeps working.
xm_kubectl annotate service xm-echo xmesh.io/algorithm=nope >&2
for _ in $(seq 50); do xm_ctl service list | grep -q 'unknown algorithm "nope"' && break; sleep 0.2; done
xm_ctl service list | grep -q 'unknown algorithm "nope"' ||
	xm_fail "service list does not show the bad annotation: $(xm_ctl service list)"
xm_k8s_client /bin/xm-whoami ask "$CIP" 81 -n 10 >/dev/null || xm_fail "service broken by a bad annotation"
xm_kubectl annotate --overwrite service xm-echo xmesh.io/algorithm=round-robin >&2
for _ in $(seq 50); do xm_ctl service list | grep -q 'unknown algorithm' || break; sleep 0.2; done
xm_ctl service list | grep -q 'unknown algorithm' && xm_fail "note stays after a valid annotation"
xm_log "ok: bad annotation shown by service list, service kept serving, cleared by a good one"

# watch_slices FILE: stamp every EndpointSlice update of the service as it arrives.
watch_slices() {
	xm_bg bash -c '"$0" get endpointslices -l kubernetes.io/service-name=xm-echo -w -o json |
		python3 "$1" stamp' "$XM_K8S_KUBECTL" "$XM_TOP/tests/integration/k8s_timing.py" >"$1"
	XM_SLICE_WATCH=$XM_LAST_PID
}
# probe FILE N: N connections to the who port, 50 ms apart, answers stamped.
probe() {
	xm_bg xm_k8s_client /bin/xm-whoami ask "$CIP" 81 -n "$2" -i 50 -T >"$1"
	XM_PROBE=$XM_LAST_PID
}
stop_watch() { xm_kill_tree "$XM_SLICE_WATCH"; wait "$XM_SLICE_WATCH" 2>/dev/null || true; }
pods() { xm_kubectl get pods -l app=xm-echo --field-selector=status.phase=Running \
	-o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' | sort; }
T=$XM_K8S_DIR/timing
mkdir -p "$T"

# 2. Scale to 5: the two new pods get new connections.
mapfile -t old < <(pods)
watch_slices "$T/slices-up"
probe "$T/probe-up" 300
sleep 1
xm_kubectl scale deployment xm-echo --replicas 5 >&2
xm_k8s_wait_ready app=xm-echo 5
xm_lb_wait "$CIP:81" 5
wait "$XM_PROBE" || true
stop_watch
mapfile -t new < <(comm -13 <(printf '%s\n' "${old[@]}") <(pods))
xm_assert "${#new[@]}" -eq 2 "new pods after scale to 5"
python3 "$XM_TOP/tests/integration/k8s_timing.py" "$T/slices-up" "$T/probe-up" added "${new[@]}" |
	tee "$T/up.out" >&2 || xm_fail "scale to 5: new pods not reached (slices: $(cat "$T/slices-up"))"
delay=$(sed -n 's/.*delay_ms=\([0-9-]*\).*/\1/p' "$T/up.out")
xm_assert "$delay" -lt $((BOUND_S * 1000)) "scale 5: first connection to a new pod after its slice update (ms)"
echo "k8s timing: scale_up_delay_ms=$delay"

# 3. Scale to 1: the four removed pods stop getting new connections.
watch_slices "$T/slices-down"
probe "$T/probe-down" 300
sleep 1
xm_kubectl scale deployment xm-echo --replicas 1 >&2
xm_lb_wait "$CIP:81" 1
wait "$XM_PROBE" || true
stop_watch
# The survivor is the one pod not being deleted; the rest may still terminate.
survivor=$(xm_kubectl get pods -l app=xm-echo \
	-o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}' |
	awk 'NF == 1 { print $1 }')
mapfile -t removed < <(printf '%s\n' "${old[@]}" "${new[@]}" | grep -vx "$survivor")
xm_assert "${#removed[@]}" -eq 4 "pods removed by scale to 1"
python3 "$XM_TOP/tests/integration/k8s_timing.py" "$T/slices-down" "$T/probe-down" removed "${removed[@]}" |
	tee "$T/down.out" >&2 || xm_fail "scale to 1: the slice never dropped the removed pods"
delay=$(sed -n 's/.*delay_ms=\([0-9-]*\).*/\1/p' "$T/down.out")
xm_assert "$delay" -lt $((BOUND_S * 1000)) "scale 1: last connection to a removed pod after its slice update (ms)"
last=$(tail -n 20 "$T/probe-down" | awk '{print $2}' | sort -u | tr '\n' ' ')
xm_assert "$(tail -n 20 "$T/probe-down" | awk '{print $2}' | sort -u | wc -l)" -eq 1 \
	"the last 20 connections all reach the one pod left ($last)"
tail -n 20 "$T/probe-down" | grep -q ' error' && xm_fail "failed connections at the end of scale-down: $(tail -n 20 "$T/probe-down")"
echo "k8s timing: scale_down_delay_ms=$delay"

# 4. Readiness: with 3 pods, one turns unready; it stops getting new connections.
xm_kubectl scale deployment xm-echo --replicas 3 >&2
xm_k8s_wait_ready app=xm-echo 3
xm_lb_wait "$CIP:81" 3
victim=$(pods | head -n 1)
watch_slices "$T/slices-unready"
probe "$T/probe-unready" 240
sleep 1
xm_kubectl exec "$victim" -c who -- /bin/xm-whoami unready
xm_lb_wait "$CIP:81" 2
wait "$XM_PROBE" || true
stop_watch
python3 "$XM_TOP/tests/integration/k8s_timing.py" "$T/slices-unready" "$T/probe-unready" removed "$victim" |
	tee "$T/unready.out" >&2 || xm_fail "readiness: the slice never marked $victim unready"
delay=$(sed -n 's/.*delay_ms=\([0-9-]*\).*/\1/p' "$T/unready.out")
xm_assert "$delay" -lt $((BOUND_S * 1000)) "unready: last connection to $victim after its slice update (ms)"
tail -n 40 "$T/probe-unready" | grep -qx "[0-9]* $victim" &&
	xm_fail "the unready pod $victim still gets new connections"
echo "k8s timing: unready_delay_ms=$delay"
xm_kubectl exec "$victim" -c who -- /bin/xm-whoami ready
xm_lb_wait "$CIP:81" 3
xm_log "ok: $victim ready again, back in the table"

# 5. internalTrafficPolicy Local: only this node's endpoints. The Service's
# own pods are all here; a hand-made slice adds an endpoint on another node,
# which Local leaves out and Cluster uses (so the slice is read at all).
xm_kubectl apply -f "$M/echo-local.yaml" >&2
LIP=$(xm_kubectl get service xm-echo-local -o 'jsonpath={.spec.clusterIP}')
xm_lb_wait "$LIP:81" 3
sleep 1 # one coalescing period and more: the foreign slice must not add a backend
xm_lb_wait "$LIP:81" 3
xm_ctl -j service show "$LIP:81" | grep -q 192.0.2.10 &&
	xm_fail "internalTrafficPolicy Local: the endpoint of xm-other-node is programmed: $(xm_ctl -j service show "$LIP:81")"
answers=$(xm_k8s_client /bin/xm-whoami ask "$LIP" 81 -n 10)
xm_assert "$(echo "$answers" | grep -c '^xm-echo-' || true)" -eq 10 "connections to $LIP:81 answered by this node's pods"
xm_kubectl patch service xm-echo-local -p '{"spec":{"internalTrafficPolicy":"Cluster"}}' >&2
xm_lb_wait "$LIP:81" 4
xm_kubectl patch service xm-echo-local -p '{"spec":{"internalTrafficPolicy":"Local"}}' >&2
xm_lb_wait "$LIP:81" 3
xm_log "ok: internalTrafficPolicy Local: 3 endpoints of this node, not the one of xm-other-node (Cluster: 4)"

# 6. Graceful termination: the only pod of xm-grace is deleted but keeps
# serving through its preStop sleep; its endpoint is serving+terminating, not
# ready, and new connections still reach it.
GIP=$(xm_kubectl get service xm-grace -o 'jsonpath={.spec.clusterIP}')
xm_k8s_wait_ready app=xm-grace 1
xm_lb_wait "$GIP:81" 1
gpod=$(xm_kubectl get pods -l app=xm-grace -o 'jsonpath={.items[0].metadata.name}')
xm_kubectl scale deployment xm-grace --replicas 0 >&2
cond='{range .items[*].endpoints[*]}{.conditions.ready} {.conditions.serving} {.conditions.terminating}{"\n"}{end}'
for _ in $(seq 100); do
	xm_kubectl get endpointslices -l kubernetes.io/service-name=xm-grace -o "jsonpath=$cond" |
		grep -qx 'false true true' && break
	sleep 0.2
done
xm_kubectl get endpointslices -l kubernetes.io/service-name=xm-grace -o "jsonpath=$cond" |
	grep -qx 'false true true' || xm_fail "the slice of xm-grace never showed a serving, terminating endpoint"
sleep 1 # one coalescing period and more
xm_lb_wait "$GIP:81" 1
answers=$(xm_k8s_client /bin/xm-whoami ask "$GIP" 81 -n 10) ||
	xm_fail "new connections to $GIP:81 failed with only a terminating endpoint"
xm_assert "$(echo "$answers" | grep -cx "$gpod" || true)" -eq 10 "connections answered by the terminating $gpod"
xm_kubectl delete pod "$gpod" --grace-period=0 --force >&2 2>/dev/null || true
xm_log "ok: only a serving+terminating endpoint left: new connections still reach it"

# 7. A service-account token rotating under running watches: the agent,
# restarted with a kubeconfig whose tokenFile holds a legacy token of the
# ServiceAccount xm-rot, renews its watches every 2 s; the file gets a new
# token and the old one is revoked (its Secret deleted: the API server then
# refuses it); a scale made afterwards must still reach the table, which
# only a re-read of the file makes possible.
# kubeconfig_edit OUT PYTHON ARGS...: the agent's kubeconfig (c), changed by
# PYTHON (ARGS from sys.argv[2]), into OUT.
kubeconfig_edit() {
	python3 -c "import json, sys; c = json.load(open(sys.argv[1])); $2; print(json.dumps(c))" \
		"$XM_K8S_AGENT_KUBECONFIG" "${@:3}" >"$1"
}
# restart_agent KUBECONFIG LOG [WATCH_TIMEOUT]: the agent again, on KUBECONFIG,
# its watches renewed every WATCH_TIMEOUT s (2), its log also in LOG; returns
# once it synced.
restart_agent() {
	kill "$XM_AGENT_PID"
	wait "$XM_AGENT_PID" 2>/dev/null || true
	xm_agent_start --kubeconfig "$1" --node-name "$XM_K8S_NODE_NAME" \
		--k8s-watch-timeout "${3:-2}" 2> >(tee -a "$2" >&2)
	for _ in $(seq 100); do grep -q 'initial sync done' "$2" && break; sleep 0.2; done
	grep -q 'initial sync done' "$2" || xm_fail "the agent on $1 never synced"
}
xm_kubectl create serviceaccount xm-rot >&2
xm_kubectl create clusterrole xm-rot --verb=list,watch \
	--resource=services,endpointslices.discovery.k8s.io >&2
xm_kubectl create clusterrolebinding xm-rot --clusterrole xm-rot --serviceaccount default:xm-rot >&2
xm_kubectl create clusterrole xm-rot-nodes --verb=get --resource=nodes >&2
xm_kubectl create clusterrolebinding xm-rot-nodes --clusterrole xm-rot-nodes --serviceaccount default:xm-rot >&2
# sa_token SECRET FILE: a token Secret of xm-rot; its token, once filled, into FILE.
sa_token() {
	printf '%s\n' "apiVersion: v1" "kind: Secret" "type: kubernetes.io/service-account-token" \
		"metadata: { name: $1, annotations: { kubernetes.io/service-account.name: xm-rot } }" |
		xm_kubectl apply -f - >&2
	for _ in $(seq 100); do
		t=$(xm_kubectl get secret "$1" -o 'jsonpath={.data.token}')
		[ -n "$t" ] && { echo "$t" | base64 -d >"$2.tmp" && mv "$2.tmp" "$2"; return 0; }
		sleep 0.2
	done
	xm_fail "the token controller never filled the Secret $1"
}
TOKEN=$XM_K8S_DIR/xm-rot.token
sa_token xm-rot-a "$TOKEN"
old_token=$(cat "$TOKEN")
kubeconfig_edit "$XM_K8S_DIR/rot.kubeconfig" 'c["users"][0]["user"] = {"tokenFile": sys.argv[2]}' "$TOKEN"
API=$(xm_json 'j["clusters"][0]["cluster"]["server"]' <"$XM_K8S_DIR/rot.kubeconfig")
http_code() { # TOKEN: the API server's answer to a list with it
	$XM_K8S_IN_NETNS curl -sk -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer $1" "$API/api/v1/services?limit=1"
}
xm_assert "$(http_code "$old_token")" = 200 "the first token's list of services (HTTP)"
ROT_LOG=$XM_K8S_DIR/agent-rot.log
restart_agent "$XM_K8S_DIR/rot.kubeconfig" "$ROT_LOG"
xm_lb_wait "$CIP:81" 3
sa_token xm-rot-b "$TOKEN"
xm_kubectl delete secret xm-rot-a >&2
for _ in $(seq 150); do [ "$(http_code "$old_token")" = 401 ] && break; sleep 0.2; done
xm_assert "$(http_code "$old_token")" = 401 "the old token's list of services after its Secret is gone (HTTP)"
sleep 3 # the watches renew (2 s) with whatever token the agent holds
xm_kubectl scale deployment xm-echo --replicas 2 >&2
xm_lb_wait "$CIP:81" 2
grep -q "token $TOKEN changed" "$ROT_LOG" || xm_fail "the agent did not log the token change"
xm_log "ok: token rotated under running watches, old one refused (401): a scale still reached the table"

# backends SERVICE: its selectable backends now, or "none".
backends() { xm_ctl -j service show "$1" 2>/dev/null | xm_json 'j["backend_count"]' 2>/dev/null || echo none; }

# 8. A misbehaving API server, mid-stream: the agent (cluster kubeconfig,
# watches renewed every 2 s) talks to it through k8s_fault_proxy.py, told to
# answer garbage, then to hang for good: each is logged, the tables stay,
# client traffic is served, and once the proxy relays again a scale reaches
# the table (a watch that hangs is ended by the agent's timeout; a stalled
# connection is never resumed by the proxy, it is closed once it relays again).
MODE=$XM_K8S_DIR/proxy.mode
echo pass >"$MODE"
PROXY_ADDR=${API#https://}
PROXY_ADDR=${PROXY_ADDR%:*}:6444
xm_bg $XM_K8S_IN_NETNS python3 "$XM_TOP/tests/integration/k8s_fault_proxy.py" \
	"$PROXY_ADDR" "${API#https://}" "$MODE"
kubeconfig_edit "$XM_K8S_DIR/proxy.kubeconfig" 'c["clusters"][0]["cluster"]["server"] = sys.argv[2]' \
	"https://$PROXY_ADDR"
PROXY_LOG=$XM_K8S_DIR/agent-proxy.log
restart_agent "$XM_K8S_DIR/proxy.kubeconfig" "$PROXY_LOG"
xm_lb_wait "$CIP:81" 2
no_backend0=$(xm_stat lb_no_backend)
# logged LINE_PATTERN SECONDS: wait until the agent logged a line matching it.
logged() {
	for _ in $(seq $(($2 * 5))); do grep -Eq "$1" "$PROXY_LOG" && return 0; sleep 0.2; done
	xm_fail "the agent logged no line matching '$1' in $2 s"
}
echo garbage >"$MODE"
logged 'warn: k8s: (services|endpointslices) watch: .*(SSL|TLS|receiv)' 15
grep -E 'warn: k8s: .*watch' "$PROXY_LOG" | tail -n 2 | sed 's/^/agent said: /' >&2
xm_lb_wait "$CIP:81" 2
xm_k8s_client /bin/xm-whoami ask "$CIP" 81 -n 5 >/dev/null || xm_fail "traffic while the API server answers garbage"
echo pass >"$MODE"
xm_kubectl scale deployment xm-echo --replicas 3 >&2
xm_k8s_wait_ready app=xm-echo 3
xm_lb_wait "$CIP:81" 3
xm_log "ok: recovered from garbage: scale to 3 reached the table"
sleep 1 # the watches are established again: the stall catches them mid-stream
echo stall >"$MODE"
# curl's whole-request timeout (timeoutSeconds + 5 s) ends a watch stalled
# after its answer began; a stalled handshake would say "Connection timed out".
logged 'watch: Timeout was reached \(Operation timed out.*the watch hung' 30
grep 'the watch hung' "$PROXY_LOG" | head -n 2 | sed 's/^/agent said: /' >&2
xm_lb_wait "$CIP:81" 3
answers=$(xm_k8s_client /bin/xm-whoami ask "$CIP" 81 -n 5 2>&1) ||
	xm_fail "traffic while the API server hangs: $answers; $(xm_ctl -j service show "$CIP:81")"
echo pass >"$MODE"
xm_kubectl scale deployment xm-echo --replicas 2 >&2
xm_lb_wait "$CIP:81" 2
xm_assert "$(($(xm_stat lb_no_backend) - no_backend0))" = 0 "connects that found no backend (tables kept)"
xm_log "ok: API server answering garbage, then hanging mid-stream: logged, tables kept, recovered (scales to 3 and 2 reached the table)"

# 9. The connection dies silently (no FIN, no RST) and stays dead: the proxy
# stops relaying on every open connection for good and relays new ones. curl
# ends only the HTTP/2 stream that timed out and keeps the connection; a
# retry on it would hang again, forever: the agent must open a new one.
sleep 1 # the watches are established again on a connection that relays
conns0=$(cat "$MODE.conns")
hung0=$(grep -c 'the watch hung' "$PROXY_LOG" || true)
echo drop >"$MODE"
for _ in $(seq 150); do
	[ "$(grep -c 'the watch hung' "$PROXY_LOG" || true)" -gt "$hung0" ] && break
	sleep 0.2
done
xm_assert "$(grep -c 'the watch hung' "$PROXY_LOG" || true)" -gt "$hung0" "hung watches logged after the connection died"
xm_kubectl scale deployment xm-echo --replicas 3 >&2
for _ in $(seq 200); do [ "$(backends "$CIP:81")" = 3 ] && break; sleep 0.2; done
xm_assert "$(backends "$CIP:81")" = 3 \
	"backends of $CIP:81 40 s after a scale to 3, the old connection dead (a retry on it hangs)"
xm_assert "$(cat "$MODE.conns")" -gt "$conns0" "connections to the API server (a new one after the old died)"
xm_assert "$(($(xm_stat lb_no_backend) - no_backend0))" = 0 "connects that found no backend"
xm_log "ok: a silently dead connection left for a new one: a scale reached the table"

# 10. The node's zone label changes under a running agent: locality follows.
# xm-echo-zone prefers close endpoints; its slice has one in xm-zone-a and one
# in xm-zone-b. The agent reads its Node again (every watch timeout here).
ZONE=topology.kubernetes.io/zone
xm_kubectl label node "$XM_K8S_NODE_NAME" "$ZONE=xm-zone-a" >&2
xm_kubectl apply -f "$M/echo-zone.yaml" >&2
ZIP=$(xm_kubectl get service xm-echo-zone -o 'jsonpath={.spec.clusterIP}')
weights() {
	xm_ctl -j service show "$ZIP:81" 2>/dev/null |
		xm_json '" ".join("%s=%g" % (b["backend"], b["weight"]) for b in sorted(j["backends"], key=lambda b: b["backend"]))' 2>/dev/null
}
# wait_weights EXPECTED: until the service's weights are EXPECTED (30 s at most); prints the ms it took.
wait_weights() {
	local t0=$(date +%s%N)
	for _ in $(seq 150); do [ "$(weights)" = "$1" ] && break; sleep 0.2; done
	xm_assert "$(weights)" = "$1" "weights of $ZIP:81 with the node in $(xm_kubectl get node "$XM_K8S_NODE_NAME" -o "jsonpath={.metadata.labels.topology\.kubernetes\.io/zone}")"
	echo $((($(date +%s%N) - t0) / 1000000))
}
wait_weights "192.0.2.21:8081=1 192.0.2.22:8081=0.01" >/dev/null
xm_kubectl label node "$XM_K8S_NODE_NAME" --overwrite "$ZONE=xm-zone-b" >&2
ms=$(wait_weights "192.0.2.21:8081=0.01 192.0.2.22:8081=1")
grep -q 'zone xm-zone-b: the zone changed' "$PROXY_LOG" || xm_fail "the agent did not log the zone change"
echo "k8s timing: zone_change_ms=$ms (node read again every 2 s here)"
xm_log "ok: the node's zone label changed under the running agent: locality followed in $ms ms"

# 11. The path to the API server goes silent for good (a blackholed path, a
# node that vanished: no FIN, no RST), watches renewed only every 300 s: the
# agent must notice within seconds, not at the watch timeout, and go on with
# a new connection; a live idle connection must be left alone meanwhile.
# Every packet of the agent's connections open now (4-tuples through the
# proxy) is dropped by an nft table in the cluster's netns; new ones pass.
DEAD_LOG=$XM_K8S_DIR/agent-dead.log
echo pass >"$MODE"
restart_agent "$XM_K8S_DIR/proxy.kubeconfig" "$DEAD_LOG" 300
xm_lb_wait "$CIP:81" 3
PROXY_PORT=${PROXY_ADDR##*:}
agent_ports() {
	$XM_K8S_IN_NETNS ss -Htn state established "( dport = :$PROXY_PORT )" |
		awk '{ n = split($3, a, ":"); print a[n] }' | sort -u
}
conns0=$(cat "$MODE.conns")
sleep 20 # idle: keepalive probes (after 5 s) are answered, nothing is ended
xm_assert "$(grep -c 'connection to the API server is dead' "$DEAD_LOG" || true)" = 0 \
	"dead connections reported on a live idle one in 20 s"
xm_assert "$(cat "$MODE.conns")" = "$conns0" "connections to the API server opened while idle"
ports=$(agent_ports)
[ -n "$ports" ] || xm_fail "no connection of the agent to the proxy on :$PROXY_PORT"
xm_log "blackholing the agent's connections from ports $(echo $ports)"
nft_rules="add table inet xm-blackhole
add chain inet xm-blackhole out { type filter hook output priority 0; policy accept; }"
for p in $ports; do
	nft_rules+="
add rule inet xm-blackhole out tcp sport $p tcp dport $PROXY_PORT drop
add rule inet xm-blackhole out tcp sport $PROXY_PORT tcp dport $p drop"
done
t0=$(date +%s%N)
$XM_K8S_IN_NETNS nft -f - <<<"$nft_rules"
xm_kubectl scale deployment xm-echo --replicas 2 >&2
while n=$(backends "$CIP:81") && [ "$n" != 2 ] && [ $(($(date +%s%N) - t0)) -lt 30000000000 ]; do
	sleep 0.2
done
ms=$((($(date +%s%N) - t0) / 1000000))
# judged before the path is back: the old connection would then recover by itself
$XM_K8S_IN_NETNS nft delete table inet xm-blackhole
{ grep 'connection to the API server is dead' "$DEAD_LOG" || true; } | head -n 2 | sed 's/^/agent said: /' >&2
xm_assert "$n" = 2 "backends of $CIP:81 $ms ms after the path died and a scale to 2 (watch timeout 300 s)"
xm_assert "$(grep -c 'connection to the API server is dead' "$DEAD_LOG" || true)" -gt 0 \
	"the dead connection logged"
xm_assert "$(cat "$MODE.conns")" -gt "$conns0" "connections to the API server (a new one after the old died)"
xm_assert "$(($(xm_stat lb_no_backend) - no_backend0))" = 0 "connects that found no backend"
echo "k8s timing: dead_connection_recovered_ms=$ms (path blackholed -> scale in the maps; watch timeout 300 s)"
xm_log "ok: a silently dead path noticed and left for a new connection in $ms ms"

xm_k8s_down_checked
