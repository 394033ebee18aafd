#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench-l3 explains every request that got no answer (issue 13: a request
# left unanswered must be traced to its cause, never guessed at). A replica
# that draws a delay past the client's timeout (xm-serve scenario --csv logs
# the draw and the client's port) is named as the cause; a timeout whose
# connection the agent retired around it (the agent's per-retirement line) is
# flagged as a retirement that left a request unanswered; one with neither is
# unexplained; a request a replica had in service when its connection closed
# (other than one the client gave up on) is counted as cut. Loopback in a netns of its own, about 3 s.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_netns k
in_k() { ip netns exec "$XM_PREFIX-k" "$@"; }
D=$(mktemp -d "/tmp/$XM_PREFIX-l3x.XXXXXX")
xm_cleanup_extra() { rm -rf "$D"; }

# One replica that answers after 1.5 s: every request of a 0.5 s client times out.
cat >"$D/slow.json" <<'EOF'
{"name": "slow", "duration": 1, "seed": 1, "rate": [[0, 10]],
 "base": {"median_ms": 1500, "p99_ms": 1500, "success": 1.0}}
EOF
start=$(python3 -c 'import time; print(f"{time.time() + 1:.3f}")')
cell=$D/slow.pool50.l3x+rb.1
echo "$start" >"$cell.start"
xm_bg in_k "$XM_TOOLS/xm-serve" scenario --listen 127.0.0.1:7001 --replica 0 \
	--scenario "$D/slow.json" --start "$start" --csv "$cell.b0.requests"
srv=$XM_LAST_PID
xm_wait_listen k 7001
in_k "$XM_TOOLS/xm-load" rr --target 127.0.0.1:7001 --proto http --scenario "$D/slow.json" \
	--start "$start" --retry --timeout 0.5 --csv "$cell.csv" >/dev/null
xm_kill_tree "$srv" # SIGTERM: it writes its log and exits
wait "$srv" 2>/dev/null || true
n=$(grep -c ',timeout,' "$cell.csv" || true)
xm_assert "$n" -ge 5 "requests that timed out against the 1.5 s replica"
# the client's CSV names each request's connection and when it was written
head -1 "$cell.csv" | grep -q ',lport,sent,first_lport$' || xm_fail "xm-load --csv: no lport/sent columns"
awk -F, 'NR > 1 && ($8 == 0 || $9 == "") { bad = 1 } END { exit bad }' "$cell.csv" ||
	xm_fail "xm-load --csv: a request without its port or send time"

report() { XM_BENCH_TIMEOUT=0.5 python3 scripts/bench/l3_report.py "$D" 2>/dev/null; }
out=$(report)
xm_assert "$(grep -c 'drew a delay of 1500 ms' <<<"$out")" -eq "$n" \
	"every timeout traced to the replica's 1.5 s draw"
grep -q 'UNANSWERED\|UNEXPLAINED' <<<"$out" && xm_fail "a slow replica's timeout reported as unexplained: $out"

# The first timed-out request: its replica record gone, its connection retired 1 ms
# after its write (the agent's line) -> a retirement left it unanswered.
read -r port sent < <(awk -F, '$6 == "timeout" { print $8, $9; exit }' "$cell.csv")
grep -v "^[0-9.-]*,$port," "$cell.b0.requests" >"$D/r" && mv "$D/r" "$cell.b0.requests"
python3 - "$start" "$sent" "$port" >"$cell.agent.log" <<'EOF'
import datetime, sys
t = float(sys.argv[1]) + float(sys.argv[2]) + 0.001
stamp = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
print(f"{stamp}Z debug: rebalance: retired 127.0.0.1:{sys.argv[3]} -> 127.0.0.1:7001 "
      "(backend id 0, cookie 1) by a read-event pass")
EOF
out=$(report)
grep -q "port $port: its connection to 127.0.0.1:7001 was retired .* by a read-event pass .*A RETIREMENT LEFT IT UNANSWERED" <<<"$out" ||
	xm_fail "a timeout after its connection's retirement not flagged: $out"
# without the retirement line: no cause in any log
: >"$cell.agent.log"
out=$(report)
grep -q "port $port: no replica got it and no retirement of its port: UNEXPLAINED" <<<"$out" ||
	xm_fail "a timeout with no cause not reported unexplained: $out"
grep -q "| slow | pool50 | l3x+rb | 1 .*| $n | 1 | 0 |\$" <<<"$out" ||
	xm_fail "summary: timeouts / unexplained / cut columns: $out"
# A request a replica had in service when its connection closed, which the client had
# not given up on (port 1: no request of the client's), is counted as cut.
echo "0.5,1,10.000,gone" >>"$cell.b0.requests"
out=$(report)
grep -q "| slow | pool50 | l3x+rb | 1 .*| $n | 1 | 1 |\$" <<<"$out" ||
	xm_fail "summary: a request cut in service not counted: $out"
# A variant whose name holds a dot (a fractional param) is a row of its own.
variant="$D/slow.pool50.l3x+rb~rb:fast_factor=1.5.1"
cp "$cell.csv" "$variant.csv"
out=$(report)
grep -q "| slow | pool50 | l3x+rb~rb:fast_factor=1.5 | 1 " <<<"$out" ||
	xm_fail "summary: a variant with a dot in its name left out: $out"
xm_log "ok: $n timeouts traced to the replica's draw; a retirement and a missing cause flagged"
echo PASS
