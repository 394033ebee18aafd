#!/bin/bash
# SPDX-License-Identifier: MIT
# `xmesh-cni conflist add|remove` (what the DaemonSet's installer runs) on
# real node configurations (tests/fixtures/cni): Antrea's default conflist,
# the reference bridge example (single-plugin .conf), the spec's 1.0.0 list.
# Chains exactly once, last, changes nothing else, is idempotent, refuses
# configs without chaining, undoes itself, and re-chains when the primary
# plugin rewrites its file.
set -eu
. "$(dirname "$0")/lib.sh"
FIX=$XM_TOP/tests/fixtures/cni
CNI=$XM_BIN/xmesh-cni
[ -x "$CNI" ] || xm_skip "build/bin/xmesh-cni not built"
TMP=$(mktemp -d /tmp/xm-conflist.XXXXXX)
WATCH_PID=
trap '[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null; rm -rf "$TMP"' EXIT

types() { python3 -c 'import json,sys; print(",".join(p["type"] for p in json.load(open(sys.argv[1]))["plugins"]))' "$1"; }
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2"; }
# The file equals the original once our entry is taken out.
same_but_ours() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
a["plugins"] = [p for p in a["plugins"] if p["type"] != "xmesh-cni"]
print(a == b)
EOF
}
fingerprint() { echo "$(stat -c '%i.%Y.%s' "$1").$(md5sum <"$1" | cut -c1-32)"; }
PLUGIN='{"type":"xmesh-cni","pinRoot":"/sys/fs/bpf/xmesh","logFile":"/var/log/xmesh-cni.log"}'

# --- Antrea --------------------------------------------------------------
d=$TMP/antrea; mkdir "$d"
cp "$FIX/10-antrea.conflist" "$FIX/99-loopback.conf" "$d/"
"$CNI" conflist add --dir "$d" --plugin "$PLUGIN"
f=$d/10-antrea.conflist
xm_assert "$(types "$f")" = antrea,portmap,bandwidth,xmesh-cni "Antrea: chained last"
xm_assert "$(same_but_ours "$f" "$FIX/10-antrea.conflist")" = True "Antrea: nothing else changed"
xm_assert "$(field "$f" cniVersion)" = 0.3.0 "Antrea: cniVersion kept"
xm_assert "$(types "$f" | tr , '\n' | grep -c xmesh-cni)" -eq 1 "Antrea: one entry"
[ "$(field "$d/99-loopback.conf" type)" = loopback ] || xm_fail "other files untouched"
fp=$(fingerprint "$f")
"$CNI" conflist add --dir "$d" --plugin "$PLUGIN"
xm_assert "$(fingerprint "$f")" = "$fp" "Antrea: add again does not rewrite the file"
# A changed entry of ours is replaced, not added.
"$CNI" conflist add --dir "$d" --plugin '{"type":"xmesh-cni","pinRoot":"/sys/fs/bpf/other"}'
xm_assert "$(types "$f")" = antrea,portmap,bandwidth,xmesh-cni "Antrea: changed entry replaced"
xm_assert "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plugins"][-1]["pinRoot"])' "$f")" \
	= /sys/fs/bpf/other "Antrea: new entry content"
# Someone moved us first: we go back last (we need the final result).
python3 - "$f" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["plugins"].insert(0, c["plugins"].pop()); json.dump(c, open(sys.argv[1], "w"))
EOF
"$CNI" conflist add --dir "$d" --plugin "$PLUGIN"
xm_assert "$(types "$f")" = antrea,portmap,bandwidth,xmesh-cni "Antrea: entry moved back last"
mode=$(stat -c %a "$f")
"$CNI" conflist remove --dir "$d"
xm_assert "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])) == json.load(open(sys.argv[2])))' "$f" "$FIX/10-antrea.conflist")" \
	= True "Antrea: remove restores the original"
xm_assert "$(stat -c %a "$f")" = "$mode" "file mode kept"
"$CNI" conflist remove --dir "$d"
xm_assert "$(types "$f")" = antrea,portmap,bandwidth "Antrea: remove again is a no-op"
xm_assert "$(ls -a "$d" | grep -c xmesh-tmp || true)" -eq 0 "no temporary file left"

