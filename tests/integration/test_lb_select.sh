#!/bin/bash
# SPDX-License-Identifier: MIT
# Connect-time LB, TCP over IPv4: a VIP spreads 20k connects over three
# backends in proportion to weights 1:2:5 (chi-square), getpeername() shows
# the VIP; a weight change and a service removal steer new connections only
# (a held connection keeps working with its backend); a backend removed from
# the config file (inotify reload) gets no new connections; a service
# without backends refuses with ECONNREFUSED; bad config files are rejected
# with FILE:LINE:COL and the running services stay; SIGHUP re-reads the file.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
for i in 1 2 3; do
	xm_pod n1 b$i 10.77.0.$((i + 2))/24
	# backends are outside the test cgroup: remote-style, plain TCP
	xm_bg ip netns exec "$XM_PREFIX-b$i" "$XM_TOOLS/xm-serve" label --listen 10.77.0.$((i + 2)):8080 --label b$i
	xm_bg ip netns exec "$XM_PREFIX-b$i" "$XM_TOOLS/xm-serve" http --listen 10.77.0.$((i + 2)):8081 --label b$i
done
CFG=$XM_RUN_DIR/xm-config.json
write_config() { # $1: backends of the weighted service, as JSON
	cat >"$CFG.tmp" <<EOC
{
  "services": [
    { "name": "web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp",
      "backends": [ $1 ] },
    { "name": "api", "vip": "10.96.0.11", "port": 80,
      "backends": [
        { "address": "10.77.0.3", "port": 8081 },
        { "address": "10.77.0.4", "port": 8081 },
        { "address": "10.77.0.5", "port": 8081 } ] }
  ]
}
EOC
	mv "$CFG.tmp" "$CFG"
}
B3='{ "address": "10.77.0.3", "port": 8080, "weight": 1 },
        { "address": "10.77.0.4", "port": 8080, "weight": 2 },
        { "address": "10.77.0.5", "port": 8080, "weight": 5, "cluster": "paris" }'
write_config "$B3"
AGENT_LOG=$XM_RUN_DIR/agent.log
xm_agent_start --config "$CFG" 2>>"$AGENT_LOG"
xm_lb_wait 10.96.0.10:80 3
xm_lb_wait 10.96.0.11:80 3

# --- 1:2:5 over 20k connects (4k with XM_SMALL) ---
N=$(xm_size 20000 4000)
before=$(xm_stat lb_connects)
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t 10.96.0.10:80 -P label --new -n "$N")
xm_log "$N connects: $out"
chi=$(echo "$out" | xm_json '(lambda l: sum((l.get(k,0) - '"$N"'*w/8)**2 / ('"$N"'*w/8) for k, w in (("b1",1),("b2",2),("b3",5))))(j["backend"])')
total=$(echo "$out" | xm_json 'sum(j["backend"].values())')
xm_assert "$total" -eq "$N" "every connect reached a backend"
# chi-square, 2 degrees of freedom: 13.8 is the 0.1% critical value
xm_assert "$(python3 -c "print(int($chi < 13.82))")" -eq 1 "shares match 1:2:5 (chi2=$chi < 13.82)"
xm_assert "$(echo "$out" | xm_json 'j["not_vip"]')" -eq 0 "getpeername() is the VIP"
xm_assert $(($(xm_stat lb_connects) - before)) -eq "$N" "lb_connects counts each connect"

