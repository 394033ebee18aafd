#!/bin/bash
# SPDX-License-Identifier: MIT
# Socket-API semantics of redirected sockets against TCP (issue 11, case 3).
# Every case of tests/tools/xm-sockapi.c runs twice in one pod on 127.0.0.1:
# redirected (in the test cgroup) and as the control (same netns, outside the
# cgroup: plain TCP). The control must behave as TCP. Redirected, a case must
# behave as TCP too, except the differences this kernel forces, which are
# documented in docs/redirect-compat.md: there the test asserts the documented
# behaviour and its counter, then that the opt-out (xmeshctl sock skip, by
# port and by netns) gives TCP's behaviour back. Bulk senders: see below.
# The counters of the differences run on a host-wide tracepoint, so they are
# off until the config asks for them ("redirect_recv_counters"): checked off
# by default, on after a reload, off again (the link gone) after another.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 a 10.77.0.2/24
cfg=$XM_RUN_DIR/agent.json
echo '{}' >"$cfg"
xm_agent_start --config "$cfg"
ns=$XM_PREFIX-a
port=7700

# Cases that behave as TCP when redirected, with their arguments.
same=(poll epoll fionread peek rcvtimeo cork shut-wr shut-rd linger0 sendfile nbconnect
      "reuse -n 150" "churn -n 10000")
# Differences the kernel's tcp_bpf forces on this kernel (docs/redirect-compat.md).
differ=(waitall rcvlowat splice)
# sndtimeo: a sender blocked by a peer that reads nothing; redirected, it
# behaves as TCP only because it is demoted to TCP as a bulk sender after
# 4 MiB, which takes an iterator over the redirect map: a kernel that refuses
# it (feature sockmap_iter, docs/kernels.md) keeps bulk senders redirected.
demote=$(xm_kfeature sockmap_iter)
if [ "$demote" = 1 ]; then same+=(sndtimeo); else differ+=(sndtimeo); fi
xm_log "bulk senders are demoted to TCP: $demote (feature sockmap_iter)"

# run MODE CASE [ARGS...]: prints the case's last line; rc of xm-sockapi in $rc.
run() {
	local mode=$1 c=$2; shift 2
	port=$((port + 2))
	if [ "$mode" = on ]; then
		out=$(xm_pod_exec a "$XM_TOOLS/xm-sockapi" "$c" 127.0.0.1 "$port" "$@" 2>&1) && rc=0 || rc=$?
	else
		out=$(ip netns exec "$ns" "$XM_TOOLS/xm-sockapi" "$c" 127.0.0.1 "$port" "$@" 2>&1) && rc=0 || rc=$?
	fi
	out=$(echo "$out" | tail -n1)
}

for spec in "${same[@]}" "${differ[@]}" "threads -n 16 -s 2000000"; do
	# shellcheck disable=SC2086
	run off $spec
	[ $rc = 0 ] || xm_fail "control (TCP) $spec: $out"
done
xm_log "ok: every case behaves as TCP without redirection"

before=$(xm_stat redirect_msgs)
for spec in "${same[@]}"; do
	# shellcheck disable=SC2086
	run on $spec
	[ $rc = 0 ] || xm_fail "redirected $spec differs from TCP: $out"
	xm_log "ok: $out"
done
xm_assert "$(( $(xm_stat redirect_msgs) - before ))" -gt 10000 "the cases' bytes were redirected"
if [ "$demote" = 1 ]; then
	xm_assert "$(xm_stat redirect_bulk_demoted)" -ge 1 "sndtimeo's sender was demoted to TCP"
else
	xm_assert "$(xm_stat redirect_bulk_demoted)" -eq 0 "no sender demoted without the iterator"
fi

# Bulk senders (docs/redirect-compat.md, "Bulk senders"): a redirected socket
# that has sent 4 MiB while its peer never redirected a byte to it is demoted
# to plain TCP; no byte may be lost or reordered by that, either way. The bulk
# cases send 32 MiB in 3 MiB writes (the demotion falls inside a write), check
# every byte's place, then 8 MiB back; each must move the counters as it
# should: demoted once (client stream, a close right after the last write, a
# stream from the accepted socket), or kept (the peer's bytes are queued for
# the sender, which cannot leave the map without dropping them; the 8 MiB
# answer's sender has a redirected stream queued for it: kept too). Without
# the iterator no sender asks: neither counter moves and every byte is redirected.
bulk_bytes=$((32 << 20))
bulk=("bulk 1.0" "bulk-close 1.0" "bulk-server 1.0" "bulk-kept 0.2")
[ "$demote" = 1 ] || bulk=("bulk 0.0" "bulk-close 0.0" "bulk-server 0.0" "bulk-kept 0.0")
for spec in "${bulk[@]}"; do
	read -r c _ <<<"$spec"
	run off "$c" -s "$bulk_bytes"
	[ $rc = 0 ] || xm_fail "control (TCP) $c: $out"
