#!/bin/bash
# SPDX-License-Identifier: MIT
# `xmeshctl -j` always prints one JSON object (issue 12, item 3): help, no
# object, object help, errors, and an argument that is not UTF-8.
set -eu
. "$(dirname "$0")/lib.sh"
ctl() { "$XM_BIN/xmeshctl" --pin-root /nonexistent/xm-json "$@" 2>/dev/null || true; }
is_json_object() { # WHAT OUTPUT KEY
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert isinstance(d, dict) and sys.argv[2] in d, d' "$2" "$3" 2>/dev/null ||
		xm_fail "$1: not a JSON object with \"$3\": '$2'"
	xm_log "ok: $1 -> JSON with \"$3\""
}
is_json_object "-j" "$(ctl -j)" help
is_json_object "-j help" "$(ctl -j help)" help
is_json_object "-j service help" "$(ctl -j service help)" help
is_json_object "-j bogus" "$(ctl -j bogus)" error
is_json_object "-j endpoint del <non-UTF-8>" "$(ctl -j endpoint del $'\xff\xfe')" error
is_json_object "-j service del <non-UTF-8>" "$(ctl -j service del $'10.0.0.1:80\xff')" error
is_json_object "-j backend set ... weight nan" "$(ctl -j backend set 10.0.0.1:80 10.0.0.2:80 weight nan)" error
