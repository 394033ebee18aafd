/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket redirection: key of the SOCKHASH and per-socket state. */
#ifndef XMESH_REDIRECT_H
#define XMESH_REDIRECT_H

#include "common.h"

/*
 * Key of the redirect SOCKHASH, from the socket's own point of view. The peer
 * of a socket is found by swapping local and remote. Padding is explicit and
 * zeroed on both sides so that the hash of two equal keys is equal.
 *
 * scope: the socket's netns cookie when both addresses are loopback (the two
 * ends share a netns, and every netns has its own 127.0.0.1), 0 for pod
 * addresses, which are unique on the node and were checked against the
 * endpoints map.
 */
struct xm_sock_key {
	__u64 scope;
	struct xm_addr local;
	struct xm_addr remote;
	__u16 local_port;  /* host byte order */
	__u16 remote_port; /* host byte order */
	__u8 family;       /* AF_INET or AF_INET6 */
	__u8 pad[3];
};

/*
 * Per-socket decision for the direction this socket sends in, taken once at
 * its first message and never changed: bytes of one direction must all go
 * the same way, or redirected bytes would overtake bytes still in TCP (the
 * receiver reads its redirect queue before its TCP receive queue).
 */
enum xm_sock_mode {
	XM_SOCK_UNDECIDED = 0,
	XM_SOCK_REDIRECT,
	XM_SOCK_TCP,
};

struct xm_sock_state {
	__u8 mode; /* enum xm_sock_mode */
	__u8 pad[7];
};

#endif /* XMESH_REDIRECT_H */
