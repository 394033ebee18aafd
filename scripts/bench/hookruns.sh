#!/bin/bash
# SPDX-License-Identifier: MIT
# How often the kernel runs xmesh's hooks for one new connection per request
# (64 B request, 64 B response, client closes first: conn64 of bench-side),
# per sockops op and per cgroup_skb packet kind: a counting program
# (hookruns.bpf.c) is attached next to the agent's on the same cgroups.
#   local   client and server pods of one node, both in the agent's cgroup
#           (the connection is redirected)
#   remote  the server outside the agent's cgroup: the client's node's share
#   server  the remote server's own node's share (its own cgroup, counted)
# Then the agent's per-program run counts over the same connections
# (xmeshctl prog profile), so the table is checked against the real programs.
#   scripts/bench/hookruns.sh      # ~20 s; N=500 connections per part
#   PROBES=all|weighted            # the agent's config "probes" (docs/config.md)
set -eu -o pipefail
N=${N:-500} PROBES=${PROBES:-all}
. "$(dirname "$0")/../../tests/integration/lib.sh"
xm_bench_setup hookruns
CNT=/sys/fs/bpf/$XM_PREFIX-cnt CNTM=/sys/fs/bpf/$XM_PREFIX-cntm CGS=$XM_CG2/$XM_PREFIX-srv
hr_cleanup() {
	local rc=$? p
	set +e
	for p in $(cat "$CGS/cgroup.procs" 2>/dev/null); do kill "$p" 2>/dev/null; done
	for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$CGS" 2>/dev/null && break; sleep 0.1; done
	rm -rf "$CNT" "$CNTM"
	(exit $rc)
	xm_cleanup
}
trap hr_cleanup EXIT
clang -O2 -g -target bpf -Ibuild -c scripts/bench/hookruns.bpf.c -o "$OUT/hookruns.bpf.o"
mkdir -p "$CGS"
xm_node n1
xm_pod n1 c 10.77.0.2/24
xm_pod n1 l 10.77.0.3/24
xm_pod n1 r 10.77.0.4/24
# IN_CG CGROUP NETNS CMD...: run CMD in that cgroup and netns. A command,
# not a function: started with &, a function runs in a bash subshell, which
# reports its child's SIGKILL at cleanup ("Killed") whatever disown says.
IN_CG=(sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"')
xm_bg "${IN_CG[@]}" "$XM_CGROUP" "$XM_PREFIX-l" "$XM_TOOLS/xm-serve" rr --listen 10.77.0.3:8080
xm_bg "${IN_CG[@]}" "$CGS" "$XM_PREFIX-r" "$XM_TOOLS/xm-serve" rr --listen 10.77.0.4:8080
cat >"$XM_RUN_DIR/hookruns.json" <<EOC
{ "probes": "$PROBES", "services": [
  { "vip": "10.96.0.10", "port": 80, "backends": [ { "address": "10.77.0.3", "port": 8080 } ] },
  { "vip": "10.96.0.11", "port": 80, "backends": [ { "address": "10.77.0.4", "port": 8080 } ] } ] }
EOC
xm_agent_start --config "$XM_RUN_DIR/hookruns.json" 2>>"$OUT/agent.log"
xm_lb_wait 10.96.0.10:80 1
xm_lb_wait 10.96.0.11:80 1
xm_ctl endpoint add 10.77.0.2 netns "$(xm_netns_path c)" >/dev/null
xm_ctl endpoint add 10.77.0.3 netns "$(xm_netns_path l)" >/dev/null
bpftool prog loadall "$OUT/hookruns.bpf.o" "$CNT" pinmaps "$CNTM"
attach() { # CGROUP: the counters on it, beside whatever is attached there
	bpftool cgroup attach "$1" sock_ops pinned "$CNT/xm_count_sockops" multi
	bpftool cgroup attach "$1" egress pinned "$CNT/xm_count_egress" multi
	bpftool cgroup attach "$1" ingress pinned "$CNT/xm_count_ingress" multi
}
attach "$XM_CGROUP"
: >"$OUT/counts.tsv"
counts() { bpftool -j map dump pinned "$CNTM/xm_hook_runs" | python3 -c '
import json, sys
def num(v): # a number, or without BTF its bytes, little-endian
    return v if isinstance(v, int) else int.from_bytes(bytes(int(x, 16) for x in v), "little")
print(" ".join(str(num(e["value"])) for e in sorted(json.load(sys.stdin), key=lambda e: num(e["key"]))))'; }
# the client: N connections to VIP, in the agent's cgroup and the client pod;
# then a second for the closing packets
cat >"$OUT/client.sh" <<EOC
#!/bin/sh
echo \$\$ >"$XM_CGROUP/cgroup.procs"
ip netns exec $XM_PREFIX-c "$XM_TOOLS/xm-load" rr -t "\$1:80" -P tcp -s 64 --new -n $N >/dev/null
sleep 1
EOC
chmod +x "$OUT/client.sh"
# part NAME VIP: N connections, one request each; counts and program runs per connection
part() {
	local before after
	before=$(counts)
	xm_ctl -j prog profile -- "$OUT/client.sh" "$2" >"$OUT/prog-$1.json"
	after=$(counts)
	printf '%s\t%s\t%s\n' "$1" "$before" "$after" >>"$OUT/counts.tsv"
}
part local 10.96.0.10
part remote 10.96.0.11
attach "$CGS"
part remote+server 10.96.0.11
python3 - "$OUT" "$N" "$PROBES" <<'PY'
import json, sys
out, n, probes = sys.argv[1], int(sys.argv[2]), sys.argv[3]
OPS = ["VOID", "TIMEOUT_INIT", "RWND_INIT", "TCP_CONNECT", "ACTIVE_ESTABLISHED",
       "PASSIVE_ESTABLISHED", "NEEDS_ECN", "BASE_RTT", "RTO", "RETRANS", "STATE", "TCP_LISTEN",
       "RTT", "PARSE_HDR_OPT", "HDR_OPT_LEN", "WRITE_HDR_OPT"]
def name(k):
    if k < 64:
        return "sockops " + (OPS[k] if k < len(OPS) else str(k))
    k -= 64
    d = "cgroup_skb ingress" if k >= 64 else "cgroup_skb egress"
    k %= 64
    fl = "+".join(f for f, m in (("SYN", 2), ("ACK", 8), ("FIN", 1), ("RST", 4)) if k & m)
    return f"{d} {fl or 'no flags'}{' payload' if k & 32 else ''}"
parts = {}
for line in open(f"{out}/counts.tsv"):
    p, b, a = line.rstrip("\n").split("\t")
    parts[p] = [(int(y) - int(x)) / n for x, y in zip(b.split(), a.split())]
parts["server"] = [y - x for x, y in zip(parts["remote"], parts["remote+server"])]
cols = ["local", "remote", "server"]
rows = [k for k in range(192) if any(parts[c][k] >= 0.01 for c in cols)]
md = [f"# Hook runs per connection (conn64: connect, 64 B each way, close; N={n}, probes {probes})", "",
      "| hook, callback or packet | local (both ends) | remote: client's node | remote: server's node |",
      "|---|---:|---:|---:|"]
tot = {c: {"sockops": 0.0, "cgroup_skb": 0.0} for c in cols}
for k in rows:
    md.append(f"| {name(k)} | " + " | ".join(f"{parts[c][k]:.2f}" for c in cols) + " |")
    for c in cols:
        tot[c]["sockops" if k < 64 else "cgroup_skb"] += parts[c][k]
for h in ("sockops", "cgroup_skb"):
    md.append(f"| **{h}, all** | " + " | ".join(f"**{tot[c][h]:.2f}**" for c in cols) + " |")
md += ["", "The table counts the kernel's events (a counting program on the same cgroups); "
       "the agent's own programs run at those events that they are attached for "
       "(`xmeshctl prog profile`; `xm_redirect_recv`, attached only with the config's "
       "`redirect_recv_counters`, is a host-wide tracepoint at every recvmsg of the machine, "
       "other processes' included):", "",
       "| program | local | remote (client's node) |", "|---|---:|---:|"]
progs = {}
for c in ("local", "remote"):
    for p in json.load(open(f"{out}/prog-{c}.json")).get("programs", []):
        progs.setdefault(p["name"], {})[c] = p.get("run_cnt", 0) / n
for name_, v in sorted(progs.items()):
    if max(v.values()) >= 0.01:
        md.append(f"| `{name_}` | {v.get('local', 0):.2f} | {v.get('remote', 0):.2f} |")
open(f"{out}/hookruns.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
kv = " ".join(f"{c}_{h}={tot[c][h]:.2f}" for c in cols for h in ("sockops", "cgroup_skb"))
lb_skb = {c: sum(progs.get(p, {}).get(c, 0) for p in ("xm_lb_egress", "xm_lb_ingress"))
          for c in ("local", "remote")}
print(f"bench hookruns: probes={probes} {kv} "
      f"local_lb_skb_runs={lb_skb['local']:.2f} remote_lb_skb_runs={lb_skb['remote']:.2f}")
PY
