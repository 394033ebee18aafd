#!/bin/bash
# SPDX-License-Identifier: MIT
# A pod's opt-out from socket redirection by annotation (docs/redirect-compat.md):
# xmesh-cni declares the "io.kubernetes.cri.pod-annotations" capability, so
# the runtime hands it the pod's annotations in runtimeConfig (as containerd
# does; tests/integration/cni_chain.py plays the runtime here).
#   - xmesh.io/redirect: "off": none of the pod's connections is redirected;
#   - xmesh.io/redirect-skip-ports: "7801": only its connections with port
#     7801 stay on TCP, port 7802 is redirected;
#   - a pod without the annotations is redirected;
#   - a bad value fails ADD with a CNI error naming the annotation (what the
#     pod's events show), and nothing of that pod is registered;
#   - the agent started on fresh pins puts the opt-outs back from the records;
#   - DEL removes them.
set -eu
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
xm_setup
xm_cni_world
cat >"$TMP/net.conflist" <<EOF
{ "cniVersion": "1.0.0", "name": "$NET",
  "plugins": [
    { "type": "bridge", "bridge": "xmb$XM_ID", "isGateway": true, "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.78.1.0/24" }]],
                "dataDir": "$TMP/ipam" } },
    { "type": "xmesh-cni", "pinRoot": "$XM_PIN", "stateDir": "$TMP/state",
      "logFile": "$TMP/cni.log", "logLevel": "debug",
      "capabilities": { "io.kubernetes.cri.pod-annotations": true } } ] }
EOF
chain() { # ANNOTATIONS CMD POD
	ip netns list | grep -q "^$XM_PREFIX-$3\b" ||
		{ ip netns add "$XM_PREFIX-$3"; ip -n "$XM_PREFIX-$3" link set lo up; }
	nsenter --net="$NODE" python3 "$HERE/cni_chain.py" --conflist "$TMP/net.conflist" \
		--cache "$TMP/cache" --path "/usr/lib/cni:$TMP/bin" --annotations "$1" "$2" \
		"cid-$XM_ID-$3=$(xm_netns_path "$3")"
}
pod_ip() { ip -n "$XM_PREFIX-$1" -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1; }
cookie_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['netnsCookie'])" \
	"$TMP/state/$NET/cid-$XM_ID-$1:eth0.json"; }
skips() { xm_ctl -j sock skip list; }
# One exchange from pod a to IP:PORT; prints how many sockets it added to the
# redirect map's insertions and to the opt-out counter, as "inserted optout".
exchange() { # FROM IP PORT
	local i0 o0
	i0=$(xm_stat sock_inserted) o0=$(xm_stat sock_skipped_optout)
	xm_pod_exec "$1" python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"x" * 100)
got = b""
while len(got) < 100:
    b = s.recv(100 - len(got))
    if not b:
        sys.exit("EOF before the echo")
    got += b
s.close()' "$2" "$3" || xm_fail "exchange $1 -> $2:$3 failed"
	echo "$(($(xm_stat sock_inserted) - i0)) $(($(xm_stat sock_skipped_optout) - o0))"
}

xm_agent_start
chain '{"xmesh.io/redirect": "off", "app": "legacy"}' add off >/dev/null || xm_fail "ADD off"
chain '{"xmesh.io/redirect-skip-ports": "7801, 9999"}' add ports >/dev/null || xm_fail "ADD ports"
chain '{"app": "web"}' add plain >/dev/null || xm_fail "ADD plain"
for p in off ports plain; do
	for port in 7801 7802; do
		xm_pod_bg "$p" "$XM_TOOLS/xm-sockapi" echo-server "$(pod_ip "$p")" "$port"
	done
done
for p in off ports plain; do xm_wait_listen "$p" 7801; xm_wait_listen "$p" 7802; done

# The map holds what the annotations say, under each pod's own netns cookie.
c_off=$(cookie_of off) c_ports=$(cookie_of ports)
entries=$(skips | xm_json "sorted((e.get('netns_cookie'), e.get('port', 0), e.get('ports_only', False)) for e in j)")
want=$(python3 -c "import json; print(json.dumps(sorted([[$c_off, 0, False], [$c_ports, 0, True], [$c_ports, 7801, False], [$c_ports, 9999, False]])))")
[ "$entries" = "$want" ] || xm_fail "skip map holds $entries, expected $want"
xm_log "ok: skip map entries from the annotations: $entries"

# Both ends established in one exchange: 2 redirected sockets, or 1 + 1 opted out.
xm_assert "$(exchange plain "$(pod_ip plain)" 7802)" = "2 0" "plain pod to itself: redirected"
xm_assert "$(exchange plain "$(pod_ip off)" 7802)" = "1 1" "to a redirect: off pod: its end opted out"
xm_assert "$(exchange off "$(pod_ip plain)" 7801)" = "1 1" "from a redirect: off pod: its end opted out"
xm_assert "$(exchange plain "$(pod_ip ports)" 7801)" = "1 1" "to a skipped port: that pod's end opted out"
xm_assert "$(exchange plain "$(pod_ip ports)" 7802)" = "2 0" "to another port of the same pod: redirected"
xm_assert "$(exchange ports "$(pod_ip plain)" 7801)" = "1 1" "from that pod to a skipped remote port"
grep -q "redirection off for the whole pod" "$TMP/cni.log" || xm_fail "ADD did not log the opt-out"

# A bad value: ADD fails with a config error that names the annotation and the fix.
out=$(chain '{"xmesh.io/redirect-skip-ports": "5432;6379"}' add bad) && xm_fail "bad annotation accepted"
echo "$out" | grep -q '"code": 7' || xm_fail "bad annotation: not a config error: $out"
echo "$out" | grep -q 'xmesh.io/redirect-skip-ports.*separated by commas' ||
	xm_fail "bad annotation: message does not say what to write: $out"
[ ! -e "$TMP/state/$NET/cid-$XM_ID-bad:eth0.json" ] || xm_fail "bad annotation left a record"
xm_log "ok: a bad annotation fails ADD: $(echo "$out" | xm_json 'j["error"]["msg"]')"
chain '{}' del bad >/dev/null || true

# Fresh pins (an uninstall, then the agent again): the records bring the opt-outs back.
kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
"$XM_BIN/xmesh-agent" uninstall --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" --force >/dev/null 2>&1
[ ! -e "$XM_PIN" ] || xm_fail "uninstall left the pins"
xm_agent_start
xm_assert "$(skips | xm_json 'len(j)')" -eq 4 "opt-outs replayed from the records at agent start"
xm_assert "$(exchange plain "$(pod_ip ports)" 7801)" = "1 1" "after the replay: skipped port still opted out"

# DEL removes the pod's entries, and only its own.
chain '{}' del ports >/dev/null || xm_fail "DEL ports"
xm_assert "$(skips | xm_json "len([e for e in j if e['netns_cookie'] == $c_ports])")" -eq 0 \
	"DEL removed the pod's opt-outs"
xm_assert "$(skips | xm_json "len([e for e in j if e['netns_cookie'] == $c_off])")" -eq 1 \
	"another pod's opt-out kept"
chain '{}' del off >/dev/null || xm_fail "DEL off"
chain '{}' del plain >/dev/null || xm_fail "DEL plain"
xm_assert "$(skips | xm_json 'len(j)')" -eq 0 "skip map empty after every DEL"
