#!/bin/bash
# SPDX-License-Identifier: MIT
# The Kubernetes source over TLS, as on a real cluster: a kubeconfig (JSON)
# with the CA inline (certificate-authority-data) and a token reaches the fake
# API server over https and programs its Service; a server certificate from
# another CA is refused (clear log, nothing applied); a YAML kubeconfig is
# refused at start with the command that converts it; in-cluster config
# without KUBERNETES_SERVICE_HOST says what to do, and so does a context whose
# user the kubeconfig lacks; a --k8s-api URL may end in a slash; fields the
# agent cannot honour (tls-server-name, basic auth, impersonation, unknown
# ones, a proxy scheme client-go refuses) are refused at start, naming the
# field; proxy-url is used (an HTTP and an HTTPS CONNECT proxy, the latter
# also unchecked with insecure-skip-tls-verify, and a SOCKS5 one, over NO_PROXY);
# with token and tokenFile the file's token is sent; a server that requires a
# client certificate gets it, inline (client-*-data) and as files.
set -eu
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || xm_skip "openssl missing"
xm_setup
D=$XM_RUN_DIR
cert() { # NAME: a self-signed certificate for 127.0.0.1
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=xm-test-$1" \
		-addext "subjectAltName=IP:127.0.0.1" -keyout "$D/$1.key" -out "$D/$1.crt" 2>/dev/null
}
cert api
cert other
xm_bg python3 "$XM_TOP/tests/integration/k8s_fake_api.py" --listen 127.0.0.1:0 --token secret \
	--node xm-node --tls-cert "$D/api.crt" --tls-key "$D/api.key" --port-file "$D/port"
for _ in $(seq 50); do [ -s "$D/port" ] && break; sleep 0.1; done
PORT=$(cat "$D/port")
ctl() { curl -sf --cacert "$D/api.crt" -X POST --data "$2" "https://127.0.0.1:$PORT/_ctl/$1" >/dev/null; }
ctl apply '{"kind":"services","object":{"metadata":{"name":"tls"},"spec":{"clusterIP":"10.96.9.1","ports":[{"port":443}]}}}'
ctl apply '{"kind":"endpointslices","object":{"metadata":{"name":"tls-1","labels":{"kubernetes.io/service-name":"tls"}},"addressType":"IPv4","ports":[{"port":8443}],"endpoints":[{"addresses":["10.77.0.3"]},{"addresses":["10.77.0.4"]}]}}'
kubeconfig() { # CA-FILE [USER-FIELDS]
	cat <<EOK
{"apiVersion": "v1", "kind": "Config", "current-context": "t",
 "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:$PORT",
   "certificate-authority-data": "$(base64 -w0 <"$1")"}}],
 "users": [{"name": "u", "user": {"token": "secret"${2:+, $2}}}],
 "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}]}
EOK
}

# --- a YAML kubeconfig: refused at start, with the conversion command ---
printf 'apiVersion: v1\nkind: Config\nclusters: []\n' >"$D/kubeconfig.yaml"
if "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" \
	--kubeconfig "$D/kubeconfig.yaml" 2>"$D/yaml.err"; then
	xm_fail "the agent ran with a YAML kubeconfig"
fi
grep -q "kubectl config view --raw --flatten -o json" "$D/yaml.err" ||
	xm_fail "no conversion hint for a YAML kubeconfig: $(cat "$D/yaml.err")"
xm_log "ok: YAML kubeconfig refused: $(grep -o 'looks like YAML.*' "$D/yaml.err" | head -c 120)"
if env -u KUBERNETES_SERVICE_HOST "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" \
	--k8s 2>"$D/incluster.err"; then
	xm_fail "the agent ran in-cluster outside a cluster"
fi
grep -q "KUBERNETES_SERVICE_HOST is not set" "$D/incluster.err" ||
	xm_fail "no hint without KUBERNETES_SERVICE_HOST: $(cat "$D/incluster.err")"
xm_log "ok: --k8s outside a pod says what to do"
# a context whose user is not in users[]: refused at start (the API would see no credentials)
kubeconfig "$D/api.crt" | sed 's/"user": "u"/"user": "nobody"/' >"$D/nouser.json"
if "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" \
	--kubeconfig "$D/nouser.json" 2>"$D/nouser.err"; then
	xm_fail "the agent ran with a context whose user is not in the kubeconfig"
fi
grep -q "the context's user \"nobody\" is not in users\[\]" "$D/nouser.err" ||
	xm_fail "no clear error for a missing kubeconfig user: $(cat "$D/nouser.err")"
xm_log "ok: a context's missing user refused at start"

