#!/bin/bash
# SPDX-License-Identifier: MIT
# Mesh overhead (MeshInsight-style): the same request/response workloads
# between a client pod and a server pod, on one node and across two nodes,
# under
#   direct       no mesh, client connects to the server pod IP
#   svc          no mesh, service VIP translated by nftables DNAT on the node
#                (kube-proxy style, conntrack)
#   sidecar-tcp  HAProxy in every pod (TCP mode), traffic captured by nftables
#                REDIRECT in the pod netns (outbound -> client sidecar,
#                inbound -> server sidecar), proxy traffic exempt by uid 1337
#                (Istio's sidecar shape)
#   sidecar-http same, HAProxy in HTTP mode (HTTP workloads only)
#   nodeproxy    one HAProxy per node (TCP mode) capturing pod traffic with
#                nftables REDIRECT on the node; across nodes it goes client
#                node proxy -> server node proxy -> pod (ztunnel's shape)
#   xmesh        the xmesh agent: connect-time LB (the client connects to the
#                VIP; connect() is rewritten once to the backend) plus socket
#                redirect between local pods
# Modes are interleaved: every repetition runs every mode, mode order rotated
# per repetition; the report takes medians over repetitions.
#
#   scripts/bench/overhead.sh            # short run (< 15 min)
#   FULL=1 scripts/bench/overhead.sh     # longer runs, more rates, more reps
#   REPS= DUR= MODES="direct xmesh" TOPOS="1node" WORKLOADS="tcp64@5k" OUT=dir
#                                        narrow the run
#
# CPU: cgroup cpu.stat of the test cgroup, which holds client, servers,
# proxies and the agent; plus the machine's /proc/stat softirq time, which
# includes whatever else runs on the machine.
set -eu -o pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
. tests/integration/lib.sh
. scripts/testbed.sh

FULL=${FULL:-0}
if [ "$FULL" = 1 ]; then
	REPS=${REPS:-5}
	DUR=${DUR:-5}
else
	REPS=${REPS:-3}
	DUR=${DUR:-2}
fi
MODES=${MODES:-"direct svc sidecar-tcp sidecar-http nodeproxy xmesh"}
TOPOS=${TOPOS:-"1node 2node vxlan"}
CONNS=${CONNS:-16}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$TOP/results/overhead-$STAMP}
SERVE=$XM_TOOLS/xm-serve
LOAD=$XM_TOOLS/xm-load
PROXY_UID=1337

# Workloads: name proto size rate(0 = closed loop, max) flags
# "wrk" as proto: HTTP max throughput measured by wrk.
wl_same=(
	"tcp64@1k tcp 64 1000 -"
	"tcp64@5k tcp 64 5000 -"
	"tcp64@20k tcp 64 20000 -"
	"tcp64@max tcp 64 0 -"
	"tcp4k@5k tcp 4096 5000 -"
	"tcp4k@max tcp 4096 0 -"
	"http64@5k http 64 5000 -"
	"http64@max wrk 64 0 -"
	"conn64@1k tcp 64 1000 --new"
	"conn64@max tcp 64 0 --new"
)
wl_cross=(
	"tcp64@1k tcp 64 1000 -"
	"tcp64@5k tcp 64 5000 -"
	"tcp64@20k tcp 64 20000 -"
	"tcp64@max tcp 64 0 -"
	"http64@5k http 64 5000 -"
	"http64@max wrk 64 0 -"
	"conn64@1k tcp 64 1000 --new"
)
# APPS=1 (make bench-apps): unmodified servers in place of xm-serve rr on the service
# port of the server pods: nginx + wrk, Redis + redis-benchmark (GET),
# PostgreSQL + pgbench (select-only).
if [ "${APPS:-0}" = 1 ]; then
	wl_apps=("nginx@max nginx 64 0 -" "redis@max redis 64 0 -" "pgbench@max pgbench 0 0 -")
	wl_same+=("${wl_apps[@]}")
	wl_cross+=("${wl_apps[@]}")
