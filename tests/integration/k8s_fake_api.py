#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake Kubernetes API server for the agent's Kubernetes source tests.

Serves Services and discovery.k8s.io/v1 EndpointSlices the way the API does
(paginated lists with limit/continue and a resourceVersion; watches of
newline-separated JSON events from a resourceVersion, bookmarks, timeoutSeconds),
and GET of one node. Requests need "Authorization: Bearer TOKEN".

The test drives it through POST /_ctl/<cmd> with a JSON body:
  apply    {"kind": "services"|"endpointslices", "object": {...}}   add or replace
  apply    {"kind": ..., "objects": [...]}                           many, one event each
  delete   {"kind": ..., "namespace": NS, "name": NAME}
  fault    {"name": N, "count": C, ...}   the next C requests of a kind misbehave:
             watch_410_status   a watch answers HTTP 410
             watch_410_event    a watch sends an ERROR event with code 410
             status_429         any request answers 429 with Retry-After: "retry_after"
             status_500         any request answers 500
             garbage            a watch sends a line that is not JSON after its events
             hang               a watch sends its events, then nothing, never ending
             disconnect         a watch sends half an event, then closes the connection
             hold_lists         lists of endpointslices wait until the fault is cleared
           "kind" limits a fault to one resource (default: any)
  clear    {}                      remove every fault
  compact  {}                      forget history: watches from before get 410
  token    {"token": T}            only T is accepted from now on
  save     {"path": P}            write the objects to P (for --load after a restart)
  stats    {} -> counters: lists, watches, unauthorized, by token, per kind