# --- the wrong CA: nothing applied, a clear log line ---
kubeconfig "$D/other.crt" >"$D/wrong.json"
LOG=${XM_AGENT_LOG:-$D/agent.log}
xm_agent_start --kubeconfig "$D/wrong.json" --node-name xm-node 2>>"$LOG"
for _ in $(seq 50); do grep -q "SSL\|certificate" "$LOG" && break; sleep 0.1; done
grep -q "SSL\|certificate" "$LOG" || xm_fail "no TLS error logged: $(tail -3 "$LOG")"
xm_log "ok: wrong CA: $(grep -m1 'SSL\|certificate' "$LOG" | cut -c1-140)"
xm_assert "$(xm_ctl -j service list | xm_json 'len(j)')" -eq 0 "nothing applied with the wrong CA"
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true

# --- the right CA, inline (and --k8s-api with a trailing slash: requests must not go to //api) ---
kubeconfig "$D/api.crt" >"$D/good.json"
xm_agent_start --kubeconfig "$D/good.json" --node-name xm-node --k8s-api "https://127.0.0.1:$PORT/" \
	2>>"$LOG"
xm_lb_wait 10.96.9.1:443 2
xm_assert "$(xm_ctl -j service list | xm_json 'j[0]["k8s"]')" = default/tls "the Service came over TLS"
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true

# --- kubeconfig fields the agent cannot honour: refused at start, the field named ---
refused() { # NAME PATTERN SED-EXPR: the kubeconfig edited by SED-EXPR is refused with PATTERN
	kubeconfig "$D/api.crt" | sed "$3" >"$D/$1.json"
	# timeout: an agent that took it would run, and the test would wait for good
	if timeout 10 "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" --pin-root "$XM_PIN" \
		--kubeconfig "$D/$1.json" 2>"$D/$1.err"; then
		xm_fail "the agent ran with a kubeconfig with $1"
	fi
	grep -q "$2" "$D/$1.err" || xm_fail "no clear error for $1: $(cat "$D/$1.err")"
	xm_log "ok: $1 refused: $(grep -o 'kubeconfig .*' "$D/$1.err" | head -c 200)"
}
refused tls-server-name 'cluster "c": "tls-server-name" is not supported.*give a "server" URL' \
	's/"server": /"tls-server-name": "api.example", "server": /'
refused basic-auth 'user "u": "password" (basic authentication) is not supported: give a token' \
	's/"token": "secret"/"token": "secret", "password": "pw"/'
refused impersonation 'user "u": "as" (impersonation) is not supported' \
	's/"token": "secret"/"token": "secret", "as": "admin"/'
refused unknown-user-field 'user "u": unknown field "token-file" (it takes token, tokenFile, ' \
	's/"token": "secret"/"token-file": "tok"/'
refused unknown-cluster-field 'cluster "c": unknown field "server-name" (it takes server, ' \
	's/"server": /"server-name": "x", "server": /'
refused proxy-scheme 'proxy-url "ftp://127.0.0.1:1": give http://, https:// or socks5://' \
	's|"server": |"proxy-url": "ftp://127.0.0.1:1", "server": |'

# --- proxy-url: the API server through an HTTP CONNECT proxy, then an HTTPS one ---
# NO_PROXY names the server: proxy-url wins over it, as in client-go.
proxy_run() { # NAME SCHEME CLUSTER-IP KUBECONFIG-SED [PROXY ARGS...]
	local name=$1 scheme=$2 cip=$3 edit=$4 pport
	shift 4
	rm -f "$D/$name.mode.port" "$D/$name.mode.connects"
	xm_bg python3 "$XM_TOP/tests/integration/k8s_fault_proxy.py" 127.0.0.1:0 "127.0.0.1:$PORT" \
		"$D/$name.mode" "$@"
	for _ in $(seq 50); do [ -s "$D/$name.mode.port" ] && break; sleep 0.1; done
	pport=$(cat "$D/$name.mode.port")
	ctl apply "{\"kind\":\"services\",\"object\":{\"metadata\":{\"name\":\"$name\"},\"spec\":{\"clusterIP\":\"$cip\",\"ports\":[{\"port\":443}]}}}"
	kubeconfig "$D/api.crt" | sed "s|\"server\": |\"proxy-url\": \"$scheme://127.0.0.1:$pport\", \"server\": |" |
		sed "$edit" >"$D/$name.json"
	NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 xm_agent_start --kubeconfig "$D/$name.json" \
		--node-name xm-node 2>>"$LOG"
	xm_lb_wait "$cip:443" 0
	grep -q "^CONNECT 127.0.0.1:$PORT " "$D/$name.mode.connects" ||
		xm_fail "$name: the agent did not go through the proxy"
	xm_log "ok: $name: the Service came through the proxy ($(head -1 "$D/$name.mode.connects"))"
	kill "$XM_AGENT_PID"
	wait "$XM_AGENT_PID" 2>/dev/null || true
}
proxy_run http-proxy http 10.96.9.11 '' --connect
# an https proxy is checked with the kubeconfig's CA, as the API server is
proxy_run https-proxy https 10.96.9.12 '' --connect --tls "$D/api.crt" "$D/api.key"
# insecure-skip-tls-verify: the proxy's certificate (from no CA the agent has) is not checked either
proxy_run https-proxy-insecure https 10.96.9.13 \
	's/"certificate-authority-data": "[^"]*"/"insecure-skip-tls-verify": true/' \
	--connect --tls "$D/other.crt" "$D/other.key"
