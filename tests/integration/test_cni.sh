#!/bin/bash
# SPDX-License-Identifier: MIT
# xmesh-cni behind Debian's reference plugins (bridge + host-local + portmap),
# run per the CNI spec by tests/integration/cni_chain.py inside a node netns:
#   - fail-open: ADD with no datapath succeeds and the agent registers the pod
#     when it starts (start order does not matter);
#   - 50 pods: ADD, CHECK, traffic between them redirected with no manual
#     `xmeshctl endpoint add`, DEL, DEL again;
#   - a plugin killed in the middle of ADD: DEL undoes it, ADD again works;
#   - ADD twice, prevResult passed through unchanged, 0.4.0 and 0.3.0 chains;
#   - spec error codes for bad input; GC; STATUS; VERSION.
set -eu
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
xm_setup
xm_cni_world

conflist() { # VERSION FILE
	cat >"$2" <<EOF
{ "cniVersion": "$1", "name": "$NET",
  "plugins": [
    { "type": "bridge", "bridge": "xmb$XM_ID", "isGateway": true, "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.78.0.0/24" }]],
                "dataDir": "$TMP/ipam" } },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "xmesh-cni", "pinRoot": "$XM_PIN", "stateDir": "$TMP/state",
      "logFile": "$TMP/cni.log", "logLevel": "debug" } ] }
EOF
}
conflist 1.0.0 "$TMP/net.conflist"

# The chain runs in the node's netns only (nsenter --net): `ip netns exec`
# would also mount a fresh /sys and hide the bpffs the pins live in.
chain() { # CONFLIST CMD TARGETS...
	local cl=$1; shift
	nsenter --net="$NODE" python3 "$HERE/cni_chain.py" --conflist "$cl" --cache "$TMP/cache" \
		--path "/usr/lib/cni:$TMP/bin" "$@"
}
pod_ns() { xm_netns "$1"; }
target() { echo "cid-$XM_ID-$1=$(xm_netns_path "$1")"; }
# Number of lines of chain output that report ok / a field of the JSON on stdin.
count_ok() { grep -c '"ok": true' || true; }
jfield() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
cni_eps() { # endpoints registered by the plugin, as "ip owner cookie" lines
	xm_ctl -j endpoint list | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["source"] == "cni":
        print(e["ip"], e["owner"], e["netns_cookie"])'
}
n_cni_eps() { cni_eps | grep -c . || true; }
records() { ls "$TMP/state/$NET" 2>/dev/null | grep -c ':' || true; }
# Run xmesh-cni alone, as the runtime would at the end of the chain.
cni() { # CMD STDIN [VAR=VALUE...]; prints stdout, returns its exit status
	local cmd=$1 in=$2; shift 2
	printf '%s' "$in" | env CNI_COMMAND="$cmd" CNI_PATH="$TMP/bin" "$@" \
		nsenter --net="$NODE" "$XM_BIN/xmesh-cni" 2>>"$TMP/stderr"
}
code_of() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get("code", "none"))'; }

# --- fail-open: no datapath yet -------------------------------------------
pod_ns p0
out=$(chain "$TMP/net.conflist" add "$(target p0)") || xm_fail "ADD without a datapath: $out"
ip0=$(echo "$out" | jfield 'd["result"]["ips"][0]["address"].split("/")[0]')
[ ! -e "$XM_PIN" ] || xm_fail "the plugin must not create the pin root"
grep -q "no xmesh datapath" "$TMP/cni.log" || xm_fail "fail-open ADD not logged to logFile"
xm_assert "$(records)" -eq 1 "ADD without a datapath leaves a record for the agent"
# s0 is added too, then its netns disappears without a DEL: a stale record.
pod_ns s0
chain "$TMP/net.conflist" add "$(target s0)" >/dev/null || xm_fail "ADD s0"
ip0s=$(ip -n "$XM_PREFIX-s0" -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)
ip netns del "$XM_PREFIX-s0"
xm_agent_start
xm_assert "$(cni_eps | grep -c "^$ip0 cid-$XM_ID-p0 ")" -eq 1 \
	"agent started after the pod registered it from the record ($ip0)"
cookie=$(cni_eps | awk -v ip="$ip0" '$1 == ip {print $3}')
xm_assert "$cookie" -gt 0 "registered with a netns cookie"
xm_assert "$(cni_eps | grep -c "^$ip0s " || true)" -eq 0 "a record whose netns is gone is not replayed"
chain "$TMP/net.conflist" del "cid-$XM_ID-s0=$(xm_netns_path s0)" >/dev/null || xm_fail "DEL of a pod whose netns is gone"
xm_assert "$(records)" -eq 1 "DEL without the netns removed the stale record"

