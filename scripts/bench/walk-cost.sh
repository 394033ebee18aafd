#!/bin/bash
# SPDX-License-Identifier: MIT
# What one walk of a namespace's TCP sockets costs the rebalancer (the tick's
# pass and the urgent_ms poll walk every pod's namespace with a TCP iterator,
# user/agent/rebalance.c): the iterator reads every bucket of the hash table
# the namespace uses, so the cost is the table's size, not the pod's
# connections. Two namespaces side by side, interleaved round by round:
#   shared  created as pods usually are: it uses the host's table
#   own     created from a namespace where net.ipv4.tcp_child_ehash_entries is
#           set (Linux >= 6.1): a table of its own (OWN_BUCKETS)
# each with CONNS established loopback connections, a counting iterator
# (walkcost.bpf.c) pinned once, WALKS reads of it per round.
#   scripts/bench/walk-cost.sh     # ~10 s; ROUNDS=9 WALKS=100 CONNS=50 OWN_BUCKETS=1024
set -eu -o pipefail
ROUNDS=${ROUNDS:-9} WALKS=${WALKS:-100} CONNS=${CONNS:-50} OWN_BUCKETS=${OWN_BUCKETS:-1024}
. "$(dirname "$0")/../../tests/integration/lib.sh"
xm_bench_setup walk-cost
ITER=/sys/fs/bpf/$XM_PREFIX-walk
PARENT=$XM_PREFIX-ehp OWN=$XM_PREFIX-own SHARED=$XM_PREFIX-shared
wc_cleanup() {
	local rc=$?
	set +e
	rm -f "$ITER"
	for n in "$OWN" "$SHARED" "$PARENT"; do ip netns del "$n" 2>/dev/null; done
	(exit $rc)
	xm_cleanup
}
trap wc_cleanup EXIT
say() { printf '[%3ds] %s\n' "$SECONDS" "$*"; }
clang -O2 -g -target bpf -Ibuild -c scripts/bench/walkcost.bpf.c -o "$OUT/walkcost.bpf.o"
bpftool iter pin "$OUT/walkcost.bpf.o" "$ITER"
ip netns add "$SHARED"
ip netns add "$PARENT"
ip netns exec "$PARENT" sysctl -qw net.ipv4.tcp_child_ehash_entries="$OWN_BUCKETS"
# nsenter, not ip netns exec: the namespace is made from $PARENT's, and its
# mount is made in this mount namespace (ip netns exec's is private)
nsenter --net="/run/netns/$PARENT" ip netns add "$OWN"
for n in "$SHARED" "$OWN"; do
	ip -n "$n" link set lo up
	say "$n: net.ipv4.tcp_ehash_entries $(ip netns exec "$n" sysctl -n net.ipv4.tcp_ehash_entries) (negative: the host's, shared)"
done
# CONNS connections held open in each (a listener and its clients, one process)
hold() {
	xm_bg nsenter --net="/run/netns/$1" python3 -c '
import socket, sys, time
n = int(sys.argv[1])
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(n)
c = [socket.create_connection(l.getsockname()) for _ in range(n)]
a = [l.accept()[0] for _ in range(n)]
print("ready", flush=True)
time.sleep(3600)' "$CONNS" >"$OUT/hold-$1.out" 2>&1
}
hold "$SHARED"
hold "$OWN"
for _ in $(seq 50); do
	[ "$(cat "$OUT/hold-$SHARED.out" "$OUT/hold-$OWN.out" | grep -c ready)" -eq 2 ] && break
	sleep 0.1
done
walk() { # NETNS: us per walk over WALKS reads, and the sockets a walk saw
	nsenter --net="/run/netns/$1" python3 -c '
import sys, time
p, n = sys.argv[1], int(sys.argv[2])
t = time.perf_counter()
for _ in range(n):
    open(p, "rb").read()
print("%.1f" % ((time.perf_counter() - t) / n * 1e6))' "$ITER" "$WALKS"
}
: >"$OUT/walks.tsv"
for r in $(seq "$ROUNDS"); do
	s=$(walk "$SHARED") o=$(walk "$OWN")
	printf '%s\t%s\t%s\n' "$r" "$s" "$o" >>"$OUT/walks.tsv"
	say "round $r/$ROUNDS: shared $s us, own $o us a walk (load $(cut -d' ' -f1 /proc/loadavg))"
done
python3 - "$OUT/walks.tsv" "$(ip netns exec "$SHARED" sysctl -n net.ipv4.tcp_ehash_entries)" "$OWN_BUCKETS" "$CONNS" <<'EOPY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
s = statistics.median(float(r[1]) for r in rows)
o = statistics.median(float(r[2]) for r in rows)
print(f"bench walk-cost: {len(rows)} rounds, {sys.argv[4]} connections each; "
      f"shared table ({-int(sys.argv[2])} buckets) {s:.0f} us a walk, "
      f"own table ({sys.argv[3]} buckets) {o:.0f} us a walk: x{s / o:.0f}")
EOPY
