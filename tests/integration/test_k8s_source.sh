#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent's Kubernetes source against a fake API server (k8s_fake_api.py):
# nothing applied before both lists are complete (readiness too); services
# and backends follow the API (real connect() to the VIP); a clash with the
# config file is logged and the file wins; a refused annotation is shown with
# its reason; an unknown trafficDistribution and an endpoint without an
# address are noted (logged once) while the rest serves; 410 (as an ERROR event, as an HTTP status, after a compaction)
# relists without ever emptying the tables; 429 with Retry-After, 500s, an
# API server that is down, sends garbage, hangs or disconnects mid-stream:
# tables kept, a clear log line, recovery; a rotated token file is used by
# the next request; a burst of 1,000 slice updates is a handful of applies.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
for i in 1 2 3 4; do
	xm_pod n1 b$i 10.77.0.$((i + 2))/24
	xm_bg ip netns exec "$XM_PREFIX-b$i" "$XM_TOOLS/xm-serve" label --listen 10.77.0.$((i + 2)):8080 --label b$i
done

FAKE=$XM_TOP/tests/integration/k8s_fake_api.py
TOKEN=$XM_RUN_DIR/token
echo "tok-1" >"$TOKEN"
fake_start() { # [ARGS...]: on $PORT when set, else any port
	rm -f "$XM_RUN_DIR/port"
	xm_bg python3 "$FAKE" --listen "127.0.0.1:${PORT:-0}" --token "$(cat "$TOKEN")" \
		--node xm-node-a --zone z1 --port-file "$XM_RUN_DIR/port" "$@"
	FAKE_PID=$XM_LAST_PID
	for _ in $(seq 50); do [ -s "$XM_RUN_DIR/port" ] && break; sleep 0.1; done
	PORT=$(cat "$XM_RUN_DIR/port")
}
fake() { # CMD [JSON]
	curl -sf -X POST --data "${2:-{\}}" "http://127.0.0.1:$PORT/_ctl/$1"
}
fake_start

# Objects as the API returns them.
svc() { # NAME CLUSTER_IP [ANNOTATIONS_JSON]
	printf '{"kind":"services","object":{"metadata":{"namespace":"default","name":"%s","annotations":%s},"spec":{"type":"ClusterIP","clusterIP":"%s","clusterIPs":["%s"],"ports":[{"name":"http","port":80,"targetPort":"web","protocol":"TCP"}]}}}' \
		"$1" "${3:-{\}}" "$2" "$2"
}
slice() { # NAME SERVICE ENDPOINTS... (ADDR or ADDR:notready)
	local name=$1 service=$2 eps="" e sep=""
	shift 2
	for e in "$@"; do
		local ready=true
		[ "${e#*:}" = notready ] && ready=false
		eps="$eps$sep{\"addresses\":[\"${e%%:*}\"],\"conditions\":{\"ready\":$ready},\"nodeName\":\"xm-node-a\"}"
		sep=,
	done
	printf '{"kind":"endpointslices","object":{"metadata":{"namespace":"default","name":"%s","labels":{"kubernetes.io/service-name":"%s"}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[%s]}}' \
		"$name" "$service" "$eps"
}
fake apply "$(svc web 10.96.0.10)" >/dev/null
fake apply "$(slice web-1 web 10.77.0.3 10.77.0.4)" >/dev/null
fake apply "$(slice web-2 web 10.77.0.5 10.77.0.4)" >/dev/null
fake apply "$(svc api 10.96.0.11 '{"xmesh.io/algorithm":"nope"}')" >/dev/null
fake apply "$(slice api-1 api 10.77.0.6)" >/dev/null
fake apply "$(svc clash 10.96.0.12)" >/dev/null
fake apply "$(slice clash-1 clash 10.77.0.6)" >/dev/null
# a Service that gives no entry (SCTP only): only the log says why
fake apply '{"kind":"services","object":{"metadata":{"namespace":"default","name":"sctp"},"spec":{"type":"ClusterIP","clusterIP":"10.96.0.13","clusterIPs":["10.96.0.13"],"ports":[{"port":9,"protocol":"SCTP"}]}}}' >/dev/null
# a locality the agent does not know, an endpoint without an address: used as far as
# they can be, and the Service's note (logged once) says what was not
fake apply '{"kind":"services","object":{"metadata":{"namespace":"default","name":"rack"},"spec":{"type":"ClusterIP","clusterIP":"10.96.0.14","clusterIPs":["10.96.0.14"],"trafficDistribution":"PreferSameRack","ports":[{"name":"http","port":80,"protocol":"TCP"}]}}}' >/dev/null
fake apply '{"kind":"endpointslices","object":{"metadata":{"namespace":"default","name":"rack-1","labels":{"kubernetes.io/service-name":"rack"}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[{"addresses":["10.77.0.3"]},{"conditions":{"ready":true}}]}}' >/dev/null
# the file defines 10.96.0.12:80 too, with backend b1: the file wins
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<'EOC'
{"services": [{"name": "static", "vip": "10.96.0.12", "port": 80,
  "backends": [{"address": "10.77.0.3", "port": 8080}]}]}