# --- the bridge example (.conf, single plugin) -------------------------------
d=$TMP/bridge; mkdir "$d"
cp "$FIX/10-mynet.conf" "$FIX/99-loopback.conf" "$d/"
"$CNI" conflist add --dir "$d"
xm_assert "$(types "$d/10-mynet.conflist")" = bridge,xmesh-cni "bridge .conf: turned into a list"
xm_assert "$(field "$d/10-mynet.conflist" name)" = mynet "bridge .conf: network name kept"
xm_assert "$(field "$d/10-mynet.conflist" cniVersion)" = 0.3.1 "bridge .conf: cniVersion kept"
[ ! -e "$d/10-mynet.conf" ] && [ -e "$d/10-mynet.conf.xmesh-orig" ] ||
	xm_fail "the single-plugin file must be set aside (else the runtime still picks it first)"
xm_assert "$("$CNI" conflist show --dir "$d" | cut -d: -f1)" = "$d/10-mynet.conflist" \
	"the runtime's first file is now the list"
python3 - "$d/10-mynet.conflist" "$FIX/10-mynet.conf" <<'EOF' || xm_fail "bridge plugin config changed"
import json, sys
l, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
b = dict(l["plugins"][0]); b["cniVersion"], b["name"] = l["cniVersion"], l["name"]
sys.exit(0 if b == c else 1)
EOF
fp=$(fingerprint "$d/10-mynet.conflist")
"$CNI" conflist add --dir "$d"
xm_assert "$(fingerprint "$d/10-mynet.conflist")" = "$fp" "bridge .conf: add again changes nothing"
"$CNI" conflist remove --dir "$d"
cmp -s "$d/10-mynet.conf" "$FIX/10-mynet.conf" || xm_fail "remove must restore the original .conf byte for byte"
xm_assert "$(ls "$d" | tr '\n' ' ')" = "10-mynet.conf 99-loopback.conf " "bridge .conf: back as before"

# --- the spec's 1.0.0 list -------------------------------------------------------
d=$TMP/spec; mkdir "$d"
cp "$FIX/20-bridge-1.0.conflist" "$d/"
"$CNI" conflist add --dir "$d"
xm_assert "$(types "$d/20-bridge-1.0.conflist")" = bridge,tuning,portmap,xmesh-cni "1.0.0 list: chained last"
xm_assert "$(same_but_ours "$d/20-bridge-1.0.conflist" "$FIX/20-bridge-1.0.conflist")" = True "1.0.0 list: nothing else changed"

# --- refusals --------------------------------------------------------------
d=$TMP/old; mkdir "$d"
cp "$FIX/10-old-0.2.conf" "$d/"
if "$CNI" conflist add --dir "$d" 2>"$TMP/err"; then xm_fail "a 0.2.0 config cannot be chained"; fi
grep -q "cannot be chained" "$TMP/err" || xm_fail "refusal must say why: $(cat "$TMP/err")"
cmp -s "$d/10-old-0.2.conf" "$FIX/10-old-0.2.conf" || xm_fail "refused config must be untouched"
xm_assert "$(ls "$d" | wc -l)" -eq 1 "refused: no file added"
d=$TMP/empty; mkdir "$d"
if "$CNI" conflist add --dir "$d" 2>/dev/null; then xm_fail "no primary config: add must fail"; fi
"$CNI" conflist remove --dir "$d" || xm_fail "remove with nothing installed succeeds"
if "$CNI" conflist add --dir "$TMP/spec" --plugin '{"type":"other"}' 2>/dev/null; then
	xm_fail "--plugin of another type must be refused"
fi

# --- --watch: the primary plugin rewrites its file -----------------------------
d=$TMP/watch; mkdir "$d"
cp "$FIX/10-antrea.conflist" "$d/"
"$CNI" conflist add --dir "$d" --watch 2>"$TMP/watch.log" &
WATCH_PID=$!
for _ in $(seq 50); do grep -q watching "$TMP/watch.log" && break; sleep 0.1; done
xm_assert "$(types "$d/10-antrea.conflist")" = antrea,portmap,bandwidth,xmesh-cni "watch: chained at start"
cp "$FIX/10-antrea.conflist" "$d/.tmp" && mv "$d/.tmp" "$d/10-antrea.conflist" # Antrea's agent restarts
for _ in $(seq 50); do
	[ "$(types "$d/10-antrea.conflist")" = antrea,portmap,bandwidth,xmesh-cni ] && break
	sleep 0.1
done
xm_assert "$(types "$d/10-antrea.conflist")" = antrea,portmap,bandwidth,xmesh-cni "watch: re-chained after a rewrite"
kill -TERM "$WATCH_PID"
wait "$WATCH_PID" || xm_fail "watch must exit 0 on SIGTERM"
WATCH_PID=
xm_assert "$(types "$d/10-antrea.conflist")" = antrea,portmap,bandwidth,xmesh-cni \
	"watch: stopping leaves the entry (restarts must not unchain)"
