#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Evidence for scripts/soak-redirect.sh, kept in its output directory.

  soak_redirect.py watch DIR XMESHCTL PIN_ROOT NETNS...
      Every second, append one JSON line to DIR/counters.jsonl: xmesh's
      counters, the TCP counters of each netns (/proc/net/netstat and snmp)
      and the TCP memory in use. When DIR/soak.out gains a "soak-fail:" line,
      at once (the client keeps a timed-out socket open for its late wait)
      save DIR/fail-ID.txt: the redirect map and `ss -tnie` of each netns.
  soak_redirect.py report DIR TIMEOUT_MS
      Join every failure with the agent's restart/uninstall events
      (DIR/events.log), its map and ss snapshot, its late arrival and the
      counters that moved around it; print it and write DIR/failures.txt.
"""
import json
import os
import subprocess
import sys
import time

# TCP counters that say the kernel dropped, pruned or aborted something.
TCP_KEYS = ("TcpExt:TCPMemoryPressures", "TcpExt:TCPAbortOnMemory", "TcpExt:TCPBacklogDrop",
            "TcpExt:ListenOverflows", "TcpExt:ListenDrops", "TcpExt:TCPRcvQDrop",
            "TcpExt:PruneCalled", "TcpExt:RcvPruned", "TcpExt:OfoPruned", "TcpExt:TCPAbortOnData",
            "TcpExt:TCPAbortOnClose", "TcpExt:TCPAbortOnTimeout", "TcpExt:TCPTimeouts",
            "TcpExt:TCPZeroWindowDrop", "TcpExt:TCPWqueueTooBig", "Tcp:RetransSegs",
            "Tcp:AttemptFails", "Tcp:EstabResets", "Tcp:InErrs", "Tcp:OutRsts")


def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
    except (subprocess.SubprocessError, OSError):
        return ""


def netns_tcp(ns):
    """Nonzero TcpExt/Tcp counters and sockstat's TCP mem (pages) of netns ns."""
    text = run(["ip", "netns", "exec", ns, "cat", "/proc/net/netstat", "/proc/net/snmp",
                "/proc/net/sockstat"])
    out, lines = {}, text.splitlines()
    for head, vals in zip(lines, lines[1:]):
        h, v = head.split(), vals.split()
        if h and v and h[0] == v[0] and h[0] in ("TcpExt:", "Tcp:") and h != v:
            for k, x in zip(h[1:], v[1:]):
                if x.lstrip("-").isdigit() and int(x):
                    out[h[0] + k] = int(x)
    for line in lines:
        if line.startswith("TCP: "):
            f = line.split()
            out["sockstat"] = dict(zip(f[1::2], (int(x) for x in f[2::2])))
    return out


def ctl_json(ctl, pin, *args):
    try:
        return json.loads(run([ctl, "--pin-root", pin, "-j", *args]) or "null")
    except ValueError:
        return None


def parse_kv(line):
    return dict(w.split("=", 1) for w in line.split(": ", 1)[1].split() if "=" in w)


def watch(d, ctl, pin, netns):
    seen, pos = set(), 0
    with open(os.path.join(d, "counters.jsonl"), "a") as out:
        while True:
            t0 = time.time()
            sample = {"t": round(t0, 3), "xmesh": ctl_json(ctl, pin, "stats"),
                      "load": open("/proc/loadavg").read().split()[0],
                      "netns": {ns: netns_tcp(ns) for ns in netns}}
            out.write(json.dumps(sample, separators=(",", ":")) + "\n")
            out.flush()
            try:
                with open(os.path.join(d, "soak.out")) as f:
                    f.seek(pos)
                    new = f.read()
            except OSError:
                new = ""
            done = new.rfind("\n") + 1
            pos += len(new[:done].encode())
            for line in new[:done].splitlines():
                if not line.startswith("soak-fail:"):
                    continue
                fid = parse_kv(line).get("id", "?")
                if fid in seen:
                    continue
                seen.add(fid)
                with open(os.path.join(d, f"fail-{fid}.txt"), "w") as f:
                    f.write(f"# snapshot at {time.time():.3f} of: {line}\n")
                    f.write("# xmeshctl -j sock list\n")
                    f.write(json.dumps(ctl_json(ctl, pin, "sock", "list")) + "\n")
                    for ns in netns:
                        f.write(f"# ss -tnie in {ns}\n")
                        f.write(run(["ip", "netns", "exec", ns, "ss", "-tnie"]))
            time.sleep(max(0.0, 1.0 - (time.time() - t0)))


