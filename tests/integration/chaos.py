# SPDX-License-Identifier: MIT
"""Load for tests/integration/test_agent_chaos.sh, for SECONDS seconds:
- service and weight changes through the control socket, as fast as answered;
- control clients that connect and abort (at once, mid-request, before reading);
- 50 concurrent slow metrics clients (from inside the agent's netns);
- a watcher of the weighting loop's mmapped xm_lb_wloop map that records the
  longest time between two ticks.
Prints one JSON line: {"requests": N, "ok": N, "aborted": N, "scrapes": N,
"max_gap_ms": G, "tick_ms": T}.
Usage: chaos.py SECONDS SOCK NETNS_PATH METRICS_PORT WLOOP_PIN
"""
import ctypes
import json
import mmap
import os
import random
import socket
import struct
import sys
import threading
import time

SECONDS, SOCK, NETNS, PORT, WLOOP = (float(sys.argv[1]), sys.argv[2], sys.argv[3],
                                     int(sys.argv[4]), sys.argv[5])
stop = time.monotonic() + SECONDS
lock = threading.Lock()
stats = {"requests": 0, "ok": 0, "aborted": 0, "scrapes": 0, "max_gap_ms": 0.0, "tick_ms": 0}
libc = ctypes.CDLL(None, use_errno=True)


def count(k, n=1):
    with lock:
        stats[k] += n


def request(obj):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(SOCK)
    s.sendall(json.dumps(obj).encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data) if data else {}


def changes():
    rnd = random.Random(1)
    while time.monotonic() < stop:
        i = rnd.randrange(8)
        svc = {"vip": "10.97.0.%d" % i, "port": 80,
               "backends": [{"address": "10.98.%d.%d" % (i, j), "port": 8080,
                             "weight": rnd.randint(1, 9)} for j in range(rnd.randint(1, 4))]}
        op = rnd.randrange(3)
        try:
            if op == 0:
                rep = request({"cmd": "service-add", "service": svc})
            elif op == 1:
                rep = request({"cmd": "service-del", "service": "10.97.0.%d:80" % i})
            else:
                rep = request({"cmd": "backend-weight", "service": "10.96.1.1:80",
                               "backend": "10.99.0.1:8080", "weight": rnd.randint(0, 100)})
            count("requests")
            if rep.get("ok"):
                count("ok")
        except OSError:
            pass  # the agent is being restarted


def aborters():
    rnd = random.Random(2)
    while time.monotonic() < stop:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(SOCK)
            how = rnd.randrange(3)
            if how == 1:
                s.sendall(b'{"cmd":"service-add","serv')
            elif how == 2:
                s.sendall(b'{"cmd":"reload"}\n')
            s.close()
            count("aborted")
            time.sleep(0.002)
        except OSError:
            time.sleep(0.05)


def slow_scraper():
    fd = os.open(NETNS, os.O_RDONLY)
    if libc.setns(fd, 0x40000000):  # CLONE_NEWNET, this thread only
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)
    req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    while time.monotonic() < stop:
        try:
            s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
            for i in range(0, len(req), 4):
                s.sendall(req[i:i + 4])
                time.sleep(0.05)
            while s.recv(256):
                time.sleep(0.02)
            count("scrapes")
            s.close()
        except OSError:
            time.sleep(0.2)


def bpf_obj_get(path):
    p = ctypes.create_string_buffer(path.encode())
    attr = struct.pack("QIIQ", ctypes.addressof(p), 0, 0, 0)
    buf = ctypes.create_string_buffer(attr, 128)
    fd = libc.syscall(321, 7, buf, 24)  # bpf(BPF_OBJ_GET)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "bpf_obj_get " + path)
    return fd


def tick_watcher():
    m = mmap.mmap(bpf_obj_get(WLOOP), 4096, mmap.MAP_SHARED, mmap.PROT_READ)
    last_ticks, last_ns = None, None
    while time.monotonic() < stop:
        ticks, updated_ns = struct.unpack_from("QQ", m, 0)
        tick_ms = struct.unpack_from("I", m, 40)[0]
        if struct.unpack_from("QQ", m, 0) != (ticks, updated_ns):
            continue  # read while the agent wrote the tick: read again
        if ticks != last_ticks:
            # updated_ns 0: no tick yet (a fresh agent, or the map just made)
            if last_ns and updated_ns and ticks == last_ticks + 1:
                with lock:
                    stats["max_gap_ms"] = max(stats["max_gap_ms"], (updated_ns - last_ns) / 1e6)
                    stats["tick_ms"] = tick_ms
            last_ticks, last_ns = ticks, updated_ns
        time.sleep(0.005)


threads = [threading.Thread(target=f) for f in [changes, aborters, aborters, tick_watcher]]
threads += [threading.Thread(target=slow_scraper) for _ in range(50)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(stats))