fi
if [ "$FULL" = 1 ]; then
	wl_same+=("tcp64@10k tcp 64 10000 -" "tcp64@40k tcp 64 40000 -"
		"tcp4k@1k tcp 4096 1000 -" "tcp4k@20k tcp 4096 20000 -"
		"http64@1k http 64 1000 -" "http64@20k http 64 20000 -"
		"conn64@5k tcp 64 5000 -n")
	wl_cross+=("tcp64@10k tcp 64 10000 -" "tcp4k@5k tcp 4096 5000 -" "tcp4k@max tcp 4096 0 -"
		"conn64@max tcp 64 0 --new")
fi

[ -x "$SERVE" ] && [ -x "$LOAD" ] && [ -x "$XM_BIN/xmesh-agent" ] && [ -x "$XM_BIN/xmeshctl" ] ||
	{ echo "overhead: build first (make)" >&2; exit 1; }
for t in haproxy wrk nft gnuplot python3; do
	command -v $t >/dev/null || { echo "overhead: $t missing (scripts/install-deps.sh)" >&2; exit 1; }
done

# NICE=-10: run everything of the benchmark (client, servers, proxies, agent)
# at a higher priority than the rest of a shared machine, to reduce the
# noise other work adds. Recorded in env.txt.
NICE=${NICE:-0}
[ "$NICE" = 0 ] || renice -n "$NICE" -p $$ >/dev/null

xm_setup
# also clean up when the terminal goes or a pipe reader (| head) quits
trap 'exit 129' HUP
trap 'exit 141' PIPE
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
LOG=$OUT/log
mkdir -p "$LOG"

# ------------------------------------------------------------------ world
# Pods get a /32 and reach everything through the node (routed, as Calico
# does), so that node-level NAT sees both directions of pod-to-pod traffic.
NODE1=10.77.1.1 NODE2=10.77.2.1
C1=10.77.1.2 S1=10.77.1.3 S2=10.77.2.3
U1=10.76.0.1 U2=10.76.0.2
VIP1=10.96.0.1 VIP2=10.96.0.2
PORT=8080

node_sysctl() {
	ip netns exec "$XM_PREFIX-$1" sysctl -qw net.ipv4.conf.all.send_redirects=0 \
		net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.br0.send_redirects=0 \
		net.ipv4.ip_local_port_range="20000 65000" net.ipv4.ip_local_reserved_ports=15000-15099 net.ipv4.tcp_tw_reuse=1
}

routed_pod() { # node pod addr gw
	xm_pod "$1" "$2" "$3/32"
	ip -n "$XM_PREFIX-$2" route add "$4" dev eth0 scope link
	ip -n "$XM_PREFIX-$2" route add default via "$4" dev eth0
	ip netns exec "$XM_PREFIX-$2" sysctl -qw net.ipv4.conf.all.accept_redirects=0 \
		net.ipv4.ip_local_port_range="20000 65000" net.ipv4.ip_local_reserved_ports=15000-15099 net.ipv4.tcp_tw_reuse=1
}

build_world() {
	xm_node n1
	xm_node n2
	ip -n "$XM_PREFIX-n1" addr add $NODE1/24 dev br0
	ip -n "$XM_PREFIX-n2" addr add $NODE2/24 dev br0
	node_sysctl n1
	node_sysctl n2
	# underlay: one veth between the two node netns
	ip link add "xmu${XM_ID}a" netns "$XM_PREFIX-n1" type veth peer name "xmu${XM_ID}b" \
		netns "$XM_PREFIX-n2"
	ip -n "$XM_PREFIX-n1" addr add $U1/30 dev "xmu${XM_ID}a"
	ip -n "$XM_PREFIX-n2" addr add $U2/30 dev "xmu${XM_ID}b"
	ip -n "$XM_PREFIX-n1" link set "xmu${XM_ID}a" up
	ip -n "$XM_PREFIX-n2" link set "xmu${XM_ID}b" up
	ip -n "$XM_PREFIX-n1" route add 10.77.2.0/24 via $U2
	ip -n "$XM_PREFIX-n2" route add 10.77.1.0/24 via $U1
	routed_pod n1 c1 $C1 $NODE1
	routed_pod n1 s1 $S1 $NODE1
	routed_pod n2 s2 $S2 $NODE2
	app_use rr
}

