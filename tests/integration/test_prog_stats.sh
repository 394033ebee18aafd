#!/bin/bash
# SPDX-License-Identifier: MIT
# Per-program cost: 'xmeshctl prog list' finds every program of the pin root
# (links and pinned programs, one entry per program); 'prog profile -- CMD'
# turns the kernel's run-time statistics on for CMD only (BPF_ENABLE_STATS,
# the sysctl untouched) and reports what each program ran meanwhile: the
# connect hook once per connect() to the VIP, sockops and cgroup_skb with
# their run time. The agent exports the same counters as metrics.
# Redirection and the LB probes share one sockops program: the kernel runs
# every sockops program of the cgroup at every callback of every socket, so a
# second one would double that cost (bpf/lib/lb_sockops.h).
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 b1 10.77.0.3/24
xm_bg ip netns exec "$XM_PREFIX-b1" "$XM_TOOLS/xm-serve" http --listen 10.77.0.3:8080 --label b1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MPORT=$(free_port)
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<EOC
{ "services": [ { "vip": "10.96.0.10", "port": 80,
    "backends": [ { "address": "10.77.0.3", "port": 8080 } ] } ] }
EOC
xm_agent_start --config "$CFG" --metrics "127.0.0.1:$MPORT"
xm_lb_wait 10.96.0.10:80 1

sysctl_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
xm_ctl -j prog list >"$XM_RUN_DIR/list.json"
prog() { # file name field
	xm_json "[p for p in j['programs'] if p['name'] == '$2'][0]['$3']" <"$1"
}
for p in xm_lb_connect4 xm_lb_egress xm_lb_ingress xm_sockops xm_sk_msg; do
	xm_assert "$(prog "$XM_RUN_DIR/list.json" $p xlated_insns)" -gt 0 "program $p listed with its size"
done
n=$(xm_json 'len([p for p in j["programs"] if p["type"] == "sock_ops"])' <"$XM_RUN_DIR/list.json")
xm_assert "$n" -eq 1 "one sockops program attached (redirect and LB dispatch in it)"
[ ! -e "$XM_PIN/links/lb_sockops" ] || xm_fail "a second sockops link is pinned"
ids=$(xm_json 'len(j["programs"]) == len({p["id"] for p in j["programs"]})' <"$XM_RUN_DIR/list.json")
xm_assert "$ids" = True "one entry per program"
# the plain table is the same listing: a row per program, same id, name, size
xm_ctl prog list >"$XM_RUN_DIR/list.txt"
rows=$(xm_json "sum(1 for p in j['programs'] if any(l.split()[:3] == [str(p['id']), p['name'], p['type']] and l.split()[-2] == str(p['xlated_insns']) for l in open('$XM_RUN_DIR/list.txt')))" <"$XM_RUN_DIR/list.json")
xm_assert "$rows" -eq "$(xm_json 'len(j["programs"])' <"$XM_RUN_DIR/list.json")" "plain rows match the JSON listing"

# 40 connections, 5 requests each: 40 connect()s to the VIP
xm_ctl -j prog profile -- sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' \
	"$XM_CGROUP" "$XM_PREFIX-c" "$XM_TOOLS/xm-load" get -j -t 10.96.0.10:80 \
	-n 200 -c 4 -k 5 >"$XM_RUN_DIR/profile.json" 2>"$XM_RUN_DIR/profile.err" ||
	{ cat "$XM_RUN_DIR/profile.err" >&2; xm_fail "prog profile failed"; }
P=$XM_RUN_DIR/profile.json
xm_assert "$(prog "$P" xm_lb_connect4 run_cnt)" -eq 40 "connect4 ran once per connect() to the VIP"
xm_assert "$(prog "$P" xm_lb_connect4 run_time_ns)" -gt 0 "connect4 run time counted"
# Only the client is in the cgroup (the backend runs outside it): its socket
# has 5 callbacks (TIMEOUT_INIT, RWND_INIT, TCP_CONNECT, NEEDS_ECN,
# ACTIVE_ESTABLISHED), each one program run; two programs would make it 10.
runs=$(xm_json 'sum(p["run_cnt"] for p in j["programs"] if p["type"] == "sock_ops")' <"$P")
xm_assert "$runs" -ge $((40 * 5)) "sockops ran at every callback of the client sockets"
xm_assert "$runs" -le $((40 * 6)) "one sockops run per callback (ran $runs for 40 connections)"
xm_assert "$(prog "$P" xm_lb_egress run_cnt)" -ge 200 "cgroup_skb egress ran per packet"
xm_assert "$(xm_json 'j["duration_ns"] > 0 and j["command_exit"] == 0' <"$P")" = True "window and exit"
xm_assert "$(cat /proc/sys/kernel/bpf_stats_enabled)" = "$sysctl_before" "sysctl left alone"

# a failing command fails the profile, with its exit status
if xm_ctl prog profile -- false 2>"$XM_RUN_DIR/err"; then xm_fail "profile of 'false' succeeded"; fi
grep -q "exited with 1" "$XM_RUN_DIR/err" || xm_fail "no exit status in: $(cat "$XM_RUN_DIR/err")"
xm_log "ok: a failing command fails the profile"

curl -sf "http://127.0.0.1:$MPORT/metrics" >"$XM_RUN_DIR/metrics.txt" || xm_fail "GET /metrics failed"
if command -v promtool >/dev/null; then
	promtool check metrics <"$XM_RUN_DIR/metrics.txt" || xm_fail "promtool rejects the metrics"
fi
n=$(grep -c '^xmesh_bpf_prog_run_seconds_total{prog="xm_lb_connect4"' "$XM_RUN_DIR/metrics.txt" || true)
xm_assert "$n" -eq 1 "run time of connect4 exported as a metric"
runs=$(awk -F' ' '/^xmesh_bpf_prog_runs_total\{prog="xm_lb_connect4"/{print $2}' "$XM_RUN_DIR/metrics.txt")
xm_assert "$runs" -ge 40 "runs of connect4 exported"

# every probe update is counted per CPU (the weighting loop copies the probes
# only when this moved)
gen=$(bpftool -j map dump pinned "$XM_PIN/maps/xm_lb_probe_gen" |
	python3 -c '
import json, sys
def num(v):  # a number with BTF, else the value as hex bytes, little endian
    return v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little")
print(sum(num(v["value"]) for e in json.load(sys.stdin) for v in e["values"]))')
xm_assert "$gen" -ge 240 "probe updates counted (40 connections, 200 requests)"
