#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A gRPC client with one long-lived channel (scripts/bench/h2.sh).

    grpc_client.py TARGET SECONDS [--rate R] [--concurrency N]

Unary calls to /xm.Echo/Call (tests/tools/h2_server.py --grpc) at R calls per
second from N threads sharing one channel (one HTTP/2 connection, as gRPC
does by default). Last line: "grpc: calls=N ok=N failed=N p50_ms=F
p99_ms=F" and "backend=ID:COUNT" pairs; then one line per second
"t=S backend=ID:COUNT ..." of who answered.
"""
import argparse
import collections
import sys
import threading
import time

import grpc

from clientstats import pct


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()
    # Never through a proxy from the environment: the VIP is the target.
    ch = grpc.insecure_channel(a.target, options=[("grpc.enable_http_proxy", 0)])
    call = ch.unary_unary("/xm.Echo/Call")
    lock = threading.Lock()
    lat, failed, per_s = [], collections.Counter(), collections.defaultdict(collections.Counter)
    t0 = time.time()
    end = t0 + a.seconds
    gap = a.concurrency / a.rate

    def worker(k):
        nxt = t0 + k * gap / a.concurrency
        while nxt < end:
            now = time.time()
            if nxt > now:
                time.sleep(nxt - now)
            s = time.time()
            try:
                be = call(b"x", timeout=5).decode()
                ok = True
            except grpc.RpcError as e:
                ok, be = False, "-"
                with lock:
                    failed[e.code().name] += 1
            d = time.time() - s
            with lock:
                if ok:
                    lat.append(d)
                per_s[int(s - t0)][be] += 1
            nxt += gap

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(a.concurrency)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()

    total = collections.Counter()
    for sec in sorted(per_s):
        total.update(per_s[sec])
        print(f"t={sec} " + " ".join(f"backend={k}:{v}" for k, v in sorted(per_s[sec].items())))
    print(f"grpc: calls={len(lat) + sum(failed.values())} ok={len(lat)} "
          f"failed={sum(failed.values())} {dict(failed) if failed else ''} "
          f"p50_ms={pct(lat, 0.5) * 1e3:.2f} p99_ms={pct(lat, 0.99) * 1e3:.2f} "
          + " ".join(f"backend={k}:{v}" for k, v in sorted(total.items()) if k != "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