# The server on $PORT of pods s1 and s2: xm-serve rr, or (APPS=1) nginx, redis or
# postgres, switched when a workload needs another one.
APP_RUNNING=
APP_PIDS=()
# All addresses: a sidecar hands inbound connections over on 127.0.0.1.
app_start() { # app pod
	local d=$XM_RUN_DIR/$1-$2
	mkdir -p "$d"
	case $1 in
	rr) ns_bg "$2" "$SERVE" rr -l $PORT ;;
	nginx)
		cat >"$d/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	server { listen $PORT; location / { return 200 "$(printf '%064d' 0)"; } }
}
NGX
		ns_bg "$2" /usr/sbin/nginx -c "$d/nginx.conf" ;;
	redis)
		ns_bg "$2" redis-server --port $PORT --bind 0.0.0.0 --save "" --appendonly no \
			--protected-mode no --dir "$d" --logfile "$d/redis.log" ;;
	postgres)
		if [ ! -e "$d/db/PG_VERSION" ]; then
			chown postgres "$d"
			setpriv --reuid=postgres --regid=postgres --init-groups \
				"$PG_BIN/initdb" -D "$d/db" -U postgres --auth=trust --no-sync \
				>>"$LOG/postgres" 2>&1 || xm_fail "initdb failed (see $LOG/postgres)"
			echo "host all all 0.0.0.0/0 trust" >>"$d/db/pg_hba.conf"
		fi
		ns_bg "$2" setpriv --reuid=postgres --regid=postgres --init-groups \
			"$PG_BIN/postgres" -D "$d/db" -p $PORT -c listen_addresses='*' \
			-c unix_socket_directories= -c fsync=off -c max_connections=64 \
			2>>"$LOG/postgres" ;;
	esac
	APP_PIDS+=("$XM_LAST_PID")
}
app_use() { # app
	local p a
	[ "$APP_RUNNING" = "$1" ] && return 0
	for p in "${APP_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${APP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	APP_PIDS=()
	app_start "$1" s1
	app_start "$1" s2
	wait_listen s1 $PORT
	wait_listen s2 $PORT
	if [ "$1" = postgres ] && [ ! -e "$XM_RUN_DIR/pgbench-init" ]; then
		for a in $S1 $S2; do
			client_exec pgbench -i -q -s 1 -h $a -p $PORT -U postgres postgres \
				>>"$LOG/postgres" 2>&1 || xm_fail "pgbench -i on $a failed"
		done
		touch "$XM_RUN_DIR/pgbench-init"
	fi
	APP_RUNNING=$1
}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

wait_listen() { # netns port
	for _ in $(seq 200); do
		ip netns exec "$XM_PREFIX-$1" ss -Hltn | awk '{print $4}' | grep -q ":$2\$" && return 0
		sleep 0.05
	done
	ip netns exec "$XM_PREFIX-$1" ss -Hltnp >&2
	tail -5 "$LOG/haproxy" >&2 2>/dev/null
	xm_fail "nothing listens on $1:$2"
}

# ------------------------------------------------------------------ modes
NFT_SVC=$XM_PREFIX-svc
NFT_SC=$XM_PREFIX-sidecar
NFT_NP=$XM_PREFIX-nodeproxy
PROXY_PIDS=()

# xm_pod_exec in the background, keeping the pid of the command itself (sh and
# ip netns exec both exec) so that it can be stopped by pid.
ns_bg() { # netns cmd...
	local ns=$XM_PREFIX-$1
	shift
	xm_bg sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' "$XM_CGROUP" \
		"$ns" "$@"
}

start_proxy() { # netns config
	ns_bg "$1" haproxy -f "$2" -db 2>>"$LOG/haproxy"
	PROXY_PIDS+=("$XM_LAST_PID")
}