done
for spec in "${bulk[@]}"; do
	read -r c want <<<"$spec"
	d0=$(xm_stat redirect_bulk_demoted) k0=$(xm_stat redirect_bulk_kept) b0=$(xm_stat redirect_bytes)
	run on "$c" -s "$bulk_bytes"
	[ $rc = 0 ] || xm_fail "redirected $c lost or moved bytes: $out"
	xm_log "ok: $out"
	d=$(( $(xm_stat redirect_bulk_demoted) - d0 )) k=$(( $(xm_stat redirect_bulk_kept) - k0 ))
	b=$(( $(xm_stat redirect_bytes) - b0 ))
	xm_assert "$d.$k" = "$want" "$c: bulk senders demoted.kept"
	xm_assert "$b" -ge $((4 << 20)) "$c: its first 4 MiB redirected"
	if [ "$want" = 1.0 ]; then
		xm_assert "$b" -lt "$bulk_bytes" "$c: the rest took TCP"
	else
		xm_assert "$b" -ge "$bulk_bytes" "$c: all of it redirected"
	fi
done

# counters [true|false]: set the config and reload; prints whether the link is pinned
counters() {
	echo "{\"redirect_recv_counters\": $1}" >"$cfg"
	xm_ctl service reload >/dev/null
}
counters_link() { xm_ctl -j status | xm_json 'int(any(l["name"] == "redirect_recv" for l in j["links"]))'; }
xm_assert "$(counters_link)" -eq 0 "the recvmsg counters are not attached by default"
w0=$(xm_stat redirect_recv_waitall)
run on waitall
[ $rc = 3 ] || xm_fail "redirected waitall: expected the documented difference, got: $out"
xm_assert "$(xm_stat redirect_recv_waitall)" -eq "$w0" "without the config no recvmsg is counted"
counters true
xm_assert "$(counters_link)" -eq 1 "\"redirect_recv_counters\": true attaches the counters"
w0=$(xm_stat redirect_recv_waitall)
for c in "${differ[@]}"; do
	run on "$c"
	[ $rc = 3 ] || xm_fail "redirected $c: expected the documented difference, got: $out"
	xm_log "documented difference: $out"
done
xm_assert "$(xm_stat redirect_recv_waitall)" -gt "$w0" "MSG_WAITALL reads on redirected sockets are counted"

# Blocking recv() EAGAIN with a reader and a writer thread: timing-dependent,
# so the run may see none; every one the programs saw must be counted.
e0=$(xm_stat redirect_recv_eagain)
run on threads -n 16 -s 2000000
case $rc in
0) xm_log "threads: no EAGAIN this run: $out" ;;
3) seen=$(echo "$out" | sed -n 's/.*EAGAIN \([0-9]*\) times.*/\1/p')
   xm_assert "$(( $(xm_stat redirect_recv_eagain) - e0 ))" -ge "$seen" \
	"every blocking-recv EAGAIN the application saw is counted" ;;
*) xm_fail "threads lost or corrupted bytes: $out" ;;
esac
counters false
xm_assert "$(counters_link)" -eq 0 "\"redirect_recv_counters\": false detaches the counters"
w0=$(xm_stat redirect_recv_waitall)
run on waitall
[ $rc = 3 ] || xm_fail "redirected waitall: expected the documented difference, got: $out"
xm_assert "$(xm_stat redirect_recv_waitall)" -eq "$w0" "detached, no recvmsg is counted"

# Opt-out by port: the server ports of the next runs; then by netns.
o0=$(xm_stat sock_skipped_optout)
for c in "${differ[@]}"; do
	xm_ctl sock skip add port $((port + 2))
	run on "$c"
	[ $rc = 0 ] || xm_fail "with port $port opted out, $c must behave as TCP: $out"
	xm_ctl sock skip del port "$port"
done
xm_assert "$(xm_stat sock_skipped_optout)" -gt "$o0" "opted-out connections are counted"
xm_assert "$(xm_ctl -j sock skip list | xm_json 'len(j)')" -eq 0 "skip del removed every entry"
xm_ctl sock skip add netns "$(xm_netns_path a)"
xm_assert "$(xm_ctl -j sock skip list | xm_json 'len(j)')" -eq 1 "netns opt-out listed"
run on waitall
[ $rc = 0 ] || xm_fail "with pod a's netns opted out, waitall must behave as TCP: $out"
xm_ctl sock skip del netns "$(xm_netns_path a)"
run on waitall
[ $rc = 3 ] || xm_fail "after removing the opt-out, redirection must be back: $out"
xm_log "ok: opt-out by port and by netns gives TCP's behaviour back"
