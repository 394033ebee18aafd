#!/bin/bash
# SPDX-License-Identifier: MIT
# bench k8s: the agent's Kubernetes source against a real kube-apiserver + etcd
# (built from upstream modules by scripts/k8s-build.sh), side by side with
# kube-proxy --proxy-mode nftables syncing the same objects. Everything runs
# in one sandbox netns xm-<id>-api (etcd, API server, kube-proxy and its nft
# tables die with it; the agent joins it with --netns).
#   1. N_SVC (1000) ClusterIP Services x N_EP (10) endpoints created through
#      the API (EndpointSlices written directly).
#   2. Initial sync, REPS (3) rounds interleaved agent / kube-proxy, each from
#      nothing (agent: no pins; kube-proxy: no tables): process start to
#      everything programmed (agent: its "initial sync done" log line;
#      kube-proxy: its first "SyncProxyRules complete").
#   3. Both running, RATE (100) endpoint changes/s for DURATION (60) s:
#      latency from the change (the time the update is sent; the slice's
#      last-change-trigger-time) to the map write (agent: the apply that
#      follows the event, from its log) / to the rules (kube-proxy's own
#      kubeproxy_network_programming_duration_seconds histogram); CPU and RSS;
#      the agent's own part (event read -> maps written: agent_own_*) and each
#      apply's own work (translate + apply from its log line: apply_work_*).
# The agent is built with room for N_SVC x N_EP backends (XM_LB_MAX_BACKENDS).
# KPROXY=0 runs the agent's side only. XM_K8S_BIN=DIR: where the binaries are.
set -eu
TOP=$(cd "$(dirname "$0")/../.." && pwd)
N_SVC=${N_SVC:-1000}
N_EP=${N_EP:-10}
RATE=${RATE:-100}
DURATION=${DURATION:-60}
REPS=${REPS:-3}
KPROXY=${KPROXY:-1}
KBIN=${XM_K8S_BIN:-$TOP/build/k8s/bin}
say() { printf 'bench k8s: [%4ds] %s\n' "$SECONDS" "$*" >&2; }
# The load average (1, 5, 15 min) at the start and the end: every number this
# prints says how busy the machine was (the machine is often shared).
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(loadavg)
say "load average $LOAD_START"

if [ ! -x "$KBIN/kube-apiserver" ] || [ ! -x "$KBIN/etcd" ] ||
	{ [ "$KPROXY" = 1 ] && [ ! -x "$KBIN/kube-proxy" ]; }; then
	if [ -x "$TOP/scripts/k8s-build.sh" ]; then
		say "building etcd, kube-apiserver, kube-proxy (scripts/k8s-build.sh)"
		"$TOP/scripts/k8s-build.sh" >&2
	else
		echo "bench k8s: needs etcd, kube-apiserver and kube-proxy in $KBIN (scripts/k8s-build.sh" \
			"from the test-cluster work, or XM_K8S_BIN=DIR)" >&2
		exit 1
	fi
fi

# The agent, with maps for N_SVC x N_EP backends.
BB=build/bench-k8s
MAXBE=16384
[ $((N_SVC * N_EP)) -lt $MAXBE ] || { echo "bench k8s: at most $MAXBE backends" >&2; exit 1; }
say "building the agent with XM_LB_MAX_BACKENDS=$MAXBE into $BB"
make -C "$TOP" -s B=$BB CC="gcc -DXM_LB_MAX_BACKENDS=$MAXBE" \
	CLANG="clang -DXM_LB_MAX_BACKENDS=$MAXBE" "$BB/bin/xmesh-agent" >&2
XM_BIN=$TOP/$BB/bin
. "$TOP/tests/integration/lib.sh"
xm_setup
D=$XM_RUN_DIR
NS=$XM_PREFIX-api
xm_netns api
# an address that is not loopback, for the API server to advertise (both ends in the netns)
ip -n "$NS" link add xm-v0 type veth peer name xm-v1
ip -n "$NS" addr add 10.255.9.1/32 dev xm-v0
ip -n "$NS" link set xm-v0 up
ip -n "$NS" link set xm-v1 up
in_ns() { ip netns exec "$NS" "$@"; }

