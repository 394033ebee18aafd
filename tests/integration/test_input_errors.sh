#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad input to xmeshctl, xmesh-cni and the agent's control socket gets a clear
# error naming it, and changes nothing; before, each of these was taken:
# - xmeshctl numbers with junk ("top count abc" ran forever: abc read as 0,
#   "interval 5x" as 5), "prog profile nan", a relative --pin-root, a missing
#   option value reported as "unknown option" after getopt's own line;
#   sock skip arguments hidden behind "no datapath"; `sock skip del` of an
#   entry that is not there (a mistyped port) exiting 0;
# - xmesh-cni: a misspelt field of ours ("pin_root": the default pin root was
#   used), an unknown logLevel, an unknown CNI_COMMAND reported as bad stdin;
#   the first two refused by ADD (the pod's events say it) but not by DEL
#   and STATUS, which took such a config before: teardown never sticks, a
#   node's network never turns not ready over it;
# - the control socket: a member a cmd does not take, a NUL inside the line
#   (cut there: the rest ignored), a request without its newline before the
#   client shut its side (no answer at all);
# - xmeshctl service add: a key given twice (the second silently won), a
#   misspelt rebalance field (now with the nearest name), a switch that acts
#   only through another one that is off (tail_self 1 with tail_factor 0).
set -eu
. "$(dirname "$0")/lib.sh"

# expect_err WHAT SUBSTRING CMD...: CMD exits 1 with one "Error: ..." line holding SUBSTRING.
expect_err() {
	local what=$1 says=$2 out rc=0
	shift 2
	out=$(timeout 10 "$@" 2>&1 >/dev/null) || rc=$?
	[ "$rc" = 1 ] || xm_fail "$what: exit $rc, want 1 (stderr: $out)"
	[ "$(wc -l <<<"$out")" = 1 ] || xm_fail "$what: more than one line: $out"
	grep -qF -- "$says" <<<"$out" || xm_fail "$what: '$out' does not say '$says'"
	xm_log "ok: $what -> $out"
}

# --- xmeshctl: refused before anything is read (no datapath needed) ---
C=("$XM_BIN/xmeshctl" --pin-root /nonexistent/xm-input)
expect_err "backend list interval abc" "interval 'abc'" "${C[@]}" backend list interval abc
expect_err "backend list interval 5x" "interval '5x'" "${C[@]}" backend list interval 5x
expect_err "top count abc" "count 'abc'" "${C[@]}" top count abc
expect_err "top count 2x" "count '2x'" "${C[@]}" top count 2x
expect_err "top interval 500ms" "interval '500ms'" "${C[@]}" top interval 500ms
expect_err "prog profile nan" "not 'nan'" "${C[@]}" prog profile nan
expect_err "prog profile inf" "not 'inf'" "${C[@]}" prog profile inf
expect_err "prog profile 1 2" "what is '2'" "${C[@]}" prog profile 1 2
expect_err "sock skip add port 80x" "port '80x'" "${C[@]}" sock skip add port 80x
expect_err "sock skip add port 0" "port '0'" "${C[@]}" sock skip add port 0
expect_err "sock skip frob" "what is 'frob'" "${C[@]}" sock skip frob
expect_err "--pin-root relative" "give an absolute path" "$XM_BIN/xmeshctl" --pin-root rel status
expect_err "--pin-root without a value" "option '--pin-root' needs a value" \
	"$XM_BIN/xmeshctl" --pin-root
expect_err "-r without a value" "option '-r' needs a value" "$XM_BIN/xmeshctl" -r
expect_err "unknown short option" "what is option '-x'" "$XM_BIN/xmeshctl" -x status
out=$("$XM_BIN/xmeshctl" -jx status 2>/dev/null) && xm_fail "-jx taken"
grep -qF "{\"error\":\"what is option '-x'?" <<<"$out" || xm_fail "-jx: not one JSON error: $out"
expect_err "option with a value it does not take" "what is option '--json=1'" \
	"$XM_BIN/xmeshctl" --json=1 status