EOC
cat >"$XM_RUN_DIR/kubeconfig.json" <<EOK
{"apiVersion": "v1", "kind": "Config", "current-context": "t",
 "clusters": [{"name": "fake", "cluster": {"server": "http://127.0.0.1:$PORT"}}],
 "users": [{"name": "agent", "user": {"tokenFile": "token"}}],
 "contexts": [{"name": "t", "context": {"cluster": "fake", "user": "agent"}}]}
EOK

# --- nothing before both lists: hold the EndpointSlices list ---
fake fault '{"name":"hold_lists","count":1}' >/dev/null
AGENT_LOG=${XM_AGENT_LOG:-$XM_RUN_DIR/agent.log}
MPORT=$((20000 + RANDOM % 20000))
xm_agent_start --config "$CFG" --kubeconfig "$XM_RUN_DIR/kubeconfig.json" --node-name xm-node-a \
	--k8s-watch-timeout 3 --metrics "127.0.0.1:$MPORT" 2>>"$AGENT_LOG"
ready() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz"; }
for _ in $(seq 30); do grep -q "services listed" "$AGENT_LOG" && break; sleep 0.1; done
grep -q "services listed" "$AGENT_LOG" || xm_fail "the services list did not arrive"
sleep 1
n=$(xm_ctl -j service list | xm_json 'len([s for s in j if s.get("source") == "cluster"])')
xm_assert "$n" -eq 0 "no cluster service while the EndpointSlices list is incomplete"
xm_assert "$(ready)" = 503 "not ready before the initial sync"
xm_assert "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/healthz")" = 200 \
	"alive meanwhile"
fake clear >/dev/null
xm_lb_wait 10.96.0.10:80 3
xm_assert "$(ready)" = 200 "ready after the initial sync"

# --- what the API says, with sources ---
list() { xm_ctl -j service list; }
xm_assert "$(list | xm_json '[s for s in j if s["service"] == "10.96.0.10:80/tcp"][0]["k8s"]')" = \
	default/web "service list names the Kubernetes Service"
xm_assert "$(list | xm_json '[s for s in j if s["service"] == "10.96.0.10:80/tcp"][0]["source"]')" = \
	cluster "source: cluster"
xm_assert "$(list | xm_json '[s for s in j if s["service"] == "10.96.0.12:80/tcp"][0]["source"]')" = \
	file "clash: the file's service is the one applied"
xm_assert "$(xm_ctl -j service show 10.96.0.12:80 | xm_json 'len(j["backends"])')" -eq 1 \
	"clash: the file's backends"
grep -q "10.96.0.12:80/tcp is both in the config file and in the cluster" "$AGENT_LOG" ||
	xm_fail "the clash was not logged"
note=$(list | xm_json '[s for s in j if s["service"] == "10.96.0.11:80/tcp"][0]["note"]')
case $note in *'unknown algorithm "nope"'*) xm_log "ok: refused annotation shown: $note" ;;
*) xm_fail "refused annotation not shown (note: '$note')" ;; esac
xm_lb_wait 10.96.0.11:80 1
xm_assert "$(grep -c 'default/api: .*unknown algorithm' "$AGENT_LOG")" -eq 1 \
	"the refused annotation is logged once"
xm_assert "$(grep -c 'k8s: service default/sctp: port 9/SCTP skipped: only TCP and UDP' "$AGENT_LOG")" \
	-eq 1 "a Service that gives no entry is logged once, with why"
