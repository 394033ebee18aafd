#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A real HTTP client library with its own keep-alive pool (urllib3), for
tests/integration/test_lb_rebalance.sh and `make bench-l3` (mode urllib3).

    urllib3_pool.py URL SECONDS [--threads N] [--think S] [--start EPOCH]
                    [--warmup S] [--out FILE.csv] [--no-retry] [--pool-per-thread]

THREADS workers share one pool (urllib3 keeps connections in a LIFO queue
and never ages them out) and send GET URL/r/0, pausing THINK seconds between
requests (closed loop). urllib3 retries a request whose pooled connection
turns out closed (Retry(total=1) here; its default is 3) as a server's
keep-alive close needs; with --no-retry it does not, and such a request
fails. --pool-per-thread: each worker has a pool of its own (one connection,
used every THINK plus the answer's time: tests/integration/
test_lb_rebalance_hold.sh times its requests after a connection's silence
that way). --start waits for that epoch (less --warmup) so runs line up with the
scenario's replicas.

CSV: t,latency_ms,backend,ok,new_conn,err,retried,lport (as xm-load rr --csv,
tests/tools/xm-load/rr.c; t from --start; new_conn: the first request on that
local port; lport empty when the request failed). Last line: "urllib3: requests=N ok=N
failed=N retried=N dropped=N p50_ms=F p99_ms=F" then "backend=ID:COUNT" pairs (the
X-Backend header of xm-serve scenario). dropped: pooled connections urllib3 itself
found closed while idle and replaced before a request (its "Resetting dropped
connection" debug record; no request fails or retries for them, so without this
count such a close, a retired connection's usual fate, leaves no trace).
"""
import argparse
import logging
import threading
import time
import sys

import urllib3

from clientstats import pct


class DroppedCount(logging.Handler):
    """Counts urllib3's records of a pooled connection found closed while idle."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.n = 0

    def emit(self, record):
        if str(record.msg).startswith("Resetting dropped connection"):
            self.n += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--think", type=float, default=0.02)
    ap.add_argument("--start", type=float, default=0)
    ap.add_argument("--warmup", type=float, default=0)
    ap.add_argument("--out")
    ap.add_argument("--no-retry", action="store_true")
    ap.add_argument("--pool-per-thread", action="store_true")
    a = ap.parse_args()

    dropped = DroppedCount()
    pool_log = logging.getLogger("urllib3.connectionpool")
    pool_log.setLevel(logging.DEBUG)
    pool_log.propagate = False  # counted, not printed
    pool_log.addHandler(dropped)
    retries = urllib3.Retry(total=0 if a.no_retry else 1, redirect=0, status=0)
    shared = urllib3.PoolManager(maxsize=a.threads, block=True, retries=retries)
    start = a.start or time.time()
    while time.time() < start - a.warmup:
        time.sleep(max(0, min(0.05, start - a.warmup - time.time())))
    end = start + a.seconds
    lock = threading.Lock()
    recs = []
    seen = set()  # local ports of the connections seen so far: new_conn

    def worker():
        pool = shared
        if a.pool_per_thread:
            pool = urllib3.PoolManager(maxsize=1, block=True, retries=retries)
        while time.time() < end:
            t0 = time.time()
            retried = False
            lport, new = 0, False
            try:
                # Unread, so that the connection (its local port: which one of the pool
                # carried the request, for scripts/bench/l3_trace.py --why) is still ours.
                r = pool.request("GET", a.url + "/r/0", timeout=5.0, preload_content=False)
                sock = getattr(r.connection, "sock", None)
                if sock is not None:
                    lport = sock.getsockname()[1]
                r.read()
                r.release_conn()
                ok, be, err = r.status < 500, r.headers.get("X-Backend", "-1"), ""
                retried = bool(r.retries and r.retries.history)
            except Exception as e:  # noqa: BLE001 - every failure counts
                ok, be, err = False, "-1", type(e).__name__
                print("urllib3: error:", type(e).__name__, e, file=sys.stderr)
            t1 = time.time()
            with lock:
                if lport:
                    new = lport not in seen
                    seen.add(lport)
                recs.append((t0 - start, (t1 - t0) * 1e3, int(be), ok, err, retried, new, lport))
            time.sleep(a.think)

    ts = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    recs.sort()
    if a.out:
        with open(a.out, "w") as f:
            f.write("t,latency_ms,backend,ok,new_conn,err,retried,lport\n")
            for t, lat, be, ok, err, rt, new, lport in recs:
                f.write(f"{t:.4f},{lat:.3f},{be},{int(ok)},{int(new)},{err},{int(rt)},"
                        f"{lport or ''}\n")
    meas = [r for r in recs if r[0] >= 0]
    lat = sorted(r[1] for r in meas if r[3])
    failed = sum(1 for r in meas if not r[3])
    by_backend = {}
    for r in meas:
        if r[3]:
            by_backend[r[2]] = by_backend.get(r[2], 0) + 1

    print(f"urllib3: requests={len(meas)} ok={len(lat)} failed={failed} "
          f"retried={sum(1 for r in meas if r[5])} dropped={dropped.n} p50_ms={pct(lat, 0.5):.2f} "
          f"p99_ms={pct(lat, 0.99):.2f} "
          + " ".join(f"backend={k}:{v}" for k, v in sorted(by_backend.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