"""
import json
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = {
    "/api/v1/services": ("services", "ServiceList", "v1"),
    "/apis/discovery.k8s.io/v1/endpointslices": ("endpointslices", "EndpointSliceList",
                                                  "discovery.k8s.io/v1"),
}


class State:
    def __init__(self, token):
        self.lock = threading.Condition()
        self.rv = 100
        self.objects = {"services": {}, "endpointslices": {}}
        self.history = []  # (rv, kind, type, object)
        self.compacted = 0
        self.faults = {}   # name -> {"count": n, ...}
        self.token = token
        self.stats = {"lists": {}, "watches": {}, "unauthorized": 0, "tokens": {}}

    def bump(self):
        self.rv += 1
        return str(self.rv)

    def apply(self, kind, obj):
        md = obj.setdefault("metadata", {})
        md.setdefault("namespace", "default")
        key = md["namespace"] + "/" + md["name"]
        old = self.objects[kind].get(key)
        md["generation"] = (old["metadata"].get("generation", 0) + 1) if old else 1
        md["resourceVersion"] = self.bump()
        self.objects[kind][key] = obj
        self.history.append((self.rv, kind, "MODIFIED" if old else "ADDED", obj))

    def delete(self, kind, ns, name):
        obj = self.objects[kind].pop(ns + "/" + name, None)
        if obj:
            obj = json.loads(json.dumps(obj))
            obj["metadata"]["resourceVersion"] = self.bump()
            self.history.append((self.rv, kind, "DELETED", obj))

    def take_fault(self, name, kind):
        f = self.faults.get(name)
        if not f or f.get("kind", kind) != kind or f["count"] <= 0:
            return None
        f["count"] -= 1
        return f


def make_handler(st, node):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def send_json(self, code, obj, headers=()):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def status(self, code, reason, msg, headers=()):
            self.send_json(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": reason, "message": msg, "code": code}, headers)

        def do_POST(self):
            cmd = self.path.rsplit("/", 1)[-1]
            n = int(self.headers.get("Content-Length", 0))
            req = json.loads(self.rfile.read(n) or b"{}")
            with st.lock:
                if cmd == "apply":
                    for o in req.get("objects") or [req["object"]]:
                        st.apply(req["kind"], o)
                elif cmd == "delete":
                    st.delete(req["kind"], req.get("namespace", "default"), req["name"])
                elif cmd == "fault":
                    st.faults[req["name"]] = req
                elif cmd == "clear":
                    st.faults.clear()
                elif cmd == "compact":
                    # as etcd's compaction at the current revision: every watch is too old
                    st.compacted = st.rv + 1
                    st.bump()
                    st.history.clear()
                elif cmd == "token":
                    st.token = req["token"]
                elif cmd == "save":
                    with open(req["path"], "w") as f:
                        json.dump({"rv": st.rv, "objects": st.objects}, f)
                elif cmd == "stats":
                    pass
                else:
                    return self.status(404, "NotFound", "no such command")
                st.lock.notify_all()
                self.send_json(200, st.stats)

        def do_GET(self):
            # Python's server turns a path's leading "//" into "/" before we see it; the API
            # server (Go's mux) answers an unclean path with a redirect that no client follows.
            raw = self.requestline.split(" ")[1] if " " in self.requestline else self.path
            if raw.startswith("//"):
                return self.status(301, "MovedPermanently", "path is not clean: " + raw,
                                   [("Location", "/" + raw.lstrip("/"))])
            url = urllib.parse.urlparse(self.path)
            q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            auth = self.headers.get("Authorization", "")
            with st.lock:
                tok = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
                st.stats["tokens"][tok] = st.stats["tokens"].get(tok, 0) + 1
                if tok != st.token:
                    st.stats["unauthorized"] += 1
                    return self.status(401, "Unauthorized", "Unauthorized")
            if url.path == "/api/v1/nodes/" + node["metadata"]["name"]:
                return self.send_json(200, node)
            if url.path not in KINDS:
                return self.status(404, "NotFound", "the server could not find the resource")
            kind, list_kind, api = KINDS[url.path]
            with st.lock:
                f = st.take_fault("status_429", kind)
                if f:
                    return self.status(429, "TooManyRequests", "slow down",
                                       [("Retry-After", str(f.get("retry_after", 1)))])
                if st.take_fault("status_500", kind):
                    return self.status(500, "InternalError", "etcd is sad")
            if q.get("watch") in ("1", "true"):
                return self.watch(kind, q)
            return self.list(kind, list_kind, api, q)

        def list(self, kind, list_kind, api, q):
            with st.lock:
                st.stats["lists"][kind] = st.stats["lists"].get(kind, 0) + 1
                while kind == "endpointslices" and st.faults.get("hold_lists", {}).get("count"):
                    st.lock.wait(0.2)
                limit = int(q.get("limit") or 0) or 10 ** 9
                if q.get("continue"):
                    rv, off = q["continue"].split(":")
                    if int(rv) < st.compacted:
                        return self.status(410, "Expired", "continue token expired")
                    items, rv = snap_of(st, kind, int(rv)), rv
                    off = int(off)
                else:
                    rv, off = str(st.rv), 0
                    items = snap_of(st, kind, st.rv)
                page = items[off:off + limit]
                more = off + limit < len(items)
                md = {"resourceVersion": rv}
                if more:
                    md["continue"] = "%s:%d" % (rv, off + limit)
                self.send_json(200, {"kind": list_kind, "apiVersion": api, "metadata": md,
                                     "items": page})

        def watch(self, kind, q):
            since = int(q.get("resourceVersion") or 0)
            timeout = float(q.get("timeoutSeconds") or 300)
            with st.lock:
                st.stats["watches"][kind] = st.stats["watches"].get(kind, 0) + 1
                if st.take_fault("watch_410_status", kind):
                    return self.status(410, "Expired", "too old resource version")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            deadline = time.monotonic() + timeout
            sent = since

            def line(obj):
                self.wfile.write(json.dumps(obj).encode() + b"\n")
                self.wfile.flush()

            try:
                while time.monotonic() < deadline:
                    with st.lock:
                        if since < st.compacted or st.take_fault("watch_410_event", kind):
                            line({"type": "ERROR", "object": {
                                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "reason": "Expired", "code": 410,
                                "message": "too old resource version: %d" % since}})
                            return
                        evs = [(rv, t, o) for rv, k, t, o in st.history
                               if k == kind and rv > sent]
                        if not evs:
                            st.lock.wait(min(1.0, max(0.01, deadline - time.monotonic())))
                            continue
                        garbage = st.take_fault("garbage", kind)
                        hang = st.take_fault("hang", kind)
                        cut = st.take_fault("disconnect", kind)
                    for rv, t, o in evs:
                        line({"type": t, "object": o})
                        sent = rv
                    if garbage:
                        self.wfile.write(b'{"type": "MODIFIED", "object": {nope\n')
                        self.wfile.flush()
                    if hang:
                        time.sleep(3600)
                    if cut:
                        self.wfile.write(b'{"type": "MODIFIED", "obj')
                        self.wfile.flush()
                        return
                line({"type": "BOOKMARK", "object": {"kind": "Status", "metadata": {
                    "resourceVersion": str(sent)}}})
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                self.close_connection = True

    return H


def snap_of(st, kind, rv):
    """Objects of kind, by key. Pages are taken from the current objects (a real
    server serves them from its snapshot at rv: the agent's watch from rv then
    replays what changed in between, which is harmless)."""
    return [o for _, o in sorted(st.objects[kind].items())]


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--token", required=True)
    ap.add_argument("--node", default="xm-node")
    ap.add_argument("--zone", default="")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-client-ca", help="require a client certificate from this CA")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--load", help="objects saved by /_ctl/save")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    node = {"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": a.node, "labels": {"topology.kubernetes.io/zone": a.zone}
                         if a.zone else {}}}
    st = State(a.token)
    if a.load:
        with open(a.load) as f:
            saved = json.load(f)
        st.rv, st.objects = saved["rv"], saved["objects"]
        # a restarted server has no history: watches from before get 410
        st.compacted = st.rv + 1
        st.bump()
    srv = ThreadingHTTPServer((host, int(port)), make_handler(st, node))
    srv.daemon_threads = True
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.tls_client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(a.tls_client_ca)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        import os
        os.rename(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