# --- 50 pods through the chain ----------------------------------------------
targets=("$(target p0)")
for i in $(seq 1 49); do pod_ns "p$i"; targets+=("$(target "p$i")"); done
t0=$SECONDS
out=$(chain "$TMP/net.conflist" add "${targets[@]:1}") || xm_fail "ADD of 49 pods: $(echo "$out" | grep -v '"ok": true' | head -3)"
xm_log "49 chain ADDs in $((SECONDS - t0)) s"
xm_assert "$(n_cni_eps)" -eq 50 "50 pods registered by the plugin"
xm_assert "$(records)" -eq 50 "50 records"
out=$(chain "$TMP/net.conflist" check "${targets[@]}") || xm_fail "CHECK: $(echo "$out" | grep -v '"ok": true' | head -3)"
xm_assert "$(echo "$out" | count_ok)" -eq 50 "CHECK passes for all 50"
xm_assert "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("pod"))' \
	"$TMP/state/$NET/cid-$XM_ID-p7:eth0.json")" = "default/cid-$XM_ID-p7" "the record names the Kubernetes pod (CNI_ARGS)"
# The host veth the plugin recorded is the pod's peer in the node netns.
host_if=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hostIfname"])' \
	"$TMP/state/$NET/cid-$XM_ID-p7:eth0.json")
peer=$(ip -n "$XM_PREFIX-p7" -o link show eth0 | sed -n 's/.*@if\([0-9]*\):.*/\1/p')
xm_assert "$(ip -n "$XM_PREFIX-n1" -o link show "$host_if" | cut -d: -f1)" = "$peer" \
	"recorded host veth $host_if is eth0's peer"

# Traffic: pod i -> pod i+1 (ring), byte-exact, counted by the redirect datapath.
ips=()
for i in $(seq 0 49); do
	ips+=("$(ip -n "$XM_PREFIX-p$i" -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)")
done
for i in $(seq 0 49); do
	xm_pod_bg "p$i" "$XM_TOOLS/xm-serve" traffic --listen "${ips[$i]}:7300" >/dev/null
done
for i in $(seq 0 49); do # every server listening (a loaded machine starts them slowly)
	for _ in $(seq 100); do
		[ -n "$(ip netns exec "$XM_PREFIX-p$i" ss -Hltn 'sport = :7300')" ] && break
		sleep 0.1
	done
done
before=$(xm_stat redirect_msgs)
for i in $(seq 0 49); do
	j=$(((i + 1) % 50))
	xm_pod_exec "p$i" "$XM_TOOLS/xm-load" traffic -t "$(xm_hostport "${ips[$j]}" 7300)" >/dev/null ||
		xm_fail "traffic p$i -> p$j (${ips[$j]})"
done
delta=$(( $(xm_stat redirect_msgs) - before ))
# Each connection's answer (written after accept) finds both sockets in the map.
xm_assert "$delta" -ge 50 "traffic between the 50 CNI-added pods was redirected"
for p in "${XM_PIDS[@]:1}"; do xm_kill_tree "$p"; done

# --- DEL, DEL again -----------------------------------------------------------
out=$(chain "$TMP/net.conflist" del "${targets[@]}") || xm_fail "DEL: $(echo "$out" | grep -v '"ok": true' | head -3)"
xm_assert "$(n_cni_eps)" -eq 0 "DEL removed every endpoint"
xm_assert "$(records)" -eq 0 "DEL removed every record"
out=$(chain "$TMP/net.conflist" del "${targets[@]:0:5}") || xm_fail "second DEL: $out"
xm_assert "$(echo "$out" | count_ok)" -eq 5 "DEL of already deleted pods succeeds"

