#!/bin/bash
# SPDX-License-Identifier: MIT
# TCP Fast Open connections stay on TCP (bpf/redirect.bpf.c, sock_is_fastopen):
# their first bytes travel in the SYN, before the ESTABLISHED callbacks, so
# their sequence numbers are not ISN + 1 and a redirect would lose or reorder
# bytes. Real Fast Open connections in a pod (net.ipv4.tcp_fastopen=0x207 in
# its netns, TCP_FASTOPEN listener, sendto MSG_FASTOPEN; the client checks
# that the server took the SYN's data), both ends counted in
# sock_skipped_fastopen, none in the redirect map, no message redirected;
# ordinary connections of the same pod are redirected (the control). Run on
# both detection paths: tcp_sock's bitfields through BTF (where the kernel's
# BTF has them) and the handshake counters (forced with
# XMESH_DISABLE_FEATURES=tcp_fastopen_btf; the only path on Debian's 6.1).
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
N=$(xm_size 5 3)

check_path() { # LABEL PORT
	local f0 i0 r0 df di dr
	xm_pod_exec a "$XM_TOOLS/xm-sockapi" nbconnect 10.77.0.2 "$2" >/dev/null ||
		xm_fail "$1: control connection failed"
	r0=$(xm_stat redirect_msgs)
	xm_pod_exec a "$XM_TOOLS/xm-sockapi" nbconnect 10.77.0.2 "$((${2} + 1))" >/dev/null
	xm_assert "$(($(xm_stat redirect_msgs) - r0))" -gt 0 "$1: an ordinary connection is redirected"
	f0=$(xm_stat sock_skipped_fastopen) i0=$(xm_stat sock_inserted) r0=$(xm_stat redirect_msgs)
	out=$(xm_pod_exec a "$XM_TOOLS/xm-sockapi" fastopen 10.77.0.2 "$((${2} + 2))" -n "$N") ||
		xm_fail "$1: $out"
	xm_log "$out"
	df=$(($(xm_stat sock_skipped_fastopen) - f0))
	di=$(($(xm_stat sock_inserted) - i0))
	dr=$(($(xm_stat redirect_msgs) - r0))
	xm_log "$1: fastopen +$df, inserted +$di, redirected messages +$dr"
	xm_assert "$df" -eq $((2 * N)) "$1: both ends of $N Fast Open connections counted"
	xm_assert "$di" -eq 0 "$1: no Fast Open socket in the redirect map"
	xm_assert "$dr" -eq 0 "$1: no Fast Open message redirected"
}

xm_node n1
xm_pod n1 a 10.77.0.2/24
ip netns exec "$XM_PREFIX-a" sysctl -qw net.ipv4.tcp_fastopen=0x207 ||
	xm_skip "no net.ipv4.tcp_fastopen in a netns"
xm_agent_start
xm_register a 10.77.0.2
btf=$(xm_ctl -j status | xm_json "[f['present'] for f in j['kernel_features'] if f['name'] == 'tcp_fastopen_btf'][0]")
xm_log "kernel BTF has tcp_sock's Fast Open bitfields: $btf"
check_path "$([ "$btf" = True ] && echo "BTF path" || echo "counters path")" 7950

kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true
XMESH_DISABLE_FEATURES=tcp_fastopen_btf xm_agent_start
xm_assert "$(xm_ctl -j status | xm_json "[f['present'] for f in j['kernel_features'] if f['name'] == 'tcp_fastopen_btf'][0]")" \
	= False "agent restarted without the BTF path"
check_path "counters path (forced)" 7960