xm_assert "$(list | xm_json 'len([s for s in j if s["service"].startswith("10.96.0.13:")])')" -eq 0 \
	"the SCTP-only Service programs nothing"
xm_lb_wait 10.96.0.14:80 1
xm_assert "$(grep -c 'k8s: service default/rack: trafficDistribution "PreferSameRack" not known: ignored.*; endpoints skipped: 1 without an address' "$AGENT_LOG")" \
	-eq 1 "an unknown trafficDistribution and an endpoint without an address: noted, logged once"
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t 10.96.0.10:80 -P label --new -n 300)
xm_assert "$(echo "$out" | xm_json 'len(j["backend"])')" -eq 3 "connects to the VIP reach b1 b2 b3"
xm_assert "$(echo "$out" | xm_json 'sum(j["backend"].values())')" -eq 300 \
	"every connect reached a backend"

# --- updates: a backend removed, one not ready, one added ---
fake apply "$(slice web-2 web 10.77.0.5:notready)" >/dev/null
xm_lb_wait 10.96.0.10:80 2
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t 10.96.0.10:80 -P label --new -n 200)
xm_assert "$(echo "$out" | xm_json 'j["backend"].get("b3",0)')" -eq 0 \
	"the endpoint that is not ready gets no connection"
fake apply "$(slice web-2 web 10.77.0.5 10.77.0.6)" >/dev/null
xm_lb_wait 10.96.0.10:80 4
# the run file follows the cluster's changes within a second (written at most once a second)
gen_now() { list | xm_json '[s for s in j if s["service"] == "10.96.0.10:80/tcp"][0]["generation"]'; }
for _ in $(seq 30); do [ "$(gen_now)" = 3 ] && break; sleep 0.1; done
xm_assert "$(gen_now)" -eq 3 "the EndpointSlice generation applied is shown"
# a weight set with xmeshctl holds when the cluster applies other changes
xm_ctl backend set 10.96.0.10:80 10.77.0.6:8080 weight 0
fake apply "$(slice api-1 api 10.77.0.6 10.77.0.5)" >/dev/null
xm_lb_wait 10.96.0.11:80 2
# an apply costs what changed: one slice's update translates its one Service
last=$(grep "k8s: applied" "$AGENT_LOG" | tail -1)
case $last in *", 1 Services translated,"*) xm_log "ok: one change, one Service translated" ;;
*) xm_fail "one slice update did not translate just its Service: $last" ;; esac
w=$(xm_ctl -j service show 10.96.0.10:80 | xm_json '[b["weight"] for b in j["backends"] if b["backend"] == "10.77.0.6:8080"][0]')
xm_assert "$w" = 0.0 "a weight set through the control socket survives the next cluster apply"
xm_ctl backend set 10.96.0.10:80 10.77.0.6:8080 weight 1
xm_lb_wait 10.96.0.10:80 4

# tables must never lose 10.96.0.10:80 while the API misbehaves: a poller records any gap
watch_tables() {
	while [ ! -e "$XM_RUN_DIR/stop-poll" ]; do
		n=$("$XM_BIN/xmeshctl" --pin-root "$XM_PIN" -j service show 10.96.0.10:80 2>/dev/null |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["backend_count"])' 2>/dev/null)
		[ "${n:-0}" -ge 1 ] || echo "gap: ${n:-none}" >>"$XM_RUN_DIR/gaps"
		sleep 0.05
	done
}
xm_bg watch_tables
log_wait() { # PATTERN WHAT
	for _ in $(seq 150); do grep -q "$1" "$AGENT_LOG" && return 0; sleep 0.1; done
	xm_fail "$2: no log line '$1'"
}
lists_of() { fake stats | xm_json "j['lists'].get('$1', 0)"; }

