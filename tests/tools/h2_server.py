#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A replica for HTTP/2 and gRPC through a VIP (scripts/bench/h2.sh).

    h2_server.py --listen IP:PORT --id N --seconds T [--delay-ms D]
                 [--slow-ms S --slow-from EPOCH] [--grpc]

HTTP/2 over cleartext with prior knowledge (what h2load speaks with
http://): every request is answered after D ms (S ms from EPOCH on) with
200, header x-backend: N and body N. --grpc serves the same delay as a gRPC
unary method /xm.Echo/Call (grpcio, raw bytes, no .proto) that returns N.
After T seconds (or on SIGTERM) prints "h2_server N: requests=R connections=C"
and exits.
"""
import argparse
import asyncio
import os
import signal
import sys
import time

args = None
stats = {"requests": 0, "connections": 0}


def delay_s():
    if args.slow_ms is not None and time.time() >= args.slow_from:
        return args.slow_ms / 1e3
    return args.delay_ms / 1e3


async def h2_conn(reader, writer):
    import h2.config
    import h2.connection
    import h2.events

    stats["connections"] += 1
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    writer.write(conn.data_to_send())

    async def answer(sid):
        await asyncio.sleep(delay_s())
        body = str(args.id).encode()
        try:
            conn.send_headers(sid, [(":status", "200"), ("x-backend", str(args.id)),
                                    ("content-length", str(len(body)))])
            conn.send_data(sid, body, end_stream=True)
            writer.write(conn.data_to_send())
            stats["requests"] += 1
        except Exception:  # noqa: BLE001 - the stream or connection went away
            pass

    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived) and ev.stream_ended:
                    asyncio.ensure_future(answer(ev.stream_id))
                elif isinstance(ev, h2.events.StreamEnded):
                    asyncio.ensure_future(answer(ev.stream_id))
            writer.write(conn.data_to_send())
    except (ConnectionError, OSError):
        pass
    writer.close()


def serve_grpc(host, port):
    from concurrent import futures

    import grpc

    def call(request, context):
        time.sleep(delay_s())
        stats["requests"] += 1
        return str(args.id).encode()

    handler = grpc.method_handlers_generic_handler(
        "xm.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--id", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=5)
    ap.add_argument("--slow-ms", type=float)
    ap.add_argument("--slow-from", type=float, default=0)
    ap.add_argument("--grpc", action="store_true")
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)

    def report(*_):
        print(f"h2_server {args.id}: requests={stats['requests']} "
              f"connections={stats['connections']}", flush=True)
        os._exit(0)  # grpc's server threads would keep sys.exit() waiting

    signal.signal(signal.SIGTERM, report)
    if args.grpc:
        server = serve_grpc(host, int(port))  # noqa: F841 - a collected server stops
        time.sleep(args.seconds)
        report()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(asyncio.start_server(h2_conn, host, int(port)))
    loop.add_signal_handler(signal.SIGTERM, report)
    loop.call_later(args.seconds, report)
    loop.run_forever()


if __name__ == "__main__":
    main()
