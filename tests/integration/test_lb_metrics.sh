#!/bin/bash
# SPDX-License-Identifier: MIT
# --metrics: the agent serves Prometheus text that promtool accepts, with the
# datapath counters and per-backend probes (requests, failures, in-flight,
# weight, latency histogram), and a real Prometheus server on loopback
# scrapes it and answers a query from it.
set -eu
. "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null && command -v prometheus >/dev/null || xm_skip "prometheus not installed"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 b1 10.77.0.3/24
xm_bg ip netns exec "$XM_PREFIX-b1" "$XM_TOOLS/xm-serve" http --listen 10.77.0.3:8080 --label b1 --error-rate 0.1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MPORT=$(free_port)
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<EOC
{ "services": [ { "vip": "10.96.0.10", "port": 80,
    "backends": [ { "address": "10.77.0.3", "port": 8080, "weight": 3, "cluster": "frankfurt" } ] } ] }
EOC
xm_agent_start --config "$CFG" --metrics "127.0.0.1:$MPORT"
xm_lb_wait 10.96.0.10:80 1
xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.10:80 -n 300 -c 3 -k 100 >/dev/null

curl -sf "http://127.0.0.1:$MPORT/metrics" >"$XM_RUN_DIR/metrics.txt" || xm_fail "GET /metrics failed"
promtool check metrics <"$XM_RUN_DIR/metrics.txt" || xm_fail "promtool rejects the metrics"
xm_log "ok: promtool check metrics"
lab='service="10.96.0.10:80/tcp",backend="10.77.0.3:8080",cluster="frankfurt"'
get() { grep -v '^#' "$XM_RUN_DIR/metrics.txt" | grep -F "$1" | awk '{print $NF}'; }
xm_assert "$(get "xmesh_backend_requests_total{$lab}")" -eq 300 "requests_total"
xm_assert "$(get "xmesh_backend_latency_seconds_count{$lab}")" -eq 300 "histogram count"
xm_assert "$(get "xmesh_backend_failures_total{$lab,reason=\"http_5xx\"}")" -gt 0 "5xx failures"
xm_assert "$(get "xmesh_backend_weight{$lab}")" = 3.000 "weight"
xm_assert "$(get "xmesh_backend_in_flight{$lab}")" -eq 0 "in_flight"
xm_assert "$(get 'xmesh_lb_connects_total ')" -eq 3 "datapath counter lb_connects"

# a real Prometheus, on loopback, in its own directory, killed by pid
PPORT=$(free_port)
PDIR=$XM_RUN_DIR/prometheus
mkdir -p "$PDIR"
cat >"$PDIR/prometheus.yml" <<EOC
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: xmesh
    static_configs: [ { targets: [ "127.0.0.1:$MPORT" ] } ]
EOC
promtool check config "$PDIR/prometheus.yml" >/dev/null || xm_fail "prometheus config"
xm_bg prometheus --config.file="$PDIR/prometheus.yml" --storage.tsdb.path="$PDIR/data" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn
val=
for _ in $(seq 100); do
	val=$(curl -sf "http://127.0.0.1:$PPORT/api/v1/query" \
		--data-urlencode "query=xmesh_backend_requests_total{cluster=\"frankfurt\"}" 2>/dev/null |
		xm_json 'j["data"]["result"][0]["value"][1] if j["data"]["result"] else ""' 2>/dev/null) || true
	[ -n "$val" ] && break
	sleep 0.2
done
xm_assert "${val:-none}" = 300 "Prometheus scraped the agent and answers the query"
up=$(curl -sf "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode 'query=up{job="xmesh"}' |
	xm_json 'j["data"]["result"][0]["value"][1]')
xm_assert "$up" = 1 "scrape target is up"