# --- 410 as an ERROR event, the relist held for a while: the tables stay ---
before=$(lists_of endpointslices)
fake fault '{"name":"hold_lists","count":1}' >/dev/null
fake fault '{"name":"watch_410_event","count":1,"kind":"endpointslices"}' >/dev/null
log_wait "watch ended by the API server: 410" "410 event"
sleep 1
fake clear >/dev/null
for _ in $(seq 50); do [ "$(lists_of endpointslices)" -gt "$before" ] && break; sleep 0.1; done
xm_assert "$(lists_of endpointslices)" -gt "$before" "410 event: listed again"
# --- 410 as an HTTP status, on the watch after a disconnect mid-event ---
fake fault '{"name":"watch_410_status","count":1,"kind":"endpointslices"}' >/dev/null
fake fault '{"name":"disconnect","count":1,"kind":"endpointslices"}' >/dev/null
fake apply "$(slice web-2 web 10.77.0.5)" >/dev/null
log_wait "410 Gone: listing again" "410 status"
xm_lb_wait 10.96.0.10:80 3

# --- 429 with Retry-After, then 500s ---
fake fault '{"name":"status_429","count":1,"retry_after":2,"kind":"endpointslices"}' >/dev/null
fake fault '{"name":"disconnect","count":1,"kind":"endpointslices"}' >/dev/null
fake apply "$(slice web-2 web 10.77.0.5 10.77.0.6)" >/dev/null
log_wait "endpointslices [a-z]*: HTTP 429" "429" # the watch, or the list after it
log_wait "trying again in 2000 ms" "Retry-After honoured"
fake fault '{"name":"status_500","count":2,"kind":"endpointslices"}' >/dev/null
fake fault '{"name":"disconnect","count":1,"kind":"endpointslices"}' >/dev/null
fake apply "$(slice web-2 web 10.77.0.5)" >/dev/null
log_wait "endpointslices [a-z]*: HTTP 500" "500"
fake apply "$(slice web-2 web 10.77.0.5 10.77.0.6)" >/dev/null
xm_lb_wait 10.96.0.10:80 4

# --- garbage mid-stream ---
fake fault '{"name":"garbage","count":1,"kind":"endpointslices"}' >/dev/null
fake apply "$(slice web-2 web 10.77.0.5)" >/dev/null
log_wait "the API server sent a bad event (not JSON" "garbage"
xm_lb_wait 10.96.0.10:80 3
fake apply "$(slice web-2 web 10.77.0.5 10.77.0.6)" >/dev/null
xm_lb_wait 10.96.0.10:80 4

# --- a hang mid-stream (watch timeout 3 s + 5 s) ---
fake fault '{"name":"hang","count":1,"kind":"endpointslices"}' >/dev/null
fake apply "$(slice web-2 web 10.77.0.5)" >/dev/null
xm_lb_wait 10.96.0.10:80 3
log_wait "the watch hung" "hang"
fake apply "$(slice web-2 web 10.77.0.5 10.77.0.6)" >/dev/null
xm_lb_wait 10.96.0.10:80 4

# --- token rotation: the next request carries the new token ---
echo "tok-2" >"$TOKEN.new" && mv "$TOKEN.new" "$TOKEN"
fake token '{"token":"tok-2"}' >/dev/null
fake fault '{"name":"disconnect","count":1,"kind":"endpointslices"}' >/dev/null
fake apply "$(slice web-2 web 10.77.0.5)" >/dev/null
xm_lb_wait 10.96.0.10:80 3
fake apply "$(slice web-2 web 10.77.0.5 10.77.0.6)" >/dev/null
xm_lb_wait 10.96.0.10:80 4
xm_assert "$(fake stats | xm_json 'j["tokens"].get("tok-2", 0)')" -gt 0 "the rotated token is used"

# --- the API server down, then back (restarted: no history, so 410 and a relist) ---
fake save "{\"path\":\"$XM_RUN_DIR/fake-state.json\"}" >/dev/null
kill "$FAKE_PID"
wait "$FAKE_PID" 2>/dev/null || true
log_wait "Couldn't connect to server\|Failure when receiving\|Server returned nothing" "API down"
sleep 2
xm_lb_wait 10.96.0.10:80 4
# Service "api" was deleted while the agent could not watch: the relist removes it
python3 - "$XM_RUN_DIR/fake-state.json" <<'EOP'
import json, sys
s = json.load(open(sys.argv[1]))
del s["objects"]["services"]["default/api"]
json.dump(s, open(sys.argv[1], "w"))
EOP
fake_start --load "$XM_RUN_DIR/fake-state.json"
log_wait "services: watch ended by the API server: 410" "410 after the restart"
fake apply "$(slice web-2 web 10.77.0.5)" >/dev/null
xm_lb_wait 10.96.0.10:80 3
for _ in $(seq 50); do xm_ctl -j service show 10.96.0.11:80 >/dev/null 2>&1 || break; sleep 0.1; done
xm_ctl -j service show 10.96.0.11:80 >/dev/null 2>&1 &&
	xm_fail "a Service missing from the new list is still programmed"