# socks5: the host name goes to the proxy (client-go's socks5, curl's socks5h)
proxy_run socks5-proxy socks5 10.96.9.14 '' --socks5

# --- token and tokenFile both: the file's token is sent (client-go's rule), and said ---
echo secret >"$D/token"
kubeconfig "$D/api.crt" "\"tokenFile\": \"$D/token\"" | sed 's/"token": "secret"/"token": "stale"/' \
	>"$D/both.json"
ctl apply '{"kind":"services","object":{"metadata":{"name":"both"},"spec":{"clusterIP":"10.96.9.13","ports":[{"port":443}]}}}'
xm_agent_start --kubeconfig "$D/both.json" --node-name xm-node 2>>"$LOG"
xm_lb_wait 10.96.9.13:443 0
grep -q "the user has token and tokenFile: the token file's is sent" "$LOG" ||
	xm_fail "token and tokenFile: which one is sent is not said"
! grep -q "HTTP 401" "$LOG" || xm_fail "the stale token was sent: $(grep -m1 'HTTP 401' "$LOG")"
xm_log "ok: token and tokenFile: the file's token is sent, the log says so"
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true

# --- client certificates: a server that requires one (from CA "other") ---
cat >"$D/client.ext" <<'EOX'
extendedKeyUsage=clientAuth
EOX
openssl req -newkey rsa:2048 -nodes -subj "/CN=xm-agent" -keyout "$D/client.key" \
	-out "$D/client.csr" 2>/dev/null
openssl x509 -req -in "$D/client.csr" -CA "$D/other.crt" -CAkey "$D/other.key" \
	-CAcreateserial -days 1 -extfile "$D/client.ext" -out "$D/client.crt" 2>/dev/null
xm_bg python3 "$XM_TOP/tests/integration/k8s_fake_api.py" --listen 127.0.0.1:0 --token secret \
	--node xm-node --tls-cert "$D/api.crt" --tls-key "$D/api.key" \
	--tls-client-ca "$D/other.crt" --port-file "$D/port2"
for _ in $(seq 50); do [ -s "$D/port2" ] && break; sleep 0.1; done
PORT=$(cat "$D/port2")
curl -sf --cacert "$D/api.crt" --cert "$D/client.crt" --key "$D/client.key" -X POST \
	--data '{"kind":"services","object":{"metadata":{"name":"mtls"},"spec":{"clusterIP":"10.96.9.2","ports":[{"port":443}]}}}' \
	"https://127.0.0.1:$PORT/_ctl/apply" >/dev/null
kubeconfig "$D/api.crt" >"$D/nocert.json"
xm_agent_start --kubeconfig "$D/nocert.json" --node-name xm-node 2>>"$LOG"
for _ in $(seq 50); do [ "$(grep -c "127.0.0.1:$PORT" "$LOG")" -gt 0 ] && grep -q "services list: .*SSL\|services list: .*receiv\|services list: .*Send" "$LOG" && break; sleep 0.1; done
xm_assert "$(xm_ctl -j service list | xm_json 'len([s for s in j if s["vip"] == "10.96.9.2"])')" -eq 0 \
	"no client certificate: nothing from that server"
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
kubeconfig "$D/api.crt" "\"client-certificate-data\": \"$(base64 -w0 <"$D/client.crt")\", \"client-key-data\": \"$(base64 -w0 <"$D/client.key")\"" >"$D/inline.json"
xm_agent_start --kubeconfig "$D/inline.json" --node-name xm-node 2>>"$LOG"
xm_lb_wait 10.96.9.2:443 0
xm_log "ok: client certificate inline (client-*-data)"
kill "$XM_AGENT_PID"
wait "$XM_AGENT_PID" 2>/dev/null || true
cp "$D/client.crt" "$D/client.key" "$XM_RUN_DIR/xm-kc/" 2>/dev/null || {
	mkdir -p "$XM_RUN_DIR/xm-kc" && cp "$D/client.crt" "$D/client.key" "$XM_RUN_DIR/xm-kc/"; }
kubeconfig "$D/api.crt" '"client-certificate": "client.crt", "client-key": "client.key"' \
	>"$XM_RUN_DIR/xm-kc/files.json"
# a new Service, so that the second agent has something new to program
curl -sf --cacert "$D/api.crt" --cert "$D/client.crt" --key "$D/client.key" -X POST \
	--data '{"kind":"services","object":{"metadata":{"name":"mtls2"},"spec":{"clusterIP":"10.96.9.3","ports":[{"port":443}]}}}' \
	"https://127.0.0.1:$PORT/_ctl/apply" >/dev/null
xm_agent_start --kubeconfig "$XM_RUN_DIR/xm-kc/files.json" --node-name xm-node 2>>"$LOG"
xm_lb_wait 10.96.9.3:443 0
xm_log "ok: client certificate as files, relative to the kubeconfig"
xm_log "PASS"
