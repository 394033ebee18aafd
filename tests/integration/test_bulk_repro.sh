#!/bin/bash
# SPDX-License-Identifier: MIT
# The bulk-stream reproduction outside xmesh (tests/tools/xm-bulk.c,
# bpf/sockmap_bulk.bpf.c) on a loopback pair: a stream redirected whole, one
# that falls back to TCP after a budget, and one whose sender leaves the map
# after it (demote, xmesh's way) arrive complete and in order (the switch to
# TCP must not let TCP bytes overtake redirected ones), and the switch really
# happened (part redirected, not all: after a demotion the sender's sk_msg
# program no longer runs at all).
set -eu
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || xm_skip "needs root"
B=$XM_TOOLS/xm-bulk
for mode in redirect budget=300000 demote=300000; do
	out=$("$B" stream "$mode" 0.3 0,1 verify)
	xm_log "$out"
	kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$out"; }
	xm_assert "$(kv in_order)" = 1 "$mode: every byte in order"
	xm_assert "$(kv received)" = "$(kv sent)" "$mode: every byte arrived"
	if [ "$mode" = redirect ]; then
		xm_assert "$(kv redirected)" = "$(kv sent)" "redirect: every byte redirected"
	else
		xm_assert "$(kv redirected)" -ge 300000 "$mode: the first 300000 bytes were redirected"
		xm_assert "$(kv redirected)" -lt "$(kv sent)" "$mode: the rest took TCP"
	fi
done