stop_proxies() {
	local p
	for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PROXY_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PROXY_PIDS=()
}

# One HAProxy configuration serves every sidecar: outbound listeners per
# service (the nft rules send each VIP to its own port, which is how the
# proxy knows the service) and one inbound listener for the local app.
sidecar_cfg() { # tcp|http
	local f=$XM_RUN_DIR/sidecar-$1.cfg
	cat >"$f" <<EOF
global
	nbthread 1
	maxconn 4096
	uid $PROXY_UID
	gid $PROXY_UID
defaults
	mode $1
	timeout connect 5s
	timeout client 60s
	timeout server 60s
$([ "$1" = http ] && printf '\toption http-keep-alive\n\ttimeout http-keep-alive 60s\n')
frontend out_svc1
	bind 0.0.0.0:15001
	default_backend svc1
frontend out_svc2
	bind 0.0.0.0:15002
	default_backend svc2
frontend inbound
	bind 0.0.0.0:15006
	default_backend local_app
backend svc1
	server s1 $S1:$PORT
backend svc2
	server s2 $S2:$PORT
backend local_app
	server app 127.0.0.1:$PORT
EOF
	echo "$f"
}

sidecar_capture() { # pod
	ip netns exec "$XM_PREFIX-$1" nft -f - <<EOF
table ip $NFT_SC {
	chain outbound {
		type nat hook output priority -100; policy accept;
		meta skuid $PROXY_UID return
		oifname "lo" return
		ip daddr $VIP1 tcp dport $PORT redirect to :15001
		ip daddr $VIP2 tcp dport $PORT redirect to :15002
	}
	chain inbound {
		type nat hook prerouting priority -100; policy accept;
		tcp dport $PORT redirect to :15006
	}
}
EOF
}

nodeproxy_cfg() {
	local f=$XM_RUN_DIR/nodeproxy.cfg
	cat >"$f" <<EOF
global
	nbthread 1
	maxconn 4096
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend out_svc1
	bind 0.0.0.0:15001
	default_backend svc1
frontend out_svc2
	bind 0.0.0.0:15002
	default_backend svc2_via_node2
frontend tunnel_in
	bind 0.0.0.0:15008
	default_backend svc2_local
backend svc1
	server s1 $S1:$PORT
backend svc2_via_node2
	server n2 $U2:15008
backend svc2_local
	server s2 $S2:$PORT
EOF
	echo "$f"
}

agent_start() {
	local cfg=$XM_RUN_DIR/xmesh-config.json
	cat >"$cfg" <<EOF
{
  "services": [
    { "name": "svc1", "vip": "$VIP1", "port": $PORT,
      "backends": [ { "address": "$S1", "port": $PORT } ] },
    { "name": "svc2", "vip": "$VIP2", "port": $PORT,
      "backends": [ { "address": "$S2", "port": $PORT } ] }
  ]
}
EOF
	# in the test cgroup (its CPU counts like a proxy's), in the root netns
	# (ip netns exec would hide the cgroup2 mount from it)
	xm_bg sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$XM_CGROUP" \
		"$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" --config "$cfg" \
		2>>"$LOG/agent"
	XM_AGENT_PID=$XM_LAST_PID
	for _ in $(seq 100); do
		if xm_ctl status >/dev/null 2>&1; then
			xm_lb_wait $VIP1:$PORT 1
			xm_lb_wait $VIP2:$PORT 1
			return 0
		fi
		kill -0 "$XM_AGENT_PID" 2>/dev/null || xm_fail "agent exited during start"
		sleep 0.1
	done
	xm_fail "agent not ready after 10 s"
}

# Evidence that xmesh mode took the redirect path: the datapath counters.
xmesh_counters() {
	xm_ctl -j stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(f"{k}={v}" for k, v in s.items() if isinstance(v, int)))'
}

