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
#
# With --connect [--tls CERT KEY] after MODE_FILE it is a forward proxy (a
# kubeconfig's proxy-url): each connection starts with an HTTP CONNECT
# (over TLS with --tls: an https proxy), answered 200 and then relayed to
# UPSTREAM whatever it names; the request lines are appended to
# MODE_FILE.connects. With --socks5 instead of --connect it is a SOCKS5 proxy
# (RFC 1928, no authentication, CONNECT only): the host it is asked for is
# logged the same way ("CONNECT HOST:PORT SOCKS5 domain|ipv4|ipv6").
# LISTEN port 0: the port taken is written to MODE_FILE.port.
import os
import select
import socket
import ssl
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
			# TLS: bytes already decrypted wait in the socket, select() does not see them
			pending = getattr(client, "pending", lambda: 0)() > 0
			r, _, _ = select.select([client, upstream], [], [], 0 if pending else 0.1)
			if pending and client not in r:
				r.append(client)
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


def http_connect(c, log):
	"""Read a CONNECT request off c and accept it; False when it is none."""
	req = b""
	while b"\r\n\r\n" not in req:
		data = c.recv(4096)
		if not data or len(req) > 65536:
			return False
		req += data
	line = req.split(b"\r\n", 1)[0].decode(errors="replace")
	with open(log, "a") as f:
		f.write(line + "\n")
	if not line.startswith("CONNECT "):
		c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return False
	c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
	return True


def recv_exact(c, n):
	data = b""
	while len(data) < n:
		more = c.recv(n - len(data))
		if not more:
			raise OSError("socks5: the client closed mid-request")
		data += more
	return data


def socks5_connect(c, log):
	"""Take a SOCKS5 greeting and CONNECT off c and accept them; False when they are none."""
	ver, n = recv_exact(c, 2)
	methods = recv_exact(c, n)
	if ver != 5 or 0 not in methods:
		c.sendall(b"\x05\xff")
		return False
	c.sendall(b"\x05\x00")
	ver, cmd, _, atyp = recv_exact(c, 4)
	if atyp == 1:
		host, kind = socket.inet_ntop(socket.AF_INET, recv_exact(c, 4)), "ipv4"
	elif atyp == 4:
		host, kind = "[%s]" % socket.inet_ntop(socket.AF_INET6, recv_exact(c, 16)), "ipv6"
	elif atyp == 3:
		host, kind = recv_exact(c, recv_exact(c, 1)[0]).decode(errors="replace"), "domain"
	else:
		return False
	port = int.from_bytes(recv_exact(c, 2), "big")
	with open(log, "a") as f:
		f.write("CONNECT %s:%d SOCKS5 %s\n" % (host, port, kind))
	if ver != 5 or cmd != 1:
		c.sendall(b"\x05\x07\x00\x01" + bytes(6))  # command not supported
		return False
	c.sendall(b"\x05\x00\x00\x01" + bytes(6))
	return True


def main():
	lhost, lport = sys.argv[1].rsplit(":", 1)
	uhost, uport = sys.argv[2].rsplit(":", 1)
	connect = "--connect" in sys.argv[4:]
	socks5 = "--socks5" in sys.argv[4:]
	tls = None
	if "--tls" in sys.argv[4:]:
		i = sys.argv.index("--tls")
		tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		tls.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
	srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	srv.bind((lhost, int(lport)))
	srv.listen(64)
	if int(lport) == 0:
		with open(sys.argv[3] + ".port.tmp", "w") as f:
			f.write("%d\n" % srv.getsockname()[1])
		os.replace(sys.argv[3] + ".port.tmp", sys.argv[3] + ".port")
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
			if tls:
				c = tls.wrap_socket(c, server_side=True)
			if connect and not http_connect(c, sys.argv[3] + ".connects"):
				c.close()
				continue
			if socks5 and not socks5_connect(c, sys.argv[3] + ".connects"):
				c.close()
				continue
			u = socket.create_connection((uhost, int(uport)))
		except OSError:
			c.close()
			continue
		born_dropping = mode(sys.argv[3]) == "drop"
		threading.Thread(target=relay, args=(c, u, sys.argv[3], born_dropping),
				 daemon=True).start()


if __name__ == "__main__":
	sys.exit(main())
