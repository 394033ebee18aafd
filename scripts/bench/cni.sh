#!/bin/bash
# SPDX-License-Identifier: MIT
# bench cni: what xmesh-cni adds to a pod's network setup and teardown. One
# pod, N rounds; in each round the chain bridge(+host-local) -> portmap ->
# xmesh-cni runs ADD then CHECK then DEL exactly as a runtime runs it (each
# plugin gets the previous result), and every plugin invocation is timed, so
# the plugins are measured interleaved under the same conditions. Times are
# wall clock of fork+exec+run of one plugin, from bash. Medians and p90.
# N=rounds (default 50). The agent runs, so ADD registers for real.
set -eu
. "$(dirname "$0")/../../tests/integration/lib.sh"
N=${N:-50}
xm_setup
TMP=$(mktemp -d "/tmp/$XM_PREFIX-bcni.XXXXXX")
xm_cleanup_extra() { rm -rf "$TMP"; }
xm_node n1
export XMESH_CNI_STATE_DIR=$TMP/state
xm_agent_start
xm_netns q
NODE=/var/run/netns/$XM_PREFIX-n1
cat >"$TMP/bridge.json" <<EOF
{"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"xmb$XM_ID","isGateway":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.79.0.0/24"}]],"dataDir":"$TMP/ipam"}}
EOF
echo '{"cniVersion":"1.0.0","name":"bench","type":"portmap","capabilities":{"portMappings":true}}' >"$TMP/portmap.json"
echo "{\"cniVersion\":\"1.0.0\",\"name\":\"bench\",\"type\":\"xmesh-cni\",\"pinRoot\":\"$XM_PIN\",\"stateDir\":\"$TMP/state\"}" >"$TMP/xmesh.json"

# Runs inside the node netns: N rounds, one line "PLUGIN CMD MICROSECONDS" per call.
cat >"$TMP/rounds.sh" <<'EOF'
set -eu
dir=$1 n=$2 xm=$3
export CNI_CONTAINERID=bench1 CNI_NETNS=$4 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni
with_prev() { python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["prevResult"]=json.loads(sys.argv[2]); print(json.dumps(c))' "$1" "$2"; }
call() { # NAME EXE CMD STDIN-FILE -> result on stdout, timing to fd 3
	local s e out
	s=$(date +%s%N)
	out=$(CNI_COMMAND=$3 "$2" <"$4" 2>/dev/null) || { echo "$1 $3 failed: $out" >&2; exit 1; }
	e=$(date +%s%N)
	echo "$1 $3 $(( (e - s) / 1000 ))" >&3
	printf '%s' "$out"
}
for _ in $(seq "$n"); do
	r1=$(call bridge /usr/lib/cni/bridge ADD "$dir/bridge.json")
	with_prev "$dir/portmap.json" "$r1" >"$dir/pm.in"
	r2=$(call portmap /usr/lib/cni/portmap ADD "$dir/pm.in")
	with_prev "$dir/xmesh.json" "$r2" >"$dir/xm.in"
	r3=$(call xmesh-cni "$xm" ADD "$dir/xm.in")
	with_prev "$dir/bridge.json" "$r3" >"$dir/br.chk"
	with_prev "$dir/portmap.json" "$r3" >"$dir/pm.chk"
	with_prev "$dir/xmesh.json" "$r3" >"$dir/xm.chk"
	call bridge /usr/lib/cni/bridge CHECK "$dir/br.chk" >/dev/null
	call portmap /usr/lib/cni/portmap CHECK "$dir/pm.chk" >/dev/null
	call xmesh-cni "$xm" CHECK "$dir/xm.chk" >/dev/null
	call xmesh-cni "$xm" DEL "$dir/xm.chk" >/dev/null
	call portmap /usr/lib/cni/portmap DEL "$dir/pm.chk" >/dev/null
	call bridge /usr/lib/cni/bridge DEL "$dir/br.chk" >/dev/null
done
EOF
nsenter --net="$NODE" bash "$TMP/rounds.sh" "$TMP" "$N" "$XM_BIN/xmesh-cni" \
	"/var/run/netns/$XM_PREFIX-q" 3>"$TMP/samples.txt" >/dev/null

python3 - "$TMP/samples.txt" "$N" <<'EOF'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    p, c, us = line.split()
    d[(p, c)].append(int(us) / 1000)
print("%d rounds of ADD, CHECK, DEL through bridge -> portmap -> xmesh-cni (ms per call)" % int(sys.argv[2]))
print("%-10s %-6s %8s %8s" % ("plugin", "cmd", "median", "p90"))
med = {}
for cmd in ("ADD", "CHECK", "DEL"):
    for p in ("bridge", "portmap", "xmesh-cni"):
        v = sorted(d[(p, cmd)])
        med[(p, cmd)] = statistics.median(v)
        print("%-10s %-6s %8.2f %8.2f" % (p, cmd, med[(p, cmd)], v[int(len(v) * 0.9)]))
add_chain = sum(med[(p, "ADD")] for p in ("bridge", "portmap", "xmesh-cni"))
print("bench cni: xmesh_add_ms=%.2f xmesh_del_ms=%.2f xmesh_check_ms=%.2f bridge_add_ms=%.2f "
      "xmesh_share_of_chain_add=%.2f" % (med[("xmesh-cni", "ADD")], med[("xmesh-cni", "DEL")],
      med[("xmesh-cni", "CHECK")], med[("bridge", "ADD")], med[("xmesh-cni", "ADD")] / add_chain))
EOF
