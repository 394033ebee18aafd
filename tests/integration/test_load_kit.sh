#!/bin/bash
# SPDX-License-Identifier: MIT
# xm-load's one engine, one option set, one result format (issue 12): every
# loop, connection and protocol setting of `xm-load rr` against the kit's
# servers on loopback in a netns of its own; every key printed is one of
# `xm-load keys` (one name per quantity, latencies in us), -j prints the same
# object, the per-backend counts add up, and the old spellings are refused
# with a message that says what to use.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_netns k
L=$XM_TOOLS/xm-load
in_k() { ip netns exec "$XM_PREFIX-k" "$@"; }
xm_bg in_k "$XM_TOOLS/xm-serve" rr -l 127.0.0.1:7000
xm_bg in_k "$XM_TOOLS/xm-serve" scenario --listen 127.0.0.1:7001 --replica 0 \
	--scenario scenarios/e2e-pool.json --label 4
xm_bg in_k "$XM_TOOLS/xm-serve" label --listen 127.0.0.1:7002 --label L1
xm_bg in_k "$XM_TOOLS/xm-serve" http --listen 127.0.0.1:7003 --label H1 --error-rate 0.1
xm_bg in_k "$XM_TOOLS/xm-serve" traffic --listen 127.0.0.1:7004 --size 1000 --answer 5000
xm_bg in_k "$XM_TOOLS/xm-serve" udp --listen 127.0.0.1:7005 --label U1
xm_bg in_k "$XM_TOOLS/xm-serve" udp-echo --listen 127.0.0.1:7006
for p in 7000 7001 7002 7003 7004; do xm_wait_listen k $p; done

keys=$("$L" keys | cut -f1)
# check NAME LINE REQUIRED-KEYS...: every key known, the required ones present
check() {
	local name=$1 line=$2 k; shift 2
	[ -n "$line" ] || xm_fail "$name: no result line"
	for k in $(tr ' ' '\n' <<<"$line" | sed 's/=.*//'); do
		# a key of its own, or FAMILY.LABEL
		grep -qx -- "$k" <<<"$keys" || grep -qx -- "${k%%.*}.LABEL" <<<"$keys" ||
			xm_fail "$name: key '$k' is not one of xm-load keys: $line"
	done
	for k in "$@"; do
		[ -n "$(xm_kv "$k" "$line")" ] || xm_fail "$name: no $k= in: $line"
	done
	xm_log "ok: $name: $line"
}
common=(mode requests ok errors err.connect err.reset err.timeout err.status success rps
	p50_us p90_us p99_us p999_us max_us conns retried duration_s)

out=$(in_k "$L" rr -t 127.0.0.1:7000 -s 64 -n 400)
check "closed loop, tcp, --requests" "$out" "${common[@]}"
xm_assert "$(xm_kv requests "$out")" -eq 400 "--requests 400 measures 400 answers"
xm_assert "$(xm_kv ok "$out")" -eq 400 "all 400 answered"
xm_assert "$(xm_kv conns "$out")" -eq 1 "one pooled connection"

out=$(in_k "$L" rr -t 127.0.0.1:7000 -s 64 -r 400 -d 0.5 -c 4)
check "open loop, tcp, 4 pooled" "$out" "${common[@]}" lag_p50_us lag_p99_us
xm_assert "$(xm_kv requests "$out")" -eq 200 "400/s for 0.5 s is 200 requests"

out=$(in_k "$L" rr -t 127.0.0.1:7000 -P http -s 100 -c 2 -n 100 --new)
check "closed loop, http, new connections" "$out" "${common[@]}"
xm_assert "$(xm_kv conns "$out")" -eq 100 "a connection per request"

csv=$XM_RUN_DIR/line.csv
out=$(in_k "$L" rr -t 127.0.0.1:7001 -P line -r 200 -d 0.5 --per-conn 10 --csv "$csv")
check "open loop, line, pooled 10 per connection" "$out" "${common[@]}" backend.4
xm_assert "$(xm_kv backend.4 "$out")" -eq "$(xm_kv requests "$out")" "every answer from backend 4"
xm_assert "$(xm_kv conns "$out")" -ge 10 "--per-conn 10 retires connections"
[ "$(head -1 "$csv")" = "t,latency_ms,backend,ok,new_conn,err,retried,lport,sent,first_lport" ] ||
	xm_fail "CSV header: $(head -1 "$csv")"
xm_assert "$(($(wc -l <"$csv") - 1))" -eq "$(xm_kv requests "$out")" "a CSV row per request"

out=$(in_k "$L" rr -t 127.0.0.1:7001 -P http -r 200 -d 0.5 --new)
check "open loop, http to the scenario server, new connections" "$out" "${common[@]}" backend.4

# connect mode as an engine setting: a new connection per request, the label the server sends
out=$(in_k "$L" rr -t 127.0.0.1:7002 -P label --new -c 2 -n 50)
check "closed loop, label, new connections" "$out" "${common[@]}" backend.L1
xm_assert "$(xm_kv backend.L1 "$out")" -eq 50 "labels counted per backend"
xm_assert "$(xm_kv not_vip "$out")" -eq 0 "getpeername() is the target"

out=$(in_k "$L" rr -t 127.0.0.1:7009 -P http -r 100 -d 0.3)
# (no latency keys without an answer: no made-up zero)
check "nothing listening" "$out" mode requests ok errors err.connect success rps conns
xm_assert "$(xm_kv err.connect "$out")" -eq "$(xm_kv requests "$out")" "refused connects are err.connect"
xm_assert "$(xm_kv ok "$out")" -eq 0 "no answer"