# --- etcd + kube-apiserver ---
TOKEN=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$TOKEN,xm-bench,1,system:masters" >"$D/tokens.csv"
openssl genrsa -out "$D/sa.key" 2048 2>/dev/null
openssl rsa -in "$D/sa.key" -pubout -out "$D/sa.pub" 2>/dev/null
xm_bg in_ns "$KBIN/etcd" --data-dir "$D/etcd" --listen-client-urls http://127.0.0.1:2379 \
	--advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
	--unsafe-no-fsync --log-level error
xm_bg in_ns "$KBIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
	--bind-address 0.0.0.0 --advertise-address 10.255.9.1 --secure-port 6443 \
	--cert-dir "$D/apiserver" --token-auth-file "$D/tokens.csv" --authorization-mode AlwaysAllow \
	--service-account-issuer https://kubernetes.default.svc --service-account-key-file "$D/sa.pub" \
	--service-account-signing-key-file "$D/sa.key" --service-cluster-ip-range 10.96.0.0/16 \
	--max-requests-inflight 2000 --max-mutating-requests-inflight 1000 \
	--disable-admission-plugins ServiceAccount 2>"$D/apiserver.log"
for _ in $(seq 300); do
	in_ns curl -sfk -H "Authorization: Bearer $TOKEN" https://127.0.0.1:6443/readyz >/dev/null 2>&1 && break
	sleep 0.2
done
in_ns curl -sfk -H "Authorization: Bearer $TOKEN" https://127.0.0.1:6443/readyz >/dev/null ||
	{ tail -20 "$D/apiserver.log" >&2; xm_fail "kube-apiserver did not become ready"; }