# --- weight change and service removal: new connections only ---
touch_file=$XM_RUN_DIR/release
xm_pod_exec c "$XM_TOOLS/xm-load" hold -j -t 10.96.0.11:80 --wait-file "$touch_file" >"$XM_RUN_DIR/hold.out" 2>"$XM_RUN_DIR/hold.err" &
hold_pid=$!
XM_PIDS+=("$hold_pid")
for _ in $(seq "$(xm_size 50 300)"); do grep -q "answered by" "$XM_RUN_DIR/hold.err" && break; sleep 0.1; done
held=$(sed -n 's/.*answered by //p' "$XM_RUN_DIR/hold.err")
[ -n "$held" ] || xm_fail "held connection got no first answer"
held_ip=10.77.0.$((${held#b} + 2))
xm_ctl backend set 10.96.0.11:80 "$held_ip:8081" weight 0
xm_lb_wait 10.96.0.11:80 2
M=$(xm_size 600 200)
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.11:80 -n "$M" -c 2 -k 1)
xm_log "after weight 0 for $held: $out"
xm_assert "$(echo "$out" | xm_json "j['backend'].get('$held',0)")" -eq 0 \
	"no new connection to the backend whose weight became 0"
xm_assert "$(echo "$out" | xm_json 'sum(j["backend"].values())')" -eq "$M" \
	"the other backends took all $M connections"
xm_ctl service del 10.96.0.11:80
xm_assert "$(xm_ctl -j service list | xm_json 'len(j)')" -eq 1 "service deleted through the agent"
touch "$touch_file"
wait "$hold_pid" || true
xm_log "held connection: $(cat "$XM_RUN_DIR/hold.out")"
xm_assert "$(xm_json "j['backend'].get('$held',0)" <"$XM_RUN_DIR/hold.out")" -eq 2 \
	"the held connection still talks to its backend after weight change and service removal"

# --- backend removed from the file (inotify reload) ---
write_config '{ "address": "10.77.0.4", "port": 8080, "weight": 2 },
        { "address": "10.77.0.5", "port": 8080, "weight": 5, "cluster": "paris" }'
xm_lb_wait 10.96.0.10:80 2
R=$(xm_size 3000 600)
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t 10.96.0.10:80 -P label --new -n "$R")
xm_log "after removing b1: $out"
xm_assert "$(echo "$out" | xm_json 'j["backend"].get("b1",0)')" -eq 0 "removed backend gets no connection"
xm_assert "$(echo "$out" | xm_json 'j["backend"]["b2"] + j["backend"]["b3"]')" -eq "$R" \
	"the remaining backends take all"

# --- empty service: ECONNREFUSED, not EPERM, not a hang ---
xm_ctl service add '{"vip": "10.96.0.12", "port": 80, "backends": []}'
xm_lb_wait 10.96.0.12:80 0
before=$(xm_stat lb_no_backend)
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t 10.96.0.12:80 -P label --new -n 20)
xm_log "empty service: $out"
xm_assert "$(echo "$out" | xm_json 'j.get("errno",{}).get("ECONNREFUSED",0)')" -eq 20 "connect() to an empty service: ECONNREFUSED"
xm_assert $(($(xm_stat lb_no_backend) - before)) -eq 20 "lb_no_backend counts refusals"

# --- SIGHUP: the file is read again and replaces control-socket changes ---
xm_ctl service del 10.96.0.10:80
xm_assert "$(xm_ctl -j service list | xm_json '",".join(sorted(s["service"] for s in j))')" = \
	"10.96.0.11:80/tcp,10.96.0.12:80/tcp" "service deleted through the control socket"
kill -HUP "$XM_AGENT_PID"
xm_lb_wait 10.96.0.10:80 2
xm_assert "$(xm_ctl -j service list | xm_json '",".join(sorted(s["service"] for s in j))')" = \
	"10.96.0.10:80/tcp,10.96.0.11:80/tcp" "SIGHUP: the file's services, and only those"

# --- bad config files: rejected with a location, services untouched ---
reject() { # $1: expected "line:col: text" fragment
	local n
	for _ in $(seq 50); do
		n=$(grep -c "config rejected" "$AGENT_LOG" || true)
		[ "$n" -gt "$rejected" ] && break
		sleep 0.1
	done
	grep "config rejected" "$AGENT_LOG" | tail -n1 | grep -q -- "$CFG:$1" ||
		xm_fail "expected rejection at $CFG:$1, log says: $(grep 'config rejected' "$AGENT_LOG" | tail -n1)"
	rejected=$n
	xm_log "ok: rejected with $CFG:$1"
}
rejected=0
printf '{\n  "services": [\n    { "vip": "10.96.0.10", "port": 80,, }\n  ]\n}\n' >"$CFG.tmp"; mv "$CFG.tmp" "$CFG"
reject "3:39: string or '}' expected"
printf '{\n  "services": [\n    { "vip": "10.96.0.10", "port": 80,\n      "backends": [ { "address": "10.77.0.300", "port": 8080 } ] }\n  ]\n}\n' >"$CFG.tmp"; mv "$CFG.tmp" "$CFG"
reject '4:34: "address" must be an IPv4 or IPv6 address'
printf '{ "services": [ { "vip": "10.96.0.10", "port": 80, "algorithm": "fastest" } ] }\n' >"$CFG.tmp"; mv "$CFG.tmp" "$CFG"
reject '1:65: unknown algorithm'
xm_assert "$(xm_ctl -j service show 10.96.0.10:80 | xm_json 'j["backend_count"]')" -eq 2 \
	"running service unchanged after rejected files"
xm_assert "$(xm_ctl -j service list | xm_json "len(j)")" -eq 2 "all services of the last good file kept"
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t 10.96.0.10:80 -P label --new -n 100)
xm_assert "$(echo "$out" | xm_json 'sum(j["backend"].values())')" -eq 100 "still balancing"
