# SPDX-License-Identifier: MIT
# Shared by integration tests, the demo and benchmarks: build a small world
# on the real kernel and remove all of it on exit, also on failure.
#
#   . tests/integration/lib.sh
#   xm_setup                      # id, cgroup, pin root, trap
#   xm_node n1                    # node netns with a bridge
#   xm_pod n1 a 10.77.0.2/24      # pod netns + veth on the node bridge
#   xm_agent_start                # agent on this test's cgroup and pin root
#   xm_pod_exec a CMD...          # run CMD in pod a, inside the test cgroup
#
# Everything is named xm-<id>-*, and only that is removed.

XM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
XM_BIN=${XM_BIN:-$XM_TOP/build/bin}
XM_TOOLS=${XM_TOOLS:-$XM_TOP/build/tests}
XM_PIDS=()
XM_NETNS=()

xm_log() { echo "[$(date +%T)] $*" >&2; }
# xm_kv KEY LINE: the value of KEY in a line of key=value pairs (xm-load's results)
xm_kv() { sed -n "s/\(^\|.* \)$1=\([^ ]*\).*/\2/p" <<<"$2"; }
# xm_hostport ADDR PORT: an xm-load --target, "IP:PORT" or "[IPv6]:PORT"
xm_hostport() { case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac; }
xm_fail() { echo "FAIL: $*" >&2; exit 1; }
xm_skip() { echo "$*"; exit 77; }
# xm_size NORMAL SMALL: SMALL when XM_SMALL=1 (slow machines: the kernel matrix under qemu TCG).
xm_size() { if [ "${XM_SMALL:-0}" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# assert VALUE OP VALUE MESSAGE, e.g. xm_assert "$n" -gt 0 "redirected messages"
xm_assert() {
	[ "$1" "$2" "$3" ] 2>/dev/null || xm_fail "$4 (got '$1', expected $2 '$3')"
	xm_log "ok: $4 ($1 $2 $3)"
}

xm_setup() {
	[ "$(id -u)" = 0 ] || xm_skip "needs root"
	XM_ID=${XM_ID:-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')}
	XM_PREFIX=xm-$XM_ID
	XM_CG2=$(awk '$3=="cgroup2"{print $2; exit}' /proc/mounts)
	[ -n "$XM_CG2" ] || xm_skip "no cgroup2 mount"
	XM_CGROUP=$XM_CG2/$XM_PREFIX
	. "$XM_TOP/scripts/bpffs.sh"
	xm_bpffs_ensure || exit 1
	XM_PIN=$XM_BPFFS/$XM_PREFIX
	export XM_RUN_DIR=/run/xmesh-test/$XM_PREFIX
	mkdir -p "$XM_CGROUP" "$XM_RUN_DIR"
	trap xm_cleanup EXIT
	trap 'exit 130' INT TERM
}

# xm_bench_setup NAME: a benchmark's start: its results directory OUT (made;
# unless set, results/NAME-<UTC time>), the tree's top as working directory,
# and xm_setup's world.
xm_bench_setup() {
	OUT=${OUT:-$XM_TOP/results/$1-$(date -u +%Y%m%dT%H%M%SZ)}
	mkdir -p "$OUT"
	cd "$XM_TOP"
	xm_setup
}

# Start a command in the background and remember its pid for cleanup. The pid
# is the command's only for a program: a shell function runs in a subshell of
# its own, whose children outlive a kill of that pid (and keep their output
# unflushed); a pod's program goes through xm_pod_bg.
xm_bg() {
	"$@" &
	XM_PIDS+=($!)
	XM_LAST_PID=$!
}

# Kill a process started with xm_bg and everything below it.
xm_kill_tree() {
	local p=$1 c
	for c in $(pgrep -P "$p" 2>/dev/null); do xm_kill_tree "$c"; done
	kill "$p" 2>/dev/null || true
}

xm_cleanup() {
	local rc=$? p
	set +e
	# Killed jobs are polled below; disowned, bash prints no "Killed" notices.
	disown -a 2>/dev/null
	for p in "${XM_PIDS[@]}"; do xm_kill_tree "$p"; done
	for p in "${XM_PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		{ wait "$p"; } 2>/dev/null  # no "Killed" job notices
	done
	# Whatever still runs in our cgroup was started by this test.
	if [ -f "$XM_CGROUP/cgroup.procs" ]; then
		for p in $(cat "$XM_CGROUP/cgroup.procs"); do kill -9 "$p" 2>/dev/null; done
	fi
	[ -d "$XM_PIN" ] && "$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" \
		--pin-root "$XM_PIN" >/dev/null 2>&1
	rm -rf "$XM_PIN" 2>/dev/null
	for p in $(ip netns list | awk '{print $1}' | grep "^$XM_PREFIX-"); do
		ip netns pids "$p" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$p"
	done
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		rmdir "$XM_CGROUP" 2>/dev/null && break
		sleep 0.2
	done
	# XM_KEEP_RUN=DIR: keep the run's files (agent logs, client outputs) for a look afterwards
	[ -n "${XM_KEEP_RUN:-}" ] && mkdir -p "$XM_KEEP_RUN" && cp -a "$XM_RUN_DIR/." "$XM_KEEP_RUN/"
	rm -rf "$XM_RUN_DIR"; rmdir "$(dirname "$XM_RUN_DIR")" 2>/dev/null
	type xm_cleanup_extra >/dev/null 2>&1 && xm_cleanup_extra
	type xm_bpffs_release >/dev/null 2>&1 && xm_bpffs_release
	exit $rc
}

# xm_node NAME: a node netns with bridge "br0" (up, forwarding on).
xm_node() {
	local ns=$XM_PREFIX-$1
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add br0 type bridge
	ip -n "$ns" link set br0 up
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# xm_netns NAME: a bare netns of the world (lo up, nothing else): what a CNI plugin
# wires itself, or a namespace for a server of the test.
xm_netns() {
	ip netns add "$XM_PREFIX-$1"
	ip -n "$XM_PREFIX-$1" link set lo up
}

# xm_pod NODE POD ADDR/PLEN [ADDR6/PLEN]: pod netns with eth0, host veth on the node bridge.
xm_pod() {
	local node=$XM_PREFIX-$1 ns=$XM_PREFIX-$2 host=xmh${XM_ID:0:4}$2
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip link add "${host:0:15}" netns "$node" type veth peer name eth0 netns "$ns"
	ip -n "$node" link set "${host:0:15}" master br0 up
	ip -n "$ns" addr add "$3" dev eth0
	[ -n "${4:-}" ] && ip -n "$ns" addr add "$4" dev eth0 nodad
	ip -n "$ns" link set eth0 up
}

xm_netns_path() { echo "/var/run/netns/$XM_PREFIX-$1"; }

# Run a command inside pod POD's netns and inside the test cgroup, so that the
# cgroup programs see its sockets. The cgroup is joined first: `ip netns exec`
# mounts a fresh /sys, which hides the cgroup2 mount.
XM_POD_EXEC='echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"'
xm_pod_exec() {
	local ns=$XM_PREFIX-$1; shift
	sh -c "$XM_POD_EXEC" "$XM_CGROUP" "$ns" "$@"
}

# xm_pod_bg POD CMD...: xm_pod_exec in the background (xm_bg), execs all the
# way down, so that XM_LAST_PID is the command's own pid: `kill` stops it and
# `wait` returns when it has exited (a --csv written, its sockets closed).
xm_pod_bg() {
	local ns=$XM_PREFIX-$1; shift
	xm_bg sh -c "$XM_POD_EXEC" "$XM_CGROUP" "$ns" "$@"
}

# XM_AGENT_WRAP: a command prefix the agent runs under (e.g. nsenter into a node).
xm_agent_start() {
	# shellcheck disable=SC2086
	xm_bg ${XM_AGENT_WRAP:-} "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" "$@"
	XM_AGENT_PID=$XM_LAST_PID
	# Ready: the datapath is loaded and the control socket answers.
	for _ in $(seq "$(xm_size 50 300)"); do
		"$XM_BIN/xmeshctl" --pin-root "$XM_PIN" -j status 2>/dev/null |
			grep -q '"agent_socket": *true' && return 0
		kill -0 "$XM_AGENT_PID" 2>/dev/null || xm_fail "agent exited during start"
		sleep 0.1
	done
	xm_fail "agent not ready after $(xm_size 5 30) s"
}

xm_ctl() { "$XM_BIN/xmeshctl" --pin-root "$XM_PIN" "$@"; }

# xm_rebal_config PORT ALGO REBALANCE: $XM_RUN_DIR/agent.json of the rebalancing tests: VIP
# 10.79.0.20:PORT balanced by ALGO over 10.79.1.10-12:PORT, ticks of 250 ms, "rebalance": REBALANCE
xm_rebal_config() {
	cat >"$XM_RUN_DIR/agent.json" <<EOF2
{
  "weighting": {"tick_ms": 250},
  "services": [
    {"name": "pool", "vip": "10.79.0.20", "port": $1, "protocol": "tcp", "algorithm": "$2",
     "rebalance": $3,
     "backends": [
       {"address": "10.79.1.10", "port": $1},
       {"address": "10.79.1.11", "port": $1},
       {"address": "10.79.1.12", "port": $1}]}
  ]
}
EOF2
}

# xm_l3x_services NSVC NBE [PARAMS_JSON]: an agent config (stdout) of NSVC l3x services of NBE
# backends each, VIPs 10.96.x.y:80, backends 10.78.x.y:80 (no pods: the
# weighting tests feed the probes with fake_probes), ticks of 500 ms
xm_l3x_services() {
	local params='{}'
	[ -n "${3:-}" ] && params=$3
	python3 - "$1" "$2" "$params" <<'PY'
import json, sys
nsvc, nbe = int(sys.argv[1]), int(sys.argv[2])
svcs = [{"name": f"s{s}", "vip": f"10.96.{s // 250}.{s % 250 + 1}", "port": 80,
         "algorithm": "l3x", "params": json.loads(sys.argv[3]),
         "backends": [{"address": f"10.78.{(s * nbe + b) // 250}.{(s * nbe + b) % 250 + 1}",
                       "port": 80} for b in range(nbe)]} for s in range(nsvc)]
print(json.dumps({"weighting": {"tick_ms": 500}, "services": svcs}))
PY
}

# xm_fake_l3x_start NAME PARAMS_JSON SECS: an agent with NSVC x NBE l3x services
# (every one's "params" PARAMS_JSON; log $XM_RUN_DIR/agent-NAME.log) fed by
# fake_probes at 20 rps per backend, 1 % failures, for SECS (XM_FAKE_PID),
# after 6 s for filters, tables and the failure rate to settle; xm_fake_l3x_stop ends both
xm_fake_l3x_start() {
	xm_l3x_services "$NSVC" "$NBE" "$2" >"$XM_RUN_DIR/agent-$1.json"
	xm_agent_start --config "$XM_RUN_DIR/agent-$1.json" 2>"$XM_RUN_DIR/agent-$1.log"
	xm_lb_wait "10.96.0.$NSVC:80" "$NBE"
	xm_bg "$XM_TOOLS/fake_probes" --pin-root "$XM_PIN" --rps 20 --period-ms 500 \
		--duration "$3" --fail-pct 1 >/dev/null
	XM_FAKE_PID=$XM_LAST_PID
	sleep 6
}

xm_fake_l3x_stop() {
	kill -TERM "$XM_AGENT_PID"
	wait "$XM_AGENT_PID" 2>/dev/null
	xm_kill_tree "$XM_FAKE_PID"
	wait "$XM_FAKE_PID" 2>/dev/null
}

# xm_loop_counts FIELD...: those counters of the weighting loop (xmeshctl -j top,
# "loop"), read at once, on one line
xm_loop_counts() {
	xm_ctl -j top count 1 | python3 -c 'import json, sys
l = json.load(sys.stdin)["loop"]
print(*(l[k] for k in sys.argv[1:]))' "$@"
}

# xm_backend_field FILE BACKEND KEY: KEY of BACKEND (ADDR:PORT) in a saved
# `xmeshctl -j backend list`: retired, held and idle from its rebalance object, else the row's
xm_backend_field() {
	python3 - "$@" <<'EOF2'
import json, sys
rows = {r["backend"]: r for r in json.load(open(sys.argv[1]))}
r = rows[sys.argv[2]]
k = sys.argv[3]
print(r["rebalance"][k] if k in ("retired", "held", "idle") else r[k])
EOF2
}

# xm_register POD IP...: register pod addresses for redirection (netns of POD).
xm_register() {
	local pod=$1 ip; shift
	for ip in "$@"; do xm_ctl endpoint add "$ip" netns "$(xm_netns_path "$pod")"; done
}

# The common redirect world: node n1, pods a (10.77.0.2) and b (10.77.0.3),
# the agent running, both addresses registered.
xm_two_pods() {
	xm_node n1
	xm_pod n1 a 10.77.0.2/24
	xm_pod n1 b 10.77.0.3/24
	xm_agent_start "$@"
	xm_register a 10.77.0.2
	xm_register b 10.77.0.3
}

# xm_cni_world: node n1 and a temporary dir for running xmesh-cni as a
# runtime would: $TMP/bin/xmesh-cni, records in $TMP/state (also the agent's,
# XMESH_CNI_STATE_DIR). Sets TMP, NODE (n1's netns path) and NET (network name).
xm_cni_world() {
	TMP=$(mktemp -d "/tmp/$XM_PREFIX-cni.XXXXXX")
	xm_cleanup_extra() { rm -rf "$TMP"; }
	xm_node n1
	NODE=/var/run/netns/$XM_PREFIX-n1
	mkdir -p "$TMP/bin"
	ln -s "$XM_BIN/xmesh-cni" "$TMP/bin/xmesh-cni"
	export XMESH_CNI_STATE_DIR=$TMP/state
	NET=xm-$XM_ID
}

# xm_wait_listen POD PORT: until a TCP socket listens on PORT in POD's netns (slow machines).
xm_wait_listen() {
	for _ in $(seq "$(xm_size 50 300)"); do
		[ -n "$(ip netns exec "$XM_PREFIX-$1" ss -Hltn "sport = :$2")" ] && return 0
		sleep 0.05
	done
	xm_fail "nothing listens on port $2 in pod $1"
}

# xm_stat NAME: one counter from `xmeshctl -j stats`.
xm_stat() { xm_ctl -j stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# xm_kfeature NAME: 1 if the running agent found kernel feature NAME (xmeshctl status), else 0
xm_kfeature() {
	xm_ctl -j status | python3 -c "import json,sys
print(int(any(f['name'] == '$1' and f['present'] for f in json.load(sys.stdin)['kernel_features'])))"
}

# ---- LB helpers (tests/integration/test_lb_*.sh) ----

# xm_lb_wait SERVICE N: wait until SERVICE (VIP:PORT[/proto]) has N selectable backends.
xm_lb_wait() {
	local n
	for _ in $(seq "$(xm_size 50 300)"); do
		# a service not there yet is not an error (set -e would end the test here)
		n=$(xm_ctl -j service show "$1" 2>/dev/null |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["backend_count"])' 2>/dev/null) || n=
		[ "$n" = "$2" ] && return 0
		sleep 0.1
	done
	xm_fail "service $1 did not reach $2 selectable backends (has '${n:-none}')"
}

# xm_json EXPR: evaluate a Python expression on the JSON on stdin (bound to j);
# objects and lists come out as JSON again, so calls can be chained.
xm_json() {
	python3 -c "import json,sys; j=json.load(sys.stdin); r=($1); print(json.dumps(r) if isinstance(r,(dict,list)) else r)"
}