# --- prevResult unchanged; ADD twice; DEL twice with prevResult --------------
# q1 has a container id like a runtime's (64 hex digits): the endpoint's owner
# keeps 63 of them, and ownership must still match.
pod_ns q1
Q1=$(printf '%s' "$XM_ID-q1" | sha256sum | cut -c1-64)
Q1_OWNER=${Q1:0:63}
chain "$TMP/net.conflist" add "$Q1=$(xm_netns_path q1)" >/dev/null || xm_fail "ADD q1"
xm_assert "$(cni_eps | grep -c " $Q1_OWNER ")" -eq 1 "a 64-character container id is the owner (63 kept)"
prev=$(cat "$TMP/cache/$NET-$Q1-eth0.json")
conf=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["plugins"][2]
c.update(name=sys.argv[2], cniVersion="1.0.0", prevResult=json.loads(sys.argv[3]))
print(json.dumps(c))' "$TMP/net.conflist" "$NET" "$prev")
env_q1=(CNI_CONTAINERID="$Q1" CNI_NETNS="$(xm_netns_path q1)" CNI_IFNAME=eth0)
for round in 1 2; do
	out=$(cni ADD "$conf" "${env_q1[@]}") || xm_fail "ADD twice, round $round"
	same=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]) == json.loads(sys.argv[2]))' "$out" "$prev")
	xm_assert "$same" = True "ADD prints prevResult unchanged (round $round)"