xm_log "ok: the relist removed the Service deleted meanwhile"

# --- a compaction: watches from before get 410 in the stream ---
before=$(lists_of services)
fake compact >/dev/null
for _ in $(seq 50); do [ "$(lists_of services)" -gt "$before" ] && break; sleep 0.1; done
xm_assert "$(lists_of services)" -gt "$before" "compaction: services listed again"

touch "$XM_RUN_DIR/stop-poll"
sleep 0.2
if [ -s "$XM_RUN_DIR/gaps" ]; then
	xm_fail "the tables lost 10.96.0.10:80 while the API misbehaved: $(sort | uniq -c <"$XM_RUN_DIR/gaps")"
fi
xm_log "ok: 10.96.0.10:80 kept its backends through every fault"

# --- a burst of 1,000 slice updates: a handful of applies ---
applies() { grep -c "k8s: applied" "$AGENT_LOG"; }
before=$(applies)
python3 - "$PORT" <<'EOP'
import json, sys, urllib.request
objs = []
for i in range(1000):
    eps = [{"addresses": ["10.77.0.%d" % (3 + (i + k) % 4)], "conditions": {"ready": True}}
           for k in range(2 + i % 2)]
    objs.append({"metadata": {"namespace": "default", "name": "web-2",
                              "labels": {"kubernetes.io/service-name": "web"}},
                 "addressType": "IPv4",
                 "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                 "endpoints": eps})
# the last one: b3 and b4
objs.append(json.loads(json.dumps(objs[-1])))
objs[-1]["endpoints"] = [{"addresses": ["10.77.0.5"]}, {"addresses": ["10.77.0.6"]}]
req = urllib.request.Request("http://127.0.0.1:%s/_ctl/apply" % sys.argv[1],
                             json.dumps({"kind": "endpointslices", "objects": objs}).encode())
urllib.request.urlopen(req).read()
EOP
xm_lb_wait 10.96.0.10:80 4
sleep 0.5
n=$(($(applies) - before))
xm_log "1,001 slice updates: $n applies"
xm_assert "$n" -le 10 "a burst of 1,001 slice updates is a handful of applies"
xm_assert "$n" -ge 1 "the burst was applied"

# --- agent SIGKILLed and restarted while the API server holds its lists: nothing changes ---
before=$(xm_ctl -j service list | xm_json 'sorted((s["service"], s["backend_count"]) for s in j)')
kill -9 "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
fake fault '{"name":"hold_lists","count":1}' >/dev/null
xm_agent_start --config "$CFG" --kubeconfig "$XM_RUN_DIR/kubeconfig.json" --node-name xm-node-a \
	--k8s-watch-timeout 3 --metrics "127.0.0.1:$MPORT" 2>>"$AGENT_LOG"
sleep 1.5
after=$(xm_ctl -j service list | xm_json 'sorted((s["service"], s["backend_count"]) for s in j)')
xm_assert "$after" = "$before" "a restarted agent keeps every table until both lists are complete"
xm_assert "$(ready)" = 503 "the restarted agent is not ready before its initial sync"
fake clear >/dev/null
for _ in $(seq 50); do [ "$(ready)" = 200 ] && break; sleep 0.1; done
xm_assert "$(ready)" = 200 "ready again after the sync"
xm_lb_wait 10.96.0.10:80 4

# --- a Service deleted ---
fake delete '{"kind":"services","namespace":"default","name":"web"}' >/dev/null
for _ in $(seq 50); do
	xm_ctl -j service show 10.96.0.10:80 >/dev/null 2>&1 || break
	sleep 0.1
done
xm_ctl -j service show 10.96.0.10:80 >/dev/null 2>&1 && xm_fail "deleted Service still programmed"
xm_log "ok: a deleted Service is removed"
xm_log "PASS"
