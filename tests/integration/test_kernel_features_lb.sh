#!/bin/bash
# SPDX-License-Identifier: MIT
# Kernel features, LB side (docs/kernels.md; see test_kernel_features.sh):
#  - no bpf_set_retval (< 5.18): a connect() to an empty service is refused
#    with EPERM (at once) instead of ECONNREFUSED;
#  - no netns cookie in sockops (< 5.15): redirection is refused with the
#    kernel version it needs, and the rest (LB) runs, with a sockops program
#    of its own (otherwise the LB's part runs inside redirect's) that counts
#    established connections;
#  - an unknown feature name in XMESH_DISABLE_FEATURES is refused.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
xm_node n1
xm_pod n1 c 10.77.0.2/24
XMESH_DISABLE_FEATURES=set_retval,sockops_netns_cookie xm_agent_start 2>"$XM_RUN_DIR/agent.log"
grep -q "datapath module redirect is off: it needs sockops_netns_cookie (Linux >= 5.15)" \
	"$XM_RUN_DIR/agent.log" || xm_fail "redirect refused, naming the kernel it needs"
[ ! -e "$XM_PIN/links/sockops" ] || xm_fail "redirect attached although refused"
xm_ctl service add '{"vip": "10.96.0.12", "port": 80, "backends": []}'
xm_lb_wait 10.96.0.12:80 0
out=$(xm_pod_exec c "$XM_TOOLS/xm-load" rr -j -t 10.96.0.12:80 -P label --new -n 5)
xm_assert "$(echo "$out" | xm_json 'j.get("errno",{}).get("EPERM",0)')" -eq 5 \
	"without set_retval an empty service refuses with EPERM (the LB runs)"
[ -e "$XM_PIN/links/lb_sockops" ] || xm_fail "LB sockops not attached while redirect is off"
xm_pod n1 b 10.77.0.3/24
xm_bg ip netns exec "$XM_PREFIX-b" "$XM_TOOLS/xm-serve" http --listen 10.77.0.3:8080 --label b
xm_ctl service add '{"vip": "10.96.0.13", "port": 80, "backends": [ { "address": "10.77.0.3", "port": 8080 } ]}'
xm_lb_wait 10.96.0.13:80 1
xm_pod_exec c "$XM_TOOLS/xm-load" get -j -t 10.96.0.13:80 -n 5 -c 1 -k 1 >/dev/null
xm_assert "$(xm_ctl -j backend list 10.96.0.13:80 interval 0 | xm_json 'j[0]["connections"]')" -eq 5 \
	"the LB's own sockops program counts established connections"
kill "$XM_AGENT_PID"; wait "$XM_AGENT_PID" 2>/dev/null || true

XMESH_DISABLE_FEATURES=warp_drive "$XM_BIN/xmesh-agent" --cgroup "$XM_CGROUP" \
	--pin-root "$XM_PIN" 2>"$XM_RUN_DIR/bad.log" && xm_fail "unknown feature accepted"
grep -q "unknown feature 'warp_drive'" "$XM_RUN_DIR/bad.log" || xm_fail "unknown feature: clear error"
echo "ok"
