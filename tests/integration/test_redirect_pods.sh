#!/bin/bash
# SPDX-License-Identifier: MIT
# Two pods on one node: traffic between registered pod addresses is
# redirected socket-to-socket, byte-exact, for sizes 1 B .. 4 MiB in both
# directions, with 200 concurrent connections, writes right after connect()
# and accept(), and half-close with EOF after the last byte.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 a 10.77.0.2/24 fd77::2/64
xm_pod n1 b 10.77.0.3/24 fd77::3/64
xm_agent_start
for p in a b; do
	ip=$([ $p = a ] && echo 10.77.0.2 || echo 10.77.0.3)
	xm_ctl endpoint add "$ip" netns "$(xm_netns_path $p)"
done
xm_assert "$(xm_ctl -j endpoint list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" \
	-eq 2 "two endpoints registered"

xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 10.77.0.3:7001 --size 0 --answer 0
xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 10.77.0.3:7002 --size 4M --answer 1
xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 10.77.0.3:7003 --size 100 --answer 300K
for port in 7001 7002 7003; do xm_wait_listen b "$port"; done

before=$(xm_stat redirect_bytes)
# sizes from 1 B to 4 MiB, each direction, each a fresh connection
for size in 1 2 100 1448 4096 65535 65536 1000000 4M; do
	xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen 10.77.0.3:7100 --size "$size" --answer "$size" --seed 7
	srv=$XM_LAST_PID
	xm_wait_listen b 7100
	xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7100 -s "$size" --answer "$size" -S 7 >/dev/null ||
		xm_fail "payload of $size bytes each way not delivered byte for byte"
	xm_kill_tree "$srv"; wait "$srv" 2>/dev/null || true
done
xm_log "ok: 1 B .. 4 MiB both directions byte-exact"

# asymmetric: big request, 1-byte answer; small request, big answer
xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7002 -s 4M --answer 1 >/dev/null ||
	xm_fail "4 MiB request / 1 B response"
xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7003 -s 100 --answer 300K >/dev/null ||
	xm_fail "100 B request / 300 KiB response"
# zero bytes each way: EOF only
xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7001 -s 0 --answer 0 >/dev/null ||
	xm_fail "empty exchange (half-close only)"

# 200 concurrent connections, 3 rounds each
out=$(xm_pod_exec a "$XM_TOOLS/xm-load" traffic -t 10.77.0.3:7003 -s 100 --answer 300K -c 200 -n 600) ||
	xm_fail "200 concurrent connections: $out"
xm_log "ok: 200 concurrent connections x 3: $out"

after=$(xm_stat redirect_bytes)
msgs=$(xm_stat redirect_msgs)
miss=$(xm_stat redirect_miss_bytes)
xm_log "redirect_bytes delta $((after - before)), msgs $msgs, miss bytes $miss"
# The 4 MiB runs alone move > 8 MiB; all of it must have taken the redirect.
xm_assert $((after - before)) -gt $((8 * 1024 * 1024)) "bytes went socket-to-socket"
# Misses happen only when a direction's first write races the peer's insert.
xm_assert "$miss" -lt $(( (after - before) / 100 )) "under 1% of bytes took TCP"