agent_stop() {
	kill "$XM_AGENT_PID" 2>/dev/null || true
	wait "$XM_AGENT_PID" 2>/dev/null || true
	"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" \
		>>"$LOG/agent" 2>&1 || true
	rm -rf "$XM_PIN"
}

mode_on() {
	case $1 in
	direct) ;;
	svc)
		ip netns exec "$XM_PREFIX-n1" nft -f - <<EOF
table ip $NFT_SVC {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		ip daddr $VIP1 tcp dport $PORT dnat to numgen random mod 1 map { 0 : $S1 }
		ip daddr $VIP2 tcp dport $PORT dnat to numgen random mod 1 map { 0 : $S2 }
	}
}
EOF
		;;
	sidecar-tcp | sidecar-http)
		local cfg p
		cfg=$(sidecar_cfg "${1#sidecar-}")
		for p in c1 s1 s2; do
			start_proxy $p "$cfg"
			sidecar_capture $p
		done
		for p in c1 s1 s2; do wait_listen $p 15006; done
		;;
	nodeproxy)
		local cfg
		cfg=$(nodeproxy_cfg)
		start_proxy n1 "$cfg"
		start_proxy n2 "$cfg"
		wait_listen n1 15002
		wait_listen n2 15008
		ip netns exec "$XM_PREFIX-n1" nft -f - <<EOF
table ip $NFT_NP {
	chain capture {
		type nat hook prerouting priority -100; policy accept;
		iifname "br0" ip daddr $VIP1 tcp dport $PORT redirect to :15001
		iifname "br0" ip daddr $VIP2 tcp dport $PORT redirect to :15002
	}
}
EOF
		;;
	xmesh)
		agent_start
		# the agent of node 1 knows node 1's pods only
		xm_ctl endpoint add $C1 netns "$(xm_netns_path c1)"
		xm_ctl endpoint add $S1 netns "$(xm_netns_path s1)"
		;;
	esac
}

mode_off() {
	case $1 in
	svc) ip netns exec "$XM_PREFIX-n1" nft delete table ip $NFT_SVC ;;
	sidecar-*)
		stop_proxies
		for p in c1 s1 s2; do ip netns exec "$XM_PREFIX-$p" nft delete table ip $NFT_SC; done
		;;
	nodeproxy)
		ip netns exec "$XM_PREFIX-n1" nft delete table ip $NFT_NP
		stop_proxies
		;;
	xmesh)
		echo "rep=$rep $(xmesh_counters)" >>"$OUT/xmesh-counters.txt"
		agent_stop
		;;
	esac
}

# Where the client connects: the pod IP without a mesh, else the service VIP.
target() { # mode topo
	local pod=$S1 vip=$VIP1
	[ "$2" = 2node ] && pod=$S2 vip=$VIP2
	case $1 in
	direct) echo $pod ;;
	*) echo $vip ;;
	esac
}

# ------------------------------------------------------------------ measure
cg_read() { awk '{v[$1]=$2} END{print v["usage_usec"], v["user_usec"], v["system_usec"]}' \
	"$XM_CGROUP/cpu.stat"; }
# all-CPU ticks: softirq and total busy
ps_read() { awk '$1=="cpu"{print $8, $2+$3+$4+$7+$8}' /proc/stat; }

printf 'rep\ttopo\tmode\tworkload\trate\trps\tp50_us\tp99_us\tp999_us\tcompleted\terrors\tcg_usage_us\tcg_user_us\tcg_sys_us\tsoftirq_us\tnode_busy_us\twall_us\tlag_p99_us\tcmd\n' >"$RAW"

# The client of the current world: pod c1 in the test cgroup, unless the
# VXLAN phase points CLIENT_NS / CLIENT_CG elsewhere.
client_exec() {
	sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' "${CLIENT_CG:-$XM_CGROUP}" \
		"${CLIENT_NS:-$XM_PREFIX-c1}" "$@"
}

