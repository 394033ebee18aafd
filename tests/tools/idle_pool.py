#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A pool that holds idle keep-alive connections, as a database or HTTP
client pool does between bursts (tests/integration/test_lb_rebalance.sh).

    idle_pool.py HOST:PORT N HOLD_S

Opens N connections to HOST:PORT at once, sends one HTTP/1.1 request on each
(keep-alive), holds them idle for HOLD_S seconds, then sends one request on
each again. A connection found closed (by the peer, or retired by xmesh) is
handled as urllib3 and curl handle a pooled connection closed while idle: the
request is sent once more on a new connection. Last line: "idle_pool:
conns=N closed_while_idle=K failed=F backends=ID:COUNT,..." (backends of the
first round, from the X-Backend header).
"""
import select
import socket
import sys
import time


def request(s):
    s.sendall(b"GET /r/0 HTTP/1.1\r\nHost: xm-test\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed before the answer")
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    hdrs = dict(l.split(b": ", 1) for l in head.split(b"\r\n")[1:] if b": " in l)
    n = int(hdrs.get(b"Content-Length", b"0"))
    while len(body) < n:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed in the answer")
        body += d
    return int(head.split()[1]), hdrs.get(b"X-Backend", b"?").decode()


def once_more(addr, why):
    """The request again on a new connection, as urllib3 does for a pooled
    connection found closed; (status, backend, socket) or None."""
    try:
        s = socket.create_connection(addr, timeout=5)
        status, be = request(s)
        return status, be, s
    except OSError as e:
        print(f"idle_pool: retry failed ({why}):", e, file=sys.stderr)
        return None


def dropped(s):
    # What urllib3's is_connection_dropped does: readable while idle = closed.
    r, _, _ = select.select([s], [], [], 0)
    return bool(r)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    n, hold = int(sys.argv[2]), float(sys.argv[3])
    addr = (host, int(port))
    conns = [socket.create_connection(addr, timeout=5) for _ in range(n)]
    first = {}
    closed = failed = 0
    for i, s in enumerate(conns):
        # A connection waiting for its first request is idle too: it may be retired
        # (rebalancing) before its turn comes, and is then used as a new one.
        try:
            _, be = request(s)
        except OSError:
            s.close()
            closed += 1
            got = once_more(addr, "first round")
            if not got:
                failed += 1
                conns[i] = None
                continue
            _, be, conns[i] = got
        first[be] = first.get(be, 0) + 1
    time.sleep(hold)
    for s in conns:
        if s is None:
            continue  # its first request failed (counted)
        try:
            if dropped(s):
                closed += 1
                raise ConnectionError("closed while idle")
            status, _ = request(s)
        except OSError:
            s.close()
            got = once_more(addr, "after the hold")
            if not got:
                failed += 1
                continue
            status, _, s = got
        if status >= 500:
            failed += 1
        s.close()
    print(f"idle_pool: conns={n} closed_while_idle={closed} failed={failed} backends="
          + ",".join(f"{k}:{v}" for k, v in sorted(first.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
