#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How long after an EndpointSlice change new connections follow it.

  k8s_timing.py SLICES PROBES added|removed POD...
  kubectl get endpointslices -w -o json | k8s_timing.py stamp > SLICES

SLICES: lines "<unix ms> <rv> name=true|false,..." (stamp: each EndpointSlice object of the
watch, stamped when it arrived). PROBES: lines "<unix ms> <answer>" from
`xm-whoami ask -T` in a client pod (an answer is the pod name, or "error ...").

added:   t_slice = first slice line where every POD is ready; t_seen = first answer from
         any POD after it. Prints the delay.
removed: t_slice = first slice line where no POD is ready; t_gone = the last answer from a POD
         (or t_slice if none came after it). Prints the delay, and the number of failed
         connections after t_slice.
Last line: "timing: mode=... slice_ms=... delay_ms=... failed_after=N answers_after=N".
Exit 1 when the slice never showed the change, or (added) no POD ever answered after it.
"""
import json
import sys
import time


def stamp():
    """The watch prints one JSON object per event (pretty, no separator)."""
    dec, buf = json.JSONDecoder(), ""
    for chunk in iter(lambda: sys.stdin.readline(), ""):
        buf += chunk
        while True:
            buf = buf.lstrip()
            try:
                obj, end = dec.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            eps = ",".join(f"{(e.get('targetRef') or {}).get('name', '?')}="
                           f"{str(e.get('conditions', {}).get('ready', True)).lower()}"
                           for e in obj.get("endpoints") or [])
            print(f"{int(time.time() * 1000)} {obj['metadata']['resourceVersion']} {eps}",
                  flush=True)


def read_slices(path):
    out = []
    for line in open(path):
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        ready = {}
        for item in (parts[2] if len(parts) > 2 else "").strip().split(","):
            if "=" in item:
                name, state = item.split("=", 1)
                ready[name] = ready.get(name, False) or state == "true"
        out.append((int(parts[0]), ready))
    return out


def read_probes(path):
    out = []
    for line in open(path):
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            out.append((int(parts[0]), parts[1].strip()))
    return out


def main():
    if sys.argv[1:] == ["stamp"]:
        stamp()
        return 0
    slices, probes = read_slices(sys.argv[1]), read_probes(sys.argv[2])
    mode, pods = sys.argv[3], set(sys.argv[4:])
    if mode == "added":
        hit = [t for t, r in slices if all(r.get(p) for p in pods)]
    else:
        hit = [t for t, r in slices if not any(r.get(p) for p in pods)]
    if not hit:
        print(f"timing: mode={mode} the EndpointSlice never showed the change for {sorted(pods)}")
        return 1
    t_slice = hit[0]
    after = [(t, a) for t, a in probes if t >= t_slice]
    failed = sum(1 for _, a in after if a.startswith("error"))
    if mode == "added":
        seen = [t for t, a in after if a in pods]
        if not seen:
            print(f"timing: mode=added no connection reached {sorted(pods)} after the slice change"
                  f" ({len(after)} answers after it)")
            return 1
        delay = seen[0] - t_slice
    else:
        gone = [t for t, a in after if a in pods]
        delay = (gone[-1] - t_slice) if gone else 0
    print(f"timing: mode={mode} slice_ms={t_slice} delay_ms={delay} failed_after={failed}"
          f" answers_after={len(after)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