done
xm_assert "$(cni_eps | grep -c " $Q1_OWNER ")" -eq 1 "ADD twice: one endpoint"
cni CHECK "$conf" "${env_q1[@]}" >/dev/null || xm_fail "CHECK after ADD twice"
# A re-ADD with one more address, then with the original result again: the
# address the last ADD no longer has is removed (DEL would never see it).
ip -n "$XM_PREFIX-q1" addr add 10.78.0.250/24 dev eth0
conf2=$(echo "$conf" | python3 -c 'import json,sys; c=json.load(sys.stdin)
c["prevResult"]["ips"].append({"interface": 2, "address": "10.78.0.250/24"}); print(json.dumps(c))')
cni ADD "$conf2" "${env_q1[@]}" >/dev/null || xm_fail "ADD with two addresses"
xm_assert "$(cni_eps | grep -c " $Q1_OWNER ")" -eq 2 "re-ADD registered the extra address"
cni ADD "$conf" "${env_q1[@]}" >/dev/null || xm_fail "ADD with the original result"
xm_assert "$(cni_eps | grep -c "^10.78.0.250 " || true)" -eq 0 "re-ADD removed the address it no longer has"
ip -n "$XM_PREFIX-q1" addr del 10.78.0.250/24 dev eth0
# CHECK notices an endpoint that disappeared.
q1ip=$(echo "$prev" | jfield 'd["ips"][0]["address"].split("/")[0]')
xm_ctl endpoint del "$q1ip" >/dev/null
out=$(cni CHECK "$conf" "${env_q1[@]}") && xm_fail "CHECK must fail when the endpoint is gone"
xm_assert "$(echo "$out" | code_of)" = 100 "CHECK reports the missing endpoint"
cni ADD "$conf" "${env_q1[@]}" >/dev/null
for round in 1 2; do
	cni DEL "$conf" "${env_q1[@]}" >/dev/null || xm_fail "DEL with prevResult, round $round"
done
xm_assert "$(cni_eps | grep -c " $Q1_OWNER " || true)" -eq 0 "DEL twice with prevResult"
chain "$TMP/net.conflist" del "$Q1=$(xm_netns_path q1)" >/dev/null

# --- killed in the middle of ADD --------------------------------------------
pod_ns k1
for where in after-register after-state; do
	# The test build has the crash points; the shipped plugin has none.
	ln -sf "$XM_TOOLS/xmesh-cni-crash" "$TMP/bin/xmesh-cni"
	out=$(XMESH_CNI_TEST_CRASH=$where chain "$TMP/net.conflist" add "$(target k1)") &&
		xm_fail "ADD with a crash at $where must fail"
	ln -sf "$XM_BIN/xmesh-cni" "$TMP/bin/xmesh-cni"
	xm_assert "$(records)" -eq 1 "crash $where: the record was written first"
	# The runtime's answer to a failed ADD: DEL (no cached result), then ADD again.
	chain "$TMP/net.conflist" del "$(target k1)" >/dev/null || xm_fail "DEL after crash $where"
	xm_assert "$(records)" -eq 0 "DEL after crash $where removed the record"
	xm_assert "$(cni_eps | grep -c "cid-$XM_ID-k1" || true)" -eq 0 "DEL after crash $where removed the endpoint"
	out=$(chain "$TMP/net.conflist" add "$(target k1)") || xm_fail "ADD after crash $where: $out"
	k1ip=$(echo "$out" | jfield 'd["result"]["ips"][0]["address"].split("/")[0]')
	xm_assert "$(cni_eps | grep -c "^$k1ip cid-$XM_ID-k1 ")" -eq 1 "ADD after crash $where registered"
	chain "$TMP/net.conflist" check "$(target k1)" >/dev/null || xm_fail "CHECK after re-ADD"
	chain "$TMP/net.conflist" del "$(target k1)" >/dev/null
done

# --- older configs: 0.4.0, and 0.3.0 (what Antrea's conflist declares) -------
pod_ns v4
for v in 0.4.0 0.3.0; do
	conflist "$v" "$TMP/net-$v.conflist"
	out=$(chain "$TMP/net-$v.conflist" add "$(target v4)") || xm_fail "$v ADD: $out"
	xm_assert "$(echo "$out" | jfield 'd["result"]["cniVersion"]')" = "$v" "$v result"
	xm_assert "$(cni_eps | grep -c "cid-$XM_ID-v4")" -eq 1 "$v chain registers the pod"
	if [ "$v" = 0.4.0 ]; then
		chain "$TMP/net-$v.conflist" check "$(target v4)" >/dev/null || xm_fail "$v CHECK"
	fi
	chain "$TMP/net-$v.conflist" del "$(target v4)" >/dev/null || xm_fail "$v DEL"
	xm_assert "$(cni_eps | grep -c "cid-$XM_ID-v4" || true)" -eq 0 "$v DEL"
done

# --- errors: spec codes on stdout, exit non-zero -------------------------------
expect_code() { # WANT WHAT CMD STDIN [VAR=VALUE...]
	local want=$1 what=$2 out rc=0; shift 2
	out=$(cni "$@") || rc=$?
	[ "$rc" -ne 0 ] || xm_fail "$what: exit status 0"
	xm_assert "$(echo "$out" | code_of)" = "$want" "$what -> code $want"
}
expect_code 6 "bad JSON" ADD '{"cniVersion": "1.0.0", "name": ' "${env_q1[@]}"
nopr=$(echo "$conf" | python3 -c 'import json,sys; c=json.load(sys.stdin); del c["prevResult"]; print(json.dumps(c))')
expect_code 7 "ADD without prevResult" ADD "$nopr" "${env_q1[@]}"
expect_code 7 "CHECK without prevResult" CHECK "$nopr" "${env_q1[@]}"
v9=$(echo "$conf" | python3 -c 'import json,sys; c=json.load(sys.stdin); c["cniVersion"]="9.9.9"; print(json.dumps(c))')
expect_code 1 "unknown cniVersion" ADD "$v9" "${env_q1[@]}"
expect_code 3 "netns that does not exist" ADD "$conf" CNI_CONTAINERID=x1 CNI_IFNAME=eth0 \
	CNI_NETNS=/var/run/netns/$XM_PREFIX-nonexistent
expect_code 4 "netns path that is not a netns" ADD "$conf" CNI_CONTAINERID=x1 CNI_IFNAME=eth0 \
	CNI_NETNS=/etc/hostname
expect_code 4 "relative netns path" ADD "$conf" CNI_CONTAINERID=x1 CNI_IFNAME=eth0 CNI_NETNS=netns
expect_code 4 "missing CNI_CONTAINERID" ADD "$conf" CNI_IFNAME=eth0 CNI_NETNS="$(xm_netns_path q1)"
expect_code 4 "bad CNI_IFNAME" ADD "$conf" CNI_CONTAINERID=x1 CNI_IFNAME=a/b CNI_NETNS="$(xm_netns_path q1)"
ver=$(echo '{"cniVersion":"1.0.0"}' | CNI_COMMAND=VERSION "$XM_BIN/xmesh-cni")
xm_assert "$(echo "$ver" | jfield '",".join(d["supportedVersions"])')" = "0.3.0,0.3.1,0.4.0,1.0.0,1.1.0" "VERSION"
c11=$(echo "$conf" | python3 -c 'import json,sys; c=json.load(sys.stdin); c["cniVersion"]="1.1.0"; del c["prevResult"]; print(json.dumps(c))')
cni STATUS "$c11" >/dev/null || xm_fail "STATUS on 1.1.0"
expect_code 1 "STATUS on a 1.0.0 config" STATUS "$nopr"
c03=$(echo "$conf" | python3 -c 'import json,sys; c=json.load(sys.stdin); c["cniVersion"]="0.3.0"; print(json.dumps(c))')
expect_code 1 "CHECK on a 0.3.0 config (CHECK came with 0.4.0)" CHECK "$c03" "${env_q1[@]}"

# --- GC ------------------------------------------------------------------
for p in g1 g2 g3; do pod_ns "$p"; done
chain "$TMP/net.conflist" add "$(target g1)" "$(target g2)" "$(target g3)" >/dev/null || xm_fail "ADD g1..g3"
# g3's record is lost (state dir wiped): its endpoint has nobody to DEL it.
rm "$TMP/state/$NET/cid-$XM_ID-g3:eth0.json"
xm_ctl endpoint add 10.78.200.1 netns "$(xm_netns_path g1)" >/dev/null # manual: not the plugin's
out=$(chain "$TMP/net.conflist" gc "cid-$XM_ID-g1") || xm_fail "GC: $out"
xm_assert "$(echo "$out" | count_ok)" -eq 1 "GC ran (xmesh-cni is the 1.1.0 plugin of the chain)"
xm_assert "$(cni_eps | grep -c "cid-$XM_ID-g1")" -eq 1 "GC keeps the valid attachment"
xm_assert "$(cni_eps | grep -c "cid-$XM_ID-g[23]" || true)" -eq 0 "GC removed the endpoints of g2 and g3"
xm_assert "$(records)" -eq 1 "GC removed g2's record"
xm_assert "$(xm_ctl -j endpoint list | grep -c 10.78.200.1)" -eq 1 "GC keeps manual endpoints"
chain "$TMP/net.conflist" del "$(target g1)" "$(target g2)" "$(target g3)" >/dev/null || xm_fail "DEL g1..g3"
xm_assert "$(n_cni_eps)" -eq 0 "nothing left"

# --- a config written by the installer is one the runtime can run ---------------
# The reference bridge example (.conf), made safe for the test (own bridge name,
# host-local state in the temp dir), chained by `xmesh-cni conflist add`, then
# run as the runtime would run the resulting list.
mkdir -p "$TMP/netd"
python3 - "$XM_TOP/tests/fixtures/cni/10-mynet.conf" "$TMP/netd/10-mynet.conf" "xmc$XM_ID" "$TMP/ipam2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["bridge"], c["ipMasq"] = sys.argv[3], False
c["ipam"]["dataDir"], c["ipam"]["subnet"] = sys.argv[4], "10.80.0.0/24"
json.dump(c, open(sys.argv[2], "w"))
PY
"$XM_BIN/xmesh-cni" conflist add --dir "$TMP/netd" \
	--plugin "{\"type\":\"xmesh-cni\",\"pinRoot\":\"$XM_PIN\",\"stateDir\":\"$TMP/state\"}" 2>/dev/null
pod_ns r1
out=$(chain "$TMP/netd/10-mynet.conflist" add "$(target r1)") || xm_fail "ADD through the installer's list: $out"
r1ip=$(echo "$out" | jfield 'd["result"]["ips"][0]["address"].split("/")[0]')
xm_assert "$(cni_eps | grep -c "^$r1ip cid-$XM_ID-r1 ")" -eq 1 "the installer's list registers pods"
chain "$TMP/netd/10-mynet.conflist" del "$(target r1)" >/dev/null || xm_fail "DEL through the installer's list"
xm_assert "$(n_cni_eps)" -eq 0 "and removes them"

# --- dual stack: both addresses of a pod are registered ---------------------------
python3 - "$TMP/net.conflist" "$TMP/net-ds.conflist" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["plugins"][0]["ipam"]["ranges"].append([{"subnet": "fd78::/64"}])
json.dump(c, open(sys.argv[2], "w"))
PY
pod_ns d1
out=$(chain "$TMP/net-ds.conflist" add "$(target d1)") || xm_fail "dual-stack ADD: $out"
v6=$(echo "$out" | jfield '[i["address"] for i in d["result"]["ips"] if ":" in i["address"]][0].split("/")[0]')
xm_assert "$(cni_eps | grep -c " cid-$XM_ID-d1 ")" -eq 2 "dual stack: IPv4 and IPv6 registered"
xm_assert "$(cni_eps | grep -c "^$v6 cid-$XM_ID-d1 ")" -eq 1 "dual stack: $v6 registered"
chain "$TMP/net-ds.conflist" check "$(target d1)" >/dev/null || xm_fail "dual-stack CHECK"
chain "$TMP/net-ds.conflist" del "$(target d1)" >/dev/null || xm_fail "dual-stack DEL"
xm_assert "$(n_cni_eps)" -eq 0 "dual stack: DEL removed both"
