#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A real HTTP client library with its own keep-alive pool (urllib3), for
tests/integration/test_lb_rebalance.sh and make bench-l3: THREADS workers share
one pool and send GETs to URL for SECONDS. urllib3 retries a request on a
pooled connection that was closed (by default, for idempotent methods), as a
server's keep-alive close would need; with --no-retry it does not, and such
a request counts as failed.

Last line: "urllib3: requests=N ok=N failed=N p50_ms=F p99_ms=F" then
"backend=ID:COUNT" pairs (the X-Backend header of scenario_server).
"""
import sys
import threading
import time

import urllib3


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    url, seconds = args[0], float(args[1])
    threads = int(args[2]) if len(args) > 2 else 8
    retries = urllib3.Retry(total=0) if "--no-retry" in sys.argv else urllib3.Retry(total=1)
    pool = urllib3.PoolManager(maxsize=threads, block=True, retries=retries)
    lock = threading.Lock()
    lat, failed, by_backend = [], [0], {}
    end = time.monotonic() + seconds

    def worker():
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                r = pool.request("GET", url + "/r/0", timeout=5.0)
                ok = r.status < 500
                be = r.headers.get("X-Backend", "?")
            except Exception as e:  # noqa: BLE001 - every failure counts
                ok, be = False, "?"
                print("urllib3: error:", type(e).__name__, e, file=sys.stderr)
            with lock:
                if ok:
                    lat.append(time.monotonic() - t0)
                    by_backend[be] = by_backend.get(be, 0) + 1
                else:
                    failed[0] += 1
            time.sleep(0.02)  # a client that thinks between requests

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, max(0, int(q * len(lat) + 0.999) - 1))] * 1e3 if lat else 0
    print(f"urllib3: requests={len(lat) + failed[0]} ok={len(lat)} failed={failed[0]} "
          f"p50_ms={pct(0.5):.2f} p99_ms={pct(0.99):.2f} "
          + " ".join(f"backend={k}:{v}" for k, v in sorted(by_backend.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
