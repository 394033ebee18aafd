#!/bin/bash
# SPDX-License-Identifier: MIT
# IPv6 pod addresses are redirected; an IPv4 client meeting a dual-stack
# (IPv6) server socket is redirected too: ::ffff:a.b.c.d is normalised to IPv4
# so both ends build the same key. IPv6 loopback is redirected within a netns.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 a 10.77.0.2/24 fd77::2/64
xm_pod n1 b 10.77.0.3/24 fd77::3/64
xm_agent_start
xm_ctl endpoint add fd77::2 netns "$(xm_netns_path a)"
xm_ctl endpoint add fd77::3 netns "$(xm_netns_path b)"
xm_ctl endpoint add ::ffff:10.77.0.2 netns "$(xm_netns_path a)"   # stored as 10.77.0.2
xm_ctl endpoint add 10.77.0.3 netns "$(xm_netns_path b)"
xm_ctl endpoint list | grep -q '^10.77.0.2 ' || xm_fail "IPv4-mapped endpoint not stored as IPv4"

run() { # desc server-addr client-addr
	local before after
	xm_pod_bg b "$XM_TOOLS/xm-serve" traffic --listen "[$2]:$4" --size 1M --answer 1M
	sleep 0.2
	before=$(xm_stat redirect_bytes)
	xm_pod_exec "$5" "$XM_TOOLS/xm-load" traffic -t "$(xm_hostport "$3" "$4")" -s 1M --answer 1M >/dev/null ||
		xm_fail "$1: payload not delivered byte for byte"
	after=$(xm_stat redirect_bytes)
	xm_assert $((after - before)) -ge $((2 * 1024 * 1024)) "$1: both directions redirected"
}
run "IPv6 pod to pod" fd77::3 fd77::3 7400 a
run "IPv4 client to dual-stack IPv6 server" :: 10.77.0.3 7401 a
run "IPv6 loopback" ::1 ::1 7402 b
