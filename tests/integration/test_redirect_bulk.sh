#!/bin/bash
# SPDX-License-Identifier: MIT
# Bulk senders leave the redirect (issue 14; docs/redirect-compat.md, "Bulk
# senders"): a redirected socket that has sent 4 MiB while its peer never
# redirected a byte to it is demoted to plain TCP, and no byte may be lost or
# reordered by that, either way. The bulk cases of tests/tools/xm-sockapi.c
# (32 MiB in 3 MiB writes, so the demotion falls inside a write; every byte
# checked at its place; then 8 MiB back) run in one pod on 127.0.0.1, first as
# the control (outside the test cgroup: plain TCP), then redirected, where
# each case must also have moved the counters as it should: demoted once
# (client stream, a close right after the last write, a stream from the
# accepted socket), or kept (the peer's bytes queued for the sender: it
# cannot leave the map without dropping them; and the 8 MiB answer, whose
# sender has a redirected stream queued for it, is kept too).
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 a 10.77.0.2/24
xm_agent_start
ns=$XM_PREFIX-a
port=7800
bytes=$((32 << 20))

run() { # on|off CASE: the case's last line in $out, its status in $rc
	local mode=$1 c=$2
	port=$((port + 1))
	if [ "$mode" = on ]; then
		out=$(xm_pod_exec a "$XM_TOOLS/xm-sockapi" "$c" 127.0.0.1 "$port" -s "$bytes" 2>&1) && rc=0 || rc=$?
	else
		out=$(ip netns exec "$ns" "$XM_TOOLS/xm-sockapi" "$c" 127.0.0.1 "$port" -s "$bytes" 2>&1) && rc=0 || rc=$?
	fi
	out=$(echo "$out" | tail -n1)
}

cases=("bulk demoted" "bulk-close demoted" "bulk-server demoted" "bulk-kept kept-twice")
for spec in "${cases[@]}"; do
	read -r c _ <<<"$spec"
	run off "$c"
	[ $rc = 0 ] || xm_fail "control (TCP) $c: $out"
done
xm_assert "$(xm_stat redirect_bulk_demoted).$(xm_stat redirect_bulk_kept)" = "0.0" \
	"the control runs saw no bulk sender (demoted.kept)"

for spec in "${cases[@]}"; do
	read -r c want <<<"$spec"
	d0=$(xm_stat redirect_bulk_demoted) k0=$(xm_stat redirect_bulk_kept) b0=$(xm_stat redirect_bytes)
	run on "$c"
	[ $rc = 0 ] || xm_fail "redirected $c lost or moved bytes: $out"
	xm_log "ok: $out"
	d=$(( $(xm_stat redirect_bulk_demoted) - d0 )) k=$(( $(xm_stat redirect_bulk_kept) - k0 ))
	if [ "$want" = demoted ]; then
		xm_assert "$d.$k" = "1.0" "$c: the sender was demoted (demoted.kept)"
		# redirected up to the threshold, TCP after: not the whole stream
		xm_assert "$(( $(xm_stat redirect_bytes) - b0 ))" -lt "$bytes" "$c: the rest took TCP"
	else
		xm_assert "$d.$k" = "0.2" "$c: both senders kept the redirect (demoted.kept)"
		xm_assert "$(( $(xm_stat redirect_bytes) - b0 ))" -ge "$bytes" "$c: all of it redirected"
	fi
	xm_assert "$(( $(xm_stat redirect_bytes) - b0 ))" -ge $((4 << 20)) "$c: its first 4 MiB redirected"
done