say "kube-apiserver $("$KBIN/kube-apiserver" --version | awk '{print $2}') ready"
cat >"$D/kubeconfig.json" <<EOK
{"apiVersion": "v1", "kind": "Config", "current-context": "b",
 "clusters": [{"name": "b", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": true}}],
 "users": [{"name": "b", "user": {"token": "$TOKEN"}}],
 "contexts": [{"name": "b", "context": {"cluster": "b", "user": "b"}}]}
EOK
DRV="python3 $TOP/scripts/bench/k8s_driver.py"
say "creating $N_SVC Services x $N_EP endpoints"
in_ns $DRV create 127.0.0.1:6443 "$TOKEN" "$N_SVC" "$N_EP"

now() { date +%s.%N; }
# klog "I1129 23:50:01.123456 ..." (UTC here) -> epoch seconds
klog_time() { python3 -c "import sys,datetime,time
l=sys.argv[1].split()[1]; d=datetime.datetime.utcnow().date()
t=datetime.datetime.strptime(str(d)+' '+l,'%Y-%m-%d %H:%M:%S.%f').replace(tzinfo=datetime.timezone.utc)
print(t.timestamp())" "$1"; }
agent_time() { python3 -c "import sys,datetime
print(datetime.datetime.strptime(sys.argv[1].split()[0],'%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc).timestamp())" "$1"; }

AGENT_PID=
agent_start() { # LOG
	"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" >/dev/null 2>&1 || true
	T_LAUNCH=$(now)
	xm_bg "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" --netns "/var/run/netns/$NS" \
		--kubeconfig "$D/kubeconfig.json" --node-name xm-bench-node --log-level "${2:-info}" 2>"$1"
	AGENT_PID=$XM_LAST_PID
	for _ in $(seq 600); do grep -q "initial sync done" "$1" && return 0; sleep 0.05; done
	tail -5 "$1" >&2
	xm_fail "agent did not sync"
}
agent_stop() { kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; }
KP_PID=
kp_start() { # LOG
	in_ns nft delete table ip kube-proxy 2>/dev/null || true
	in_ns nft delete table ip6 kube-proxy 2>/dev/null || true
	T_LAUNCH=$(now)
	xm_bg in_ns "$KBIN/kube-proxy" --kubeconfig "$D/kubeconfig.json" --proxy-mode nftables \
		--hostname-override xm-bench-node --metrics-bind-address 127.0.0.1:10249 \
		--healthz-bind-address 127.0.0.1:10256 --conntrack-max-per-core 0 --v 2 2>"$1"
	KP_PID=$XM_LAST_PID
	for _ in $(seq 1200); do grep -q "SyncProxyRules complete" "$1" && return 0; sleep 0.05; done
	tail -5 "$1" >&2
	xm_fail "kube-proxy did not sync"
}
kp_stop() { xm_kill_tree "$KP_PID"; wait "$KP_PID" 2>/dev/null || true; }

# --- 2. initial sync, interleaved ---
A_SYNC=() K_SYNC=() A_K8S=() K_K8S=()
for r in $(seq "$REPS"); do
	agent_start "$D/agent-$r.log"
	t=$(agent_time "$(grep -m1 'initial sync done' "$D/agent-$r.log")")
	ts=$(agent_time "$(grep -m1 'k8s: API server' "$D/agent-$r.log")")
	n=$(grep -m1 'k8s: applied' "$D/agent-$r.log" | sed 's/.*applied \([0-9]*\) services.*/\1/')
	A_SYNC+=("$(python3 -c "print(round($t - $T_LAUNCH, 3))")")
	A_K8S+=("$(python3 -c "print(round($t - $ts, 3))")")
	agent_stop
	K_SYNC+=(nan)
	K_K8S+=(nan)
	kn=-
	if [ "$KPROXY" = 1 ]; then
		kp_start "$D/kp-$r.log"
		t=$(klog_time "$(grep -m1 'SyncProxyRules complete' "$D/kp-$r.log")")
		ts=$(klog_time "$(grep -m1 'Starting service config controller' "$D/kp-$r.log")")
		K_SYNC[-1]=$(python3 -c "print(round($t - $T_LAUNCH, 3))")
		K_K8S[-1]=$(python3 -c "print(round($t - $ts, 3))")
		kn=$(in_ns nft list map ip kube-proxy service-ips 2>/dev/null | grep -c '10\.96\.' || true)
		kp_stop
	fi
	say "round $r: agent ${A_SYNC[-1]} s (${A_K8S[-1]} s from its API start; $n services)," \
		"kube-proxy ${K_SYNC[-1]} s (${K_K8S[-1]} s from its API start; $kn service IPs in nft)"
done
med() { printf '%s\n' "$@" | grep -v nan | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# --- 3. churn, both running ---
agent_start "$D/agent-churn.log" debug
kp_metrics() { [ "$KPROXY" = 1 ] && in_ns curl -s http://127.0.0.1:10249/metrics || true; }
cpu() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
kp_pid=
if [ "$KPROXY" = 1 ]; then
	kp_start "$D/kp-churn.log"
	kp_pid=$(pgrep -f "kube-proxy --kubeconfig $D/" | head -1)
fi
kp_metrics >"$D/kp-before.prom"
a_cpu0=$(cpu "$AGENT_PID")
k_cpu0=$(cpu "$kp_pid")
say "churn: $RATE endpoint changes/s for $DURATION s"
t0=$(now)
in_ns $DRV churn 127.0.0.1:6443 "$TOKEN" "$N_SVC" "$N_EP" "$RATE" "$DURATION" "$D/updates.json"
sleep 2
t1=$(now)
a_cpu=$(python3 -c "print(round(($(cpu "$AGENT_PID") - $a_cpu0) / 100 / ($t1 - $t0) * 100, 1))")
k_cpu=$(python3 -c "print(round(($(cpu "$kp_pid") - $k_cpu0) / 100 / ($t1 - $t0) * 100, 1))")
a_rss=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$AGENT_PID/status")
a_rss_now=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$AGENT_PID/status")
# the heap's share of it: what the agent's own data holds (the rest is code, maps' mmaps, libs)
a_heap=$(awk '/^[0-9a-f]+-[0-9a-f]+ .*\[heap\]/ {h=1; next} /^[0-9a-f]+-/ {h=0} h && /^Rss:/ {s+=$2} END {print int(s/1024)}' "/proc/$AGENT_PID/smaps")
k_rss=$([ -n "$kp_pid" ] && awk '/VmHWM/ {print int($2/1024)}' "/proc/$kp_pid/status" || echo -)
kp_metrics >"$D/kp-after.prom"
a_lat=$($DRV analyse "$D/agent-churn.log" "$D/updates.json")
k_lat=$(python3 - "$D/kp-before.prom" "$D/kp-after.prom" <<'EOP'
import json, re, sys
def hist(path, name):
    b = {}
    for line in open(path):
        # any other labels (ip_family): summed
        m = re.match(name + r'_bucket\{(?:[^}]*,)?le="([^"]+)"[^}]*\} (\S+)', line)
        if m:
            b[float(m.group(1))] = b.get(float(m.group(1)), 0) + float(m.group(2))
    return b
out = {}
for key, name in (("prog", "kubeproxy_network_programming_duration_seconds"),
                  ("sync", "kubeproxy_sync_proxy_rules_duration_seconds")):
    a, z = hist(sys.argv[1], name), hist(sys.argv[2], name)
    d = sorted((le, z[le] - a.get(le, 0)) for le in z)
    n = d[-1][1] if d else 0
    def q(p):
        for le, c in d:
            if c >= p * n:
                return le * 1000
        return float("nan")
    out[key] = {"n": int(n), "p50_le_ms": q(0.5), "p99_le_ms": q(0.99)}
print(json.dumps(out))
EOP
)
applies=$(grep -c "k8s: applied" "$D/agent-churn.log")
[ "$KPROXY" = 1 ] && kp_stop
agent_stop

LOAD_END=$(loadavg)
a_sync=$(med "${A_SYNC[@]}")
a_k8s=$(med "${A_K8S[@]}")
k_sync=$(med "${K_SYNC[@]}")
k_k8s=$(med "${K_K8S[@]}")
ap50=$(echo "$a_lat" | xm_json 'j["p50_ms"]')
ap99=$(echo "$a_lat" | xm_json 'j["p99_ms"]')
own50=$(echo "$a_lat" | xm_json 'j["agent_part_p50_ms"]')
own99=$(echo "$a_lat" | xm_json 'j["agent_part_p99_ms"]')
work50=$(echo "$a_lat" | xm_json 'j["apply_work_p50_ms"]')
work99=$(echo "$a_lat" | xm_json 'j["apply_work_p99_ms"]')
kp50=$(echo "$k_lat" | xm_json 'j["prog"]["p50_le_ms"]')
kp99=$(echo "$k_lat" | xm_json 'j["prog"]["p99_le_ms"]')
cat <<EOT

bench k8s: $N_SVC Services x $N_EP endpoints; churn $RATE changes/s for $DURATION s
load average (1/5/15 min) at the start $LOAD_START, at the end $LOAD_END
(above ~1 the machine is shared: times include waiting for a CPU)

                                  xmesh-agent     kube-proxy nftables
initial sync, median of $REPS (s)       $a_sync            $k_sync
  from its API client's start     $a_k8s            $k_k8s
apply latency p50 (ms)            $ap50           <= $kp50 (histogram bucket)
apply latency p99 (ms)            $ap99           <= $kp99 (histogram bucket)
CPU during churn (% of a core)    $a_cpu            $k_cpu
peak RSS (MB)                     $a_rss              $k_rss
RSS after the churn (MB)          $a_rss_now
  of which heap (MB)              $a_heap
agent applies during churn: $applies for $(python3 -c "print(int($RATE * $DURATION))") updates; agent latencies: $a_lat
kube-proxy: $k_lat
EOT
echo "bench k8s: services=$N_SVC endpoints=$N_EP agent_sync_s=$a_sync kproxy_sync_s=$k_sync" \
	"sync_ratio=$(python3 -c "print(round(float('${k_sync:-nan}') / $a_sync, 2))")" \
	"agent_api_sync_s=$a_k8s kproxy_api_sync_s=$k_k8s" \
	"agent_p50_ms=$ap50 agent_p99_ms=$ap99 kproxy_p50_le_ms=$kp50 kproxy_p99_le_ms=$kp99" \
	"agent_own_p50_ms=$own50 agent_own_p99_ms=$own99 apply_work_p50_ms=$work50 apply_work_p99_ms=$work99" \
	"agent_cpu_pct=$a_cpu kproxy_cpu_pct=$k_cpu agent_rss_mb=$a_rss agent_rss_now_mb=$a_rss_now agent_heap_mb=$a_heap kproxy_rss_mb=$k_rss" \
	"load_start=${LOAD_START%% *} load_end=${LOAD_END%% *}"
# XM_BENCH_LOGS=DIR keeps the logs (agent, kube-proxy, API server) and the updates
[ -n "${XM_BENCH_LOGS:-}" ] && mkdir -p "$XM_BENCH_LOGS" && cp "$D"/*.log "$D"/*.prom "$D/updates.json" "$XM_BENCH_LOGS/"
exit 0