expect_err "service add with a key twice" "duplicate object key near '\"port\"'" "${C[@]}" \
	service add '{"vip": "10.96.0.11", "port": 80, "port": 81}'
expect_err "service add with a backend key twice" "duplicate object key" "${C[@]}" \
	service add '{"vip": "10.96.0.11", "port": 80, "backends": [{"address": "10.77.0.3",
		"port": 8080, "address": "10.77.0.4"}]}'
out=$("${C[@]}" -j prog help)
python3 -c 'import json,sys; assert "help" in json.loads(sys.argv[1])' "$out" ||
	xm_fail "-j prog help is not JSON: $out"
xm_log "ok: -j prog help is JSON"

# --- xmesh-cni: config and environment ---
# ADD in this process's own netns: refused before anything is touched; were
# it taken, pin root and state dir do not exist (fail-open, nothing written).
N=/nonexistent/xm-input
conf() {
	echo "{\"cniVersion\":\"1.1.0\",\"name\":\"xm-input\",\"type\":\"xmesh-cni\",\"stateDir\":\"$N\",$1,
		\"prevResult\":{\"cniVersion\":\"1.1.0\",\"ips\":[{\"address\":\"10.77.0.9/24\"}]}}"
}
ENV=(CNI_CONTAINERID=xm-input CNI_IFNAME=eth0 CNI_NETNS=/proc/self/ns/net CNI_PATH=/nonexistent)
cni_code() { # WHAT CODE SUBSTRING STDIN [ENV...]
	local what=$1 code=$2 says=$3 in=$4 out
	shift 4
	out=$(env CNI_COMMAND=ADD "${ENV[@]}" "$@" "$XM_BIN/xmesh-cni" <<<"$in" 2>/dev/null) &&
		xm_fail "$what: accepted"
	python3 -c '
import json, sys
e = json.loads(sys.argv[1])
assert e["code"] == int(sys.argv[2]) and sys.argv[3] in e["msg"], e' "$out" "$code" "$says" ||
		xm_fail "$what: want code $code saying '$says', got: $out"
	xm_log "ok: xmesh-cni $what -> $out"
}
cni_code "pin_root" 2 'did you mean "pinRoot"' "$(conf '"pin_root":"'$N'"')"
cni_code "logLevel verbose" 7 "logLevel 'verbose'" "$(conf '"pinRoot":"'$N'","logLevel":"verbose"')"
for cmd in DEL STATUS; do
	# (pin root and state dir given: a DEL that goes on touches nothing either)
	env CNI_COMMAND=$cmd "${ENV[@]}" "$XM_BIN/xmesh-cni" <<<"$(conf '"pinRoot":"'$N'","LogLevel":"debug"')" >/dev/null 2>&1 ||
		xm_fail "$cmd refused a config with a misspelt field (it took it before)"
done
xm_log "ok: DEL and STATUS go on with a misspelt field"
cni_code "CNI_COMMAND=FOO with junk on stdin" 4 "unknown CNI_COMMAND 'FOO'" junk CNI_COMMAND=FOO
out=$("$XM_BIN/xmesh-cni" conflist add --dir /nonexistent/xm-input --dry-run \
	--plugin '{"type":"xmesh-cni","pinroot":"/x"}' 2>&1) && xm_fail "conflist add took pinroot"
grep -qF 'did you mean "pinRoot"' <<<"$out" || xm_fail "conflist add: unclear: $out"
xm_log "ok: conflist add refuses a misspelt field of ours"

# --- with an agent: sock skip del, and the control socket ---
xm_setup
xm_node n1
CFG=$XM_RUN_DIR/xm-config.json
cat >"$CFG" <<'EOC'
{ "services": [ { "vip": "10.96.0.10", "port": 80,
    "backends": [ { "address": "10.77.0.3", "port": 8080, "weight": 1 },
                  { "address": "10.77.0.4", "port": 8080, "weight": 1 } ] } ] }