out=$(in_k "$L" stream -t 127.0.0.1:7000 -d 0.3)
check "stream" "$out" mode duration_s gbit_s

# the special modes: the same keys for the same quantities
out=$(in_k "$L" get -t 127.0.0.1:7003 -n 100 -c 2 -k 10)
check "get" "$out" mode requests ok errors err.status success p50_us p99_us backend.H1 \
	backend_5xx.H1 backend_p50_us.H1
xm_assert "$(xm_kv backend_5xx.H1 "$out")" -eq 10 "every 10th answer a 500"
xm_assert "$(xm_kv err.status "$out")" -eq 10 "5xx are err.status"
out=$(in_k "$L" udp -t 127.0.0.1:7005 -n 20)
check "udp" "$out" mode requests ok errors err.timeout not_vip backend.U1
touch "$XM_RUN_DIR/go"
out=$(in_k "$L" hold -t 127.0.0.1:7003 --wait-file "$XM_RUN_DIR/go" 2>/dev/null)
check "hold" "$out" mode requests ok backend.H1
out=$(in_k "$L" udpconnect -t 127.0.0.1:7005 -n 100)
check "udpconnect" "$out" mode requests ok ns_per_connect
out=$(in_k "$L" traffic -t 127.0.0.1:7004 -s 1000 --answer 5000 -c 2 -n 6)
check "traffic" "$out" mode requests ok errors bytes
xm_assert "$(xm_kv ok "$out")" -eq 6 "6 exact exchanges"
out=$(in_k "$L" udp-send -t 127.0.0.1:7006 -n 20 -s 8-1400)
check "udp-send" "$out" mode requests ok errors
out=$(in_k "$L" udp-probe -t 127.0.0.1:7006 -d 0.2 --interval 0.01)
check "udp-probe" "$out" mode requests ok

# -j: the same object
line=$(in_k "$L" rr -t 127.0.0.1:7001 -P line -c 1 -n 50)
json=$(in_k "$L" rr -t 127.0.0.1:7001 -P line -c 1 -n 50 -j)
python3 - "$line" "$json" <<'PY' || xm_fail "-j does not print the keys of the result line"
import json, sys
kv = dict(p.split("=", 1) for p in sys.argv[1].split())
def flat(o, pre=""):
    for k, v in o.items():
        if isinstance(v, dict):
            yield from flat(v, pre + k + ".")
        else:
            yield pre + k, v
js = dict(flat(json.loads(sys.argv[2])))
assert set(kv) == set(js), (sorted(kv), sorted(js))
assert js["requests"] == 50 and js["mode"] == "rr", js
PY
xm_log "ok: -j prints the same keys as the result line"

# the old spellings: refused with what to use
for old in "rr -a 127.0.0.1:7000" "rr -t 127.0.0.1:7000 -N 10" "open --target 127.0.0.1:7001" \
	"rr 127.0.0.1 7000" "rr -t 127.0.0.1:7000 --flows 2" "connect 127.0.0.1 7002 -n 1" \
	"get 127.0.0.1 7003" "traffic 127.0.0.1 7004 -q 1000" "udp-send 127.0.0.1 7006 -f 2"; do
	# shellcheck disable=SC2086
	if err=$(in_k "$L" $old 2>&1 >/dev/null); then xm_fail "old spelling accepted: $old"; fi
	grep -q -- "--help\|--target\|MODE" <<<"$err" || xm_fail "'$old': no hint in: $err"
done
xm_log "ok: old spellings refused with a hint"

# xm-serve: one listen syntax in every mode (--listen, its --help says so) and
# the old positional / short spellings refused (exit 2) with the rename
S=$XM_TOOLS/xm-serve
for mode in rr label http udp scenario traffic udp-echo; do
	"$S" "$mode" --help | head -1 | grep -q -- "^usage: xm-serve $mode --listen ADDR" ||
		xm_fail "xm-serve $mode --help: not 'usage: xm-serve $mode --listen ADDR'"
	rc=0; err=$("$S" "$mode" 127.0.0.1 7999 2>&1 >/dev/null) || rc=$?
	[ "$rc" = 2 ] || xm_fail "xm-serve $mode ADDR PORT (old positional): exit $rc, not 2"
	grep -q -- "--listen ADDR:PORT" <<<"$err" || xm_fail "xm-serve $mode ADDR PORT: no hint in: $err"
done
for old in "label -l 127.0.0.1:7999 -l L" "http -l 127.0.0.1:7999 -e 0.1" \
	"http -l 127.0.0.1:7999 -d 20" "traffic -l 127.0.0.1:7999 -q 1000" \
	"traffic -l 127.0.0.1:7999 -r 1000" "scenario -l 127.0.0.1:7999 --id 4" "rr -l 7999 -j"; do
	rc=0
	# shellcheck disable=SC2086
	err=$("$S" $old 2>&1 >/dev/null) || rc=$?
	[ "$rc" = 2 ] || xm_fail "xm-serve $old: exit $rc, not 2"
	grep -q -- "--help" <<<"$err" || xm_fail "xm-serve $old: no hint in: $err"
done
xm_log "ok: xm-serve: --listen in every mode, old spellings refused with a hint"
echo PASS
