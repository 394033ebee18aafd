#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A TCP proxy in front of the test cluster's API server that can be told to
# misbehave, for the agent's fault tests: k8s_fault_proxy.py LISTEN_IP:PORT
# UPSTREAM_IP:PORT MODE_FILE. MODE_FILE holds the mode, read every 0.1 s:
#   pass     relay both ways
#   garbage  every open connection gets bytes that are no TLS record toward
#            the client (an API server answering garbage mid-stream), then
#            is closed; new connections get the same while the mode lasts
#   stall    every open connection stops relaying (a server that hangs
#            mid-stream); new connections hang too while the mode lasts; once
#            the mode is pass again, the stalled connections are closed (the
#            server's restart resets them), never resumed
#   drop     every connection open now goes silent for good, in any mode
#            after (a peer or path that died without FIN or RST: nothing is
#            relayed either way, nothing is closed); new connections relay
# The number of connections accepted so far is kept in MODE_FILE.conns.
import os
import select
import socket
import sys
import threading

GARBAGE = b"\x17\x03\x03\x00\x20" + b"not an answer from the API server" * 4


def mode(path):
	try:
		with open(path) as f:
			return f.read().strip()
	except OSError:
		return "pass"


def relay(client, upstream, mode_file, born_dropping):
	frozen = False
	dead = False
	try:
		while True:
			m = mode(mode_file)
			dead = dead or (m == "drop" and not born_dropping)
			if dead:
				select.select([], [], [], 0.1)
				continue
			if m == "stall":
				frozen = True
				select.select([], [], [], 0.1)
				continue
			if frozen:
				return  # never resumed: closed
			if m == "garbage":
				client.sendall(GARBAGE)
				return
			r, _, _ = select.select([client, upstream], [], [], 0.1)
			for s in r:
				data = s.recv(65536)
				if not data:
					return
				(upstream if s is client else client).sendall(data)
	except OSError:
		pass
	finally:
		client.close()
		upstream.close()


def main():
	lhost, lport = sys.argv[1].rsplit(":", 1)
	uhost, uport = sys.argv[2].rsplit(":", 1)
	srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	srv.bind((lhost, int(lport)))
	srv.listen(64)
	print("k8s_fault_proxy: %s -> %s, mode from %s" % (sys.argv[1], sys.argv[2], sys.argv[3]),
	      file=sys.stderr, flush=True)
	accepted = 0
	while True:
		c, _ = srv.accept()
		accepted += 1
		with open(sys.argv[3] + ".conns.tmp", "w") as f:
			f.write("%d\n" % accepted)
		os.replace(sys.argv[3] + ".conns.tmp", sys.argv[3] + ".conns")
		try:
			u = socket.create_connection((uhost, int(uport)))
		except OSError:
			c.close()
			continue
		born_dropping = mode(sys.argv[3]) == "drop"
		threading.Thread(target=relay, args=(c, u, sys.argv[3], born_dropping),
				 daemon=True).start()


if __name__ == "__main__":
	sys.exit(main())
