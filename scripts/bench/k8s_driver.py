#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Load for `make bench-k8s` (scripts/bench/k8s.sh), against a real kube-apiserver.

  k8s_driver.py create  SERVER TOKEN N_SVC N_EP
      N_SVC ClusterIP Services and one EndpointSlice each with N_EP ready endpoints
      (written directly, as the EndpointSlice controller would), and the Node
      both proxies run as.
  k8s_driver.py churn   SERVER TOKEN N_SVC N_EP RATE SECONDS OUT.json
      RATE endpoint changes per second for SECONDS: each update of a random
      slice flips one endpoint's readiness; the slice carries
      endpoints.kubernetes.io/last-change-trigger-time = the time of the
      change (kube-proxy's programming latency starts there). OUT gets
      [[name, resourceVersion, t0], ...] (t0: wall clock, s).
  k8s_driver.py analyse AGENT_LOG UPDATES.json -> p50/p99/max of update -> apply (ms)
"""
import bisect
import datetime
import http.client
import json
import random
import re
import ssl
import sys
import threading
import time

NS = "default"


def conn(server):
    host, port = server.rsplit(":", 1)
    ctx = ssl._create_unverified_context()
    return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)


def call(c, token, method, path, body=None):
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, data[:200]))
    return json.loads(data)


def svc_ip(i):
    return "10.96.%d.%d" % (1 + i // 250, 1 + i % 250)


def ep_ip(i, k):
    return "10.200.%d.%d" % (i // 25, (i % 25) * 10 + k + 1)


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def slice_obj(i, n_ep, ready):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "s%04d-1" % i, "namespace": NS,
                         "labels": {"kubernetes.io/service-name": "s%04d" % i,
                                    "endpointslice.kubernetes.io/managed-by": "xm-bench"},
                         "annotations": {
                             "endpoints.kubernetes.io/last-change-trigger-time": now_rfc3339()}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ep_ip(i, k)], "conditions": {"ready": ready[k]},
                           "nodeName": "xm-bench-node"} for k in range(n_ep)]}


def parallel(n, fn, threads=4):
    errs = []

    def run(t):
        try:
            fn(t, range(t, n, threads))
        except Exception as e:  # noqa: BLE001 - reported below
            errs.append(e)
    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        raise errs[0]


def create(server, token, n_svc, n_ep):
    def svcs(t, idx):
        c = conn(server)
        for i in idx:
            call(c, token, "POST", "/api/v1/namespaces/%s/services" % NS, {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "s%04d" % i, "namespace": NS},
                "spec": {"type": "ClusterIP", "clusterIP": svc_ip(i),
                         "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})

    def slices(t, idx):
        c = conn(server)
        for i in idx:
            call(c, token, "POST", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % NS,
                 slice_obj(i, n_ep, [True] * n_ep))
    t0 = time.time()
    # the node kube-proxy runs as, with an address: without, kube-proxy waits 30 s for it
    c = conn(server)
    node = call(c, token, "POST", "/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "xm-bench-node"}})
    node["status"] = {"addresses": [{"type": "InternalIP", "address": "10.255.9.1"}]}
    call(c, token, "PUT", "/api/v1/nodes/xm-bench-node/status", node)
    parallel(n_svc, svcs)
    parallel(n_svc, slices)
    print("created %d services, %d slices x %d endpoints in %.1f s" %
          (n_svc, n_svc, n_ep, time.time() - t0), file=sys.stderr)


def churn(server, token, n_svc, n_ep, rate, seconds, out):
    ready = {i: [True] * n_ep for i in range(n_svc)}
    lock = threading.Lock()
    records = []
    total = int(rate * seconds)
    start = time.time()

    def worker(t, idx):
        c = conn(server)
        rnd = random.Random(t)
        for j in idx:
            due = start + j / rate
            d = due - time.time()
            if d > 0:
                time.sleep(d)
            i = rnd.randrange(n_svc)
            with lock:
                k = rnd.randrange(n_ep)
                ready[i][k] = not ready[i][k]
                if not any(ready[i]):
                    ready[i][k] = True
                obj = slice_obj(i, n_ep, list(ready[i]))
            t0 = time.time()
            r = call(c, token, "PUT", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices/%s"
                     % (NS, obj["metadata"]["name"]), obj)
            with lock:
                records.append([obj["metadata"]["name"], r["metadata"]["resourceVersion"], t0])
            if j and j % (rate * 10) == 0 and t == 0:
                print("churn: %d/%d updates, %.0f s" % (j, total, time.time() - start),
                      file=sys.stderr)
    # one connection per slice would be unfair to nobody; 8 keep up with 100/s on a busy box
    parallel(total, worker, threads=8)
    late = time.time() - start - seconds
    print("churn: %d updates in %.1f s (%.1f s late)" % (total, time.time() - start, late),
          file=sys.stderr)
    json.dump(records, open(out, "w"))


def log_time(line):
    ts = line.split(" ", 1)[0]
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def analyse(log, updates):
    """update (t0, before the PUT) -> the agent's first apply after it saw that rv."""
    seen = {}     # rv -> (index of the event line, its time)
    applies = []  # (line index, time)
    work = []     # each apply's own time: translate + merge and map writes (its log line)
    for n, line in enumerate(open(log, errors="replace")):
        if " k8s: endpointslices MODIFIED " in line:
            seen[line.rsplit(" rv ", 1)[1].strip()] = (n, log_time(line))
        elif " k8s: applied " in line:
            applies.append((n, log_time(line)))
            m = re.search(r"translate (\d+) ms, apply (\d+) ms", line)
            if m:
                work.append(int(m.group(1)) + int(m.group(2)))
    idx = [a[0] for a in applies]
    lat, seen_lat, own, missing = [], [], [], 0
    for name, rv, t0 in json.load(open(updates)):
        n, t_seen = seen.get(rv, (None, None))
        k = bisect.bisect_right(idx, n) if n is not None else len(idx)
        if k >= len(idx):
            missing += 1
            continue
        lat.append((applies[k][1] - t0) * 1000)
        seen_lat.append((t_seen - t0) * 1000)
        own.append((applies[k][1] - t_seen) * 1000)
    for v in (lat, seen_lat, own, work):
        v.sort()

    def q(v, p):
        return round(v[min(len(v) - 1, int(p * len(v)))], 1) if v else float("nan")
    # the event's arrival at the agent (API server + watch) is part of the latency: shown apart
    print(json.dumps({"n": len(lat), "missing": missing, "p50_ms": q(lat, 0.5),
                      "p99_ms": q(lat, 0.99), "max_ms": q(lat, 1),
                      "event_seen_p50_ms": q(seen_lat, 0.5), "event_seen_p99_ms": q(seen_lat, 0.99),
                      # the agent's part: event read -> maps written; and one apply's own work
                      "agent_part_p50_ms": q(own, 0.5), "agent_part_p99_ms": q(own, 0.99),
                      "apply_work_p50_ms": q(work, 0.5), "apply_work_p99_ms": q(work, 0.99)}))


def main():
    cmd = sys.argv[1]
    if cmd == "create":
        create(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "churn":
        churn(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]),
              float(sys.argv[7]), sys.argv[8])
    elif cmd == "analyse":
        analyse(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
