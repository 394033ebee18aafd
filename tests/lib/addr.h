/* SPDX-License-Identifier: MIT */
/*
 * Addresses for the test tools, as sockaddrs. Unlike user/lib/addr.c these
 * keep "::ffff:a.b.c.d" as an IPv6 address: tests use it on purpose to
 * exercise IPv4-mapped sockets.
 */
#ifndef XT_ADDR_H
#define XT_ADDR_H

#include <stdbool.h>
#include <sys/socket.h>

/* "10.0.0.1" or "fd00::1" and a port; 0, or -1 when addr is neither. */
int xt_sockaddr(struct sockaddr_storage *ss, socklen_t *len, const char *addr, int port);
/*
 * "IP:PORT", "[IPv6]:PORT", or "unix:PATH"; with any_ok also "PORT" and
 * ":PORT" (the IPv4 wildcard, for servers). 0, or -1 when malformed.
 */
int xt_endpoint(struct sockaddr_storage *ss, socklen_t *len, const char *s, bool any_ok);
/* The port of an IPv4 or IPv6 address (host order); 0 for any other. */
unsigned int xt_port(const struct sockaddr_storage *ss);
/* Same family, address and port. */
bool xt_same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/*
 * A bound socket of type (SOCK_STREAM: also listening; | SOCK_NONBLOCK
 * allowed) with SO_REUSEADDR; a stale unix socket file is replaced. Ends the
 * tool (exit 1) with the reason when it cannot: a server without its
 * socket has nothing to do.
 */
int xt_listen(const struct sockaddr_storage *ss, socklen_t len, int type);
/* "IP:PORT" / "[IPv6]:PORT" / "unix:PATH" into buf. */
const char *xt_endpoint_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