def flat(sample):
    """One sample as {name: value}: xmesh counters and per-netns TCP counters."""
    out = {}
    for k, v in (sample.get("xmesh") or {}).items():
        if isinstance(v, int):
            out["xmesh:" + k] = v
    for ns, c in sample.get("netns", {}).items():
        for k in TCP_KEYS:
            out[f"{ns.rsplit('-', 1)[-1]}:{k}"] = c.get(k, 0)
    return out


def deltas(samples, t_from, t_to):
    """Counters that moved between the last sample before t_from and the first after t_to."""
    before = [s for s in samples if s["t"] <= t_from]
    after = [s for s in samples if s["t"] >= t_to]
    if not before or not after:
        return {}
    a, b = flat(before[-1]), flat(after[0])
    return {k: b[k] - a[k] for k in sorted(b) if k in a and b[k] != a[k]}


def report(d, timeout_ms):
    events = []
    if os.path.exists(os.path.join(d, "events.log")):
        for line in open(os.path.join(d, "events.log")):
            t, what = line.split(" ", 1)
            events.append((float(t), what.strip()))
    samples = []
    if os.path.exists(os.path.join(d, "counters.jsonl")):
        samples = [json.loads(x) for x in open(os.path.join(d, "counters.jsonl")) if x.strip()]
    fails, late = [], {}
    for line in open(os.path.join(d, "soak.out"), errors="replace"):
        if line.startswith("soak-fail:"):
            fails.append(parse_kv(line))
        elif line.startswith("soak-late:"):
            kv = parse_kv(line)
            late[kv["id"]] = kv
    start = events[0][0] if events else 0
    lines = [f"{len(fails)} failures (times in s from the soak's start)"]
    for f in fails:
        t = float(f["t"])
        # a read timeout began timeout_ms before it was noticed
        t_stall = t - timeout_ms / 1000 if f["err"] == "ETIMEDOUT" else t
        prev = [e for e in events if e[0] <= t_stall]
        nxt = [e for e in events if e[0] > t_stall]
        phase = f"{t_stall - prev[-1][0]:.1f} s after '{prev[-1][1]}'" if prev else "before start"
        if nxt:
            phase += f", {nxt[0][0] - t_stall:.1f} s before '{nxt[0][1]}'"
        in_map = "no snapshot"
        snap = os.path.join(d, f"fail-{f['id']}.txt")
        lines_snap = open(snap).read().split("\n") if os.path.exists(snap) else []
        if len(lines_snap) > 2:
            socks = json.loads(lines_snap[2] or "null")
            if socks is None:
                in_map = "map unreadable (pins gone)"
            else:
                in_map = "in map" if any(str(s["cookie"]) == f["cookie"] for s in socks) \
                    else "not in map"
        lt = late.get(f["id"])
        lines.append(
            f"id {f['id']} at {t - start:.1f} s: {f['step']} {f['err']}, message {f['msg']} of "
            f"{f['size']} bytes after {f['conn_offset']}, got {f['got']}"
            f"{' first diff at ' + f['diff_at'] + ' (' + f['want'] + ' vs ' + f['saw'] + ')' if 'diff_at' in f else ''}; "
            f"connected {float(f['t_connect']) - start:.1f} s, age {f['age_ms']} ms; port "
            f"{f['local_port']} cookie {f['cookie']} ({in_map}); tcp_state {f['tcp_state']} "
            f"inq {f['inq']} outq {f['outq']} unacked {f['unacked']}")
        lines.append(f"    stalled {phase}")
        if lt:
            lines.append(f"    late: {lt['late_bytes']} more bytes in {lt['waited_ms']} ms, "
                         f"{lt['missing']} never came, intact={lt['received_intact']} ({lt['err']})")
        moved = deltas(samples, t_stall - 1, t + 1)
        if moved:
            lines.append("    counters moved: " + " ".join(f"{k}+{v}" for k, v in moved.items()))
    lines.append("events:")
    lines += [f"  {t - start:7.1f} s {what}" for t, what in events]
    if samples:
        lines.append("counters over the whole soak: " + " ".join(
            f"{k}+{v}" for k, v in deltas(samples, samples[0]["t"], samples[-1]["t"]).items()))
    text = "\n".join(lines) + "\n"
    open(os.path.join(d, "failures.txt"), "w").write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "watch":
        watch(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif len(sys.argv) == 4 and sys.argv[1] == "report":
        report(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