# PROG_STATS=1 (make bench-cost): xmesh runs hold the kernel's BPF run-time
# statistics on while the client runs (xmeshctl prog profile), and every
# program of the pin roots in PROG_ROOTS is listed before and after it.
PROG_ROOTS=${PROG_ROOTS:-$XM_PIN}
prog_snap() { # rep topo workload before|after
	local r
	for r in $PROG_ROOTS; do
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$r" \
			"$("$XM_BIN/xmeshctl" -j --pin-root "$r" prog list)" >>"$OUT/progstats.tsv"
	done
}

run_one() { # rep topo mode workload-spec
	local rep=$1 topo=$2 mode=$3 name proto size rate flags t cmd out
	read -r name proto size rate flags <<<"$4"
	[ "$flags" = - ] && flags=""
	if [ -n "${WORKLOADS:-}" ] && ! grep -qw -- "$name" <<<"$WORKLOADS"; then
		return 0
	fi
	case $mode/$proto in
	sidecar-http/tcp | sidecar-http/redis | sidecar-http/pgbench)
		return 0 ;; # an HTTP proxy does not carry other protocols
	esac
	t=${TARGET:-$(target "$mode" "$topo")}
	local wd=${DUR%.*}
	[ "${wd:-0}" -ge 1 ] 2>/dev/null || wd=1
	# (the VXLAN world has its own xm-serve rr server and no application servers)
	case $proto in
	nginx | redis | pgbench) [ -z "${TARGET:-}" ] || return 0 ;;&
	nginx | redis) app_use "$proto" ;;
	pgbench) app_use postgres ;;
	*) [ -n "${TARGET:-}" ] || app_use rr ;;
	esac
	case $proto in
	wrk) cmd="wrk -t1 -c$CONNS -d${wd}s http://$t:$PORT/$size" ;;
	nginx) cmd="wrk -t1 -c$CONNS -d${wd}s http://$t:$PORT/" ;;
	redis) cmd="redis-benchmark -h $t -p $PORT -c $CONNS -n $((wd * 30000)) -t get --csv" ;;
	pgbench) cmd="pgbench -h $t -p $PORT -U postgres -S -n -c 8 -j 1 -T $wd postgres" ;;
	*) cmd="$LOAD rr -t $t:$PORT -P $proto -s $size -r $rate -d $DUR -c $CONNS $flags" ;;
	esac
	local cg0 cg1 ps0 ps1 w0 w1 prof=
	[ "${PROG_STATS:-0}" = 1 ] && [ "$mode" = xmesh ] && prof=1
	[ -z "$prof" ] || prog_snap "$rep" "$topo" "$name" before
	cg0=$(cg_read)
	ps0=$(ps_read)
	w0=$(date +%s%N)
	if [ -n "$prof" ]; then
		# the client's output comes back on stderr (stdout is the profile's)
		out=$("$XM_BIN/xmeshctl" --pin-root "${PROG_ROOTS%% *}" prog profile -- sh -c \
			'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' \
			"${CLIENT_CG:-$XM_CGROUP}" "${CLIENT_NS:-$XM_PREFIX-c1}" $cmd 2>&1 >/dev/null) ||
			out=""
	else
		out=$(client_exec $cmd 2>>"$LOG/client") || out=""
	fi
	w1=$(date +%s%N)
	ps1=$(ps_read)
	cg1=$(cg_read)
	[ -z "$prof" ] || prog_snap "$rep" "$topo" "$name" after
	local rps p50 p99 p999 done_ errs lag=NA
	if [ "$proto" = wrk ] || [ "$proto" = nginx ]; then
		rps=$(awk '/^Requests\/sec/{printf "%.0f", $2}' <<<"$out")
		done_=$(awk '/requests in/{print $1}' <<<"$out")
		errs=$(awk '/Non-2xx|Socket errors/{n++} END{print n+0}' <<<"$out")
		p50=NA p99=NA p999=NA
	elif [ "$proto" = redis ]; then
		# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...,"p99_latency_ms"
		read -r rps p50 p99 < <(awk -F'"' '$2 == "GET" {printf "%.0f %.1f %.1f\n", $4, $10 * 1000, $14 * 1000}' <<<"$out") || true
		done_=$((wd * 30000)) errs=0 p999=NA
	elif [ "$proto" = pgbench ]; then
		rps=$(awk '/^tps = /{printf "%.0f", $3}' <<<"$out")
		done_=$(awk '/number of transactions actually processed/{split($NF, a, "/"); print a[1]; exit}' <<<"$out")
		p50=$(awk '/^latency average/{printf "%.1f", $4 * 1000}' <<<"$out")
		errs=$(awk '/number of failed transactions/{print $5}' <<<"$out")
		p99=NA p999=NA
	else
		kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$out"; }
		rps=$(kv rps) p50=$(kv p50_us) p99=$(kv p99_us) p999=$(kv p999_us)
		done_=$(kv ok) errs=$(kv errors) lag=$(kv lag_p99_us)
		[ "$rate" = 0 ] && lag=NA
	fi
	[ -n "$rps" ] || { rps=NA p50=NA p99=NA p999=NA done_=0 errs=NA; }
	read -r u0 us0 sy0 <<<"$cg0"
	read -r u1 us1 sy1 <<<"$cg1"
	read -r si0 b0 <<<"$ps0"
	read -r si1 b1 <<<"$ps1"
	# /proc/stat counts USER_HZ (100) ticks
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$rep" "$topo" "$mode" "$name" "$rate" "$rps" "$p50" "$p99" "$p999" "$done_" \
		"$errs" $((u1 - u0)) $((us1 - us0)) $((sy1 - sy0)) $(((si1 - si0) * 10000)) \
		$(((b1 - b0) * 10000)) $(((w1 - w0) / 1000)) "${lag:-NA}" "ip netns exec <c1> $cmd" >>"$RAW"
	printf '  %-5s %-12s %-11s rps=%-7s p50=%-8s p99=%-8s p99.9=%s\n' "$topo" "$mode" \
		"$name" "$rps" "$p50" "$p99" "$p999" >&2
}

