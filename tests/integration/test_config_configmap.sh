#!/bin/bash
# SPDX-License-Identifier: MIT
# A config file mounted from a ConfigMap is reloaded when the kubelet swaps
# it: the path is config.json -> ..data/config.json, and an update writes a
# new timestamped directory, points a "..data_tmp" symlink at it and renames
# that over "..data" (the event names "..data", never config.json). Done
# here the same way, twice; a bad file in a swap is rejected and the running
# services stay, and its error points at the offending value with what to do.
set -eu
. "$(dirname "$0")/lib.sh"
xm_setup
DIR=$XM_RUN_DIR/xm-cm
mkdir -p "$DIR"
swap() { # NAME JSON: the kubelet's atomic update
	mkdir "$DIR/$1"
	printf '%s\n' "$2" >"$DIR/$1/config.json"
	ln -s "$1" "$DIR/..data_tmp"
	mv -T "$DIR/..data_tmp" "$DIR/..data"
}
svc() { # VIP
	printf '{"services": [{"name": "s", "vip": "%s", "port": 80, "backends": [{"address": "10.77.0.3", "port": 8080}]}]}' "$1"
}
swap ..2026_11_29_00_00_00.1 "$(svc 10.96.7.1)"
ln -s ..data/config.json "$DIR/config.json"
AGENT_LOG=$XM_RUN_DIR/agent.log
xm_agent_start --config "$DIR/config.json" 2>>"$AGENT_LOG"
xm_lb_wait 10.96.7.1:80 1
only() { # VIP: it is the one service
	for _ in $(seq 50); do
		[ "$(xm_ctl -j service list | xm_json '[s["vip"] for s in j]')" = "[\"$1\"]" ] && return 0
		sleep 0.1
	done
	xm_fail "$2: services are $(xm_ctl -j service list | xm_json '[s["vip"] for s in j]')"
}
only 10.96.7.1 "first config"
old=$(readlink "$DIR/..data")
swap ..2026_11_29_00_01_00.2 "$(svc 10.96.7.2)"
rm -rf "${DIR:?}/$old"
only 10.96.7.2 "after the ..data swap"
xm_log "ok: ..data swap reloaded the config"
old=$(readlink "$DIR/..data")
swap ..2026_11_29_00_02_00.3 '{"services": [ nope ]}'
rm -rf "${DIR:?}/$old"
for _ in $(seq 50); do grep -q "config rejected" "$AGENT_LOG" && break; sleep 0.1; done
grep -q "config rejected" "$AGENT_LOG" || xm_fail "a bad swapped file was not reported"
only 10.96.7.2 "after a bad swap the running services stay"
# A swap with a misspelt field inside "rebalance": the rejection points at its
# value (line 2, column 24, not the "rebalance" object) and names the field meant.
old=$(readlink "$DIR/..data")
swap ..2026_11_29_00_02_30.4 "$(printf '%s\n%s' \
	'{"services": [{"name": "s", "vip": "10.96.7.4", "port": 80, "algorithm": "l3x",' \
	' "rebalance": {"idle": 100}}]}')"
rm -rf "${DIR:?}/$old"
for _ in $(seq 50); do [ "$(grep -c "config rejected" "$AGENT_LOG")" -ge 2 ] && break; sleep 0.1; done
line=$(grep "config rejected" "$AGENT_LOG" | tail -n1)
grep -qF "config.json:2:24: rebalance.idle: unknown field (known here: enabled," <<<"$line" ||
	xm_fail "misspelt rebalance field: not pointed at its value: $line"
grep -qF 'did you mean "idle_ms"?' <<<"$line" || xm_fail "misspelt rebalance field: no suggestion: $line"
xm_log "ok: $line"
only 10.96.7.2 "after a swap with a misspelt field the running services stay"
old=$(readlink "$DIR/..data")
swap ..2026_11_29_00_03_00.5 "$(svc 10.96.7.3)"
rm -rf "${DIR:?}/$old"
only 10.96.7.3 "after a second swap"
xm_log "PASS"