EOC
xm_agent_start --netns "$(xm_netns_path n1)" --config "$CFG" 2>"$XM_RUN_DIR/agent.log"
SOCK=$(ls "$XM_RUN_DIR"/*.sock)
xm_lb_wait 10.96.0.10:80 2

xm_ctl sock skip add port 8080
expect_err "sock skip del of an absent port" "port 8081 is not opted out" \
	"$XM_BIN/xmeshctl" --pin-root "$XM_PIN" sock skip del port 8081
xm_assert "$(xm_ctl -j sock skip list | xm_json 'len(j)')" -eq 1 "the real entry stays"
xm_ctl sock skip del port 8080
xm_assert "$(xm_ctl -j sock skip list | xm_json 'len(j)')" -eq 0 "a present entry is deleted"

# ask BYTES [shut]: the agent's answer to raw bytes (Python escapes: \n, \x00),
# after shutdown(SHUT_WR) when asked.
ask() {
	python3 - "$SOCK" "$1" "${2:-}" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
if sys.argv[3] == "shut":
    s.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(data.decode())
PY
}
out=$(ask '{"cmd":"backend-weight","service":"10.96.0.10:80","backend":"10.77.0.3:8080","weight":3,"wieght":5}\n')
grep -qF 'takes no \"wieght\"' <<<"$out" || xm_fail "unknown member: $out"
grep -qF 'did you mean \"weight\"?' <<<"$out" || xm_fail "unknown member, no suggestion: $out"
xm_log "ok: a member the cmd does not take -> $out"
out=$(ask '{"cmd":"service-del","service":"10.96.0.10:80"}\x00junk\n')
grep -qF "NUL byte at offset 47" <<<"$out" || xm_fail "a NUL inside the request line: $out"
xm_log "ok: NUL inside the line -> $out"
out=$(ask '{"cmd":"service-del","service":"10.96.0.10:80"}' shut)
grep -qF "followed by a newline" <<<"$out" || xm_fail "request without its newline: '$out'"
xm_log "ok: no newline before the end of input -> $out"
# service add: refused by the agent with what to do; nothing added
X=("$XM_BIN/xmeshctl" --pin-root "$XM_PIN")
expect_err "service add, a misspelt rebalance field" 'rebalance.idle: unknown field (known here: enabled,' \
	"${X[@]}" service add '{"vip": "10.96.0.11", "port": 80, "algorithm": "l3x", "rebalance": {"idle": 100}}'
expect_err "service add, did you mean" 'did you mean "idle_ms"?' \
	"${X[@]}" service add '{"vip": "10.96.0.11", "port": 80, "algorithm": "l3x", "rebalance": {"idle": 100}}'
expect_err "service add, tail_self without tail_factor" 'rebalance.tail_self: 1 needs "tail_factor" above 0' \
	"${X[@]}" service add '{"vip": "10.96.0.11", "port": 80, "algorithm": "l3x",
		"rebalance": {"tail_self": 1, "tail_factor": 0}}'
expect_err "service add, sticky_pooled 0.5" 'params.sticky_pooled: must be 0 or 1' \
	"${X[@]}" service add '{"vip": "10.96.0.11", "port": 80, "algorithm": "l3x", "params": {"sticky_pooled": 0.5}}'
expect_err "service add, an unknown protocol" '"protocol" must be "tcp" or "udp"; did you mean "udp"?' \
	"${X[@]}" service add '{"vip": "10.96.0.11", "port": 80, "protocol": "UDP"}'
xm_ctl -j service list | xm_json '[s["vip"] for s in j]' | grep -q 10.96.0.11 &&
	xm_fail "a refused service add added the service"
xm_lb_wait 10.96.0.10:80 2
xm_assert "$(xm_ctl -j backend list 10.96.0.10:80 interval 0 | xm_json '[b["weight"] for b in j]')" \
	= "[1.0, 1.0]" "no refused request changed the service"
kill -0 "$XM_AGENT_PID" || xm_fail "agent died"
xm_log "ok: refused requests changed nothing"