# ------------------------------------------------------------------ run
T_START=$(date +%s)
build_world
read -r -a modes <<<"$MODES"
read -r -a topos <<<"${TOPOS//vxlan/}"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "host: $(uname -r), $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
	echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "command: FULL=$FULL REPS=$REPS DUR=$DUR MODES=\"$MODES\" TOPOS=\"$TOPOS\" CONNS=$CONNS NICE=$NICE scripts/bench/overhead.sh"
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "haproxy: $(haproxy -v | head -1)"
} >"$OUT/env.txt"

xm_cleanup_extra() {
	xm_cleanup_vx_cgroups
	rmdir "$XM_CGROUP" 2>/dev/null
	return 0
}

for rep in $(seq "$REPS"); do
	[ ${#topos[@]} -gt 0 ] || break
	n=${#modes[@]}
	off=$(((rep - 1) % n))
	order=("${modes[@]:off}" "${modes[@]:0:off}")
	xm_log "repetition $rep/$REPS, mode order: ${order[*]}"
	echo "repetition $rep load: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"
	for mode in "${order[@]}"; do
		mode_on "$mode"
		for topo in "${topos[@]}"; do
			if [ "$topo" = 1node ]; then wls=("${wl_same[@]}"); else wls=("${wl_cross[@]}"); fi
			for wl in "${wls[@]}"; do run_one "$rep" "$topo" "$mode" "$wl"; done
		done
		mode_off "$mode"
	done
done
# ------------------------------------------------------------------ VXLAN
# TOPOS containing "vxlan": a second world from scripts/testbed.sh, two nodes
# joined by the kernel's VXLAN overlay, one agent per node (own cgroup, pin
# root, overlay cache on the node's eth0). Modes direct (pod IP over VXLAN, no
# agents) and xmesh (agents on both nodes; the client connects to a VIP that
# node 1's agent balances; the overlay cache carries the flow).
VX_MODES=${VX_MODES:-"direct xmesh"}
VIP3=10.96.0.3
vxlan_phase() {
	local BASE=$XM_PREFIX rep mode wl order n
	VXP=$BASE-v
	vx() { local XM_PREFIX=$VXP; "$@"; }
	vx xm_tb_underlay
	vx xm_tb_node 1
	vx xm_tb_node 2
	vx xm_tb_overlay vxlan
	vx xm_tb_pod 1 vc 10
	vx xm_tb_pod 2 vs 10
	for n in 1 2; do
		ip netns exec "$VXP-n$n" sysctl -qw net.ipv4.tcp_tw_reuse=1
		mkdir -p "$XM_CGROUP/n$n"
	done
	for n in vc vs; do
		ip netns exec "$VXP-$n" sysctl -qw net.ipv4.ip_local_port_range="20000 65000" \
			net.ipv4.tcp_tw_reuse=1
	done
	local SV
	SV=$(xm_tb_pod_ip 2 10)
	xm_bg sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' "$XM_CGROUP/n2" \
		"$VXP-vs" "$SERVE" rr -l $PORT
	wait_listen v-vs $PORT
	local cfg=$XM_RUN_DIR/xmesh-vx-config.json
	cat >"$cfg" <<EOF
{ "services": [ { "name": "svc3", "vip": "$VIP3", "port": $PORT,
  "backends": [ { "address": "$SV", "port": $PORT } ] } ] }
EOF
	read -r -a vxmodes <<<"$VX_MODES"
	for rep in $(seq "$REPS"); do
		n=${#vxmodes[@]}
		order=("${vxmodes[@]:$(((rep - 1) % n))}" "${vxmodes[@]:0:$(((rep - 1) % n))}")
		xm_log "vxlan repetition $rep/$REPS, mode order: ${order[*]}"
		echo "vxlan repetition $rep load: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"
		for mode in "${order[@]}"; do
			if [ "$mode" = xmesh ]; then
				vx xm_tb_agent 1 --config "$cfg" 2>>"$LOG/agent-vx"
				vx xm_tb_agent 2 2>>"$LOG/agent-vx"
				TARGET=$VIP3
			else
				TARGET=$SV
			fi
			CLIENT_NS=$VXP-vc CLIENT_CG=$XM_CGROUP/n1
			for wl in "${wl_cross[@]}"; do
				TARGET=$TARGET CLIENT_NS=$CLIENT_NS CLIENT_CG=$CLIENT_CG \
					PROG_ROOTS="$XM_PIN/n1 $XM_PIN/n2" run_one "$rep" vxlan "$mode" "$wl"
			done
			unset TARGET CLIENT_NS CLIENT_CG
			if [ "$mode" = xmesh ]; then
				echo "vxlan rep=$rep n1: $(xm_tb_ctl 1 -j stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(f"{k}={v}" for k, v in s.items() if isinstance(v, int) and
               (k.startswith("overlay_") or k.startswith("lb_"))))')" >>"$OUT/xmesh-counters.txt"
				for n in 1 2; do
					kill "${XM_TB_AGENT_PID[$n]}" 2>/dev/null
					wait "${XM_TB_AGENT_PID[$n]}" 2>/dev/null || true
					"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP/n$n" \
						--pin-root "$XM_PIN/n$n" >>"$LOG/agent-vx" 2>&1 || true
					rm -rf "$XM_PIN/n$n"
					XM_TB_AGENT_PID[$n]=
				done
			fi
		done
	done
}
# lib.sh removes the test cgroup; the VXLAN phase's node cgroups go first.
xm_cleanup_vx_cgroups() {
	local n p
	for n in 1 2; do
		[ -d "$XM_CGROUP/n$n" ] || continue
		for p in $(cat "$XM_CGROUP/n$n/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		rmdir "$XM_CGROUP/n$n" 2>/dev/null
	done
	return 0
}
if grep -qw vxlan <<<"$TOPOS"; then
	vxlan_phase
fi

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"
echo "elapsed_s: $(($(date +%s) - T_START))" >>"$OUT/env.txt"

python3 "$TOP/scripts/bench/overhead_report.py" "$OUT"
