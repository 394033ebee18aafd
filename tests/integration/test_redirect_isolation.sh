#!/bin/bash
# SPDX-License-Identifier: MIT
# Isolation: two pods use the very same 127.0.0.1 tuple at the same time and
# never read each other's bytes while redirection is on; a socket using a pod
# IP that is not registered to its own netns is never redirected.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 a 10.77.0.2/24
xm_pod n1 b 10.77.0.3/24
xm_pod n1 c 10.77.0.4/24
xm_agent_start
xm_ctl endpoint add 10.77.0.2 netns "$(xm_netns_path a)"
xm_ctl endpoint add 10.77.0.3 netns "$(xm_netns_path b)"
# c's address is claimed for b's netns: c uses an IP not registered to c.
xm_ctl endpoint add 10.77.0.4 netns "$(xm_netns_path b)"

# "sockets scopes" from one snapshot of the map: number of sockets, distinct loopback scopes.
socks_and_scopes() { xm_ctl -j sock list | python3 -c "import json,sys; l = json.load(sys.stdin)
print(len(l), len({s['scope'] for s in l if s['local']=='127.0.0.1'}))"; }

# Same tuple 127.0.0.1:40000 -> 127.0.0.1:7200 in pods a and b, different payload seeds,
# transfers spread over 2 s (10 s with XM_SMALL) so that both connections are open at once.
xm_pod_bg a "$XM_TOOLS/xm-serve" traffic --listen 127.0.0.1:7200 --size 2M --answer 2M --seed 11
xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 127.0.0.1:7200 --size 2M --answer 2M --seed 22
sleep 0.3
before=$(xm_stat redirect_bytes)
xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 127.0.0.1:7200 -s 2M --answer 2M -S 11 -b 40000 -d "$(xm_size 2 10)" >"$XM_RUN_DIR/a.out" 2>&1 &
pa=$!
xm_pod_exec b "$XM_TOOLS/xm-load" traffic -t 127.0.0.1:7200 -s 2M --answer 2M -S 22 -b 40000 -d "$(xm_size 2 10)" >"$XM_RUN_DIR/b.out" 2>&1 &
pb=$!
sleep 1
read -r n s < <(socks_and_scopes)
wait $pa || xm_fail "pod a read bytes that are not its own: $(cat "$XM_RUN_DIR/a.out")"
wait $pb || xm_fail "pod b read bytes that are not its own: $(cat "$XM_RUN_DIR/b.out")"
xm_assert "$n" -eq 4 "both pods' client and server sockets in the redirect map at once"
xm_assert "$s" -eq 2 "the identical tuples are told apart by two netns scopes"
after=$(xm_stat redirect_bytes)
xm_assert $((after - before)) -ge $((8 * 1024 * 1024)) "both same-tuple connections were redirected"

# Foreign address: c (10.77.0.4, registered to b's netns) talks to b.
xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 10.77.0.3:7300 --size 100K --answer 100K
sleep 0.2
before=$(xm_stat redirect_bytes)
foreign_before=$(xm_stat sock_skipped_foreign)
xm_pod_exec c "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7300 -s 100K --answer 100K >/dev/null ||
	xm_fail "traffic from an unregistered address must still flow over TCP"
after=$(xm_stat redirect_bytes)
xm_assert "$((after - before))" -lt $((100 * 1024)) "c's sending direction was not redirected"
xm_assert "$(xm_stat sock_skipped_foreign)" -gt "$foreign_before" "c's socket was refused as foreign"
# And b -> c must not be redirected either: c's socket is not in the map.
xm_assert "$((after - before))" -eq 0 "no byte of the c<->b connection was redirected"
