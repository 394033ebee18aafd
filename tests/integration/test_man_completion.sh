#!/bin/bash
# SPDX-License-Identifier: MIT
# Man pages (docs/man/*.8) and bash completion (deploy/bash-completion/xmesh)
# name exactly the options, objects and commands the tools' help names
# (issue 12, item 5), and the completion loads in bash.
set -eu
. "$(dirname "$0")/lib.sh"
python3 "$XM_TOP/tests/integration/check_man_completion.py" "$XM_BIN" "$XM_TOP/docs/man" \
	"$XM_TOP/deploy/bash-completion/xmesh" || xm_fail "man pages or completion drifted from the help"
for page in "$XM_TOP"/docs/man/*.8; do
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
	[ -z "$out" ] || xm_fail "$(basename "$page"): $out"
done
# The completion runs: complete 'xmeshctl ser' and 'xmeshctl service r'.
bash -c '
	. /usr/share/bash-completion/bash_completion 2>/dev/null || { echo skip; exit 0; }
	. "$1"
	COMP_WORDS=(xmeshctl ser); COMP_CWORD=1; COMP_LINE="xmeshctl ser"; COMP_POINT=${#COMP_LINE}
	_xmeshctl; [ "${COMPREPLY[*]}" = service ] || { echo "xmeshctl ser -> ${COMPREPLY[*]}"; exit 1; }
	COMP_WORDS=(xmeshctl service r); COMP_CWORD=2; COMP_LINE="xmeshctl service r"; COMP_POINT=${#COMP_LINE}
	_xmeshctl; [ "${COMPREPLY[*]}" = reload ] || { echo "xmeshctl service r -> ${COMPREPLY[*]}"; exit 1; }
' _ "$XM_TOP/deploy/bash-completion/xmesh" || xm_fail "the completion does not complete"
xm_log "ok: man pages and completion match the help"
