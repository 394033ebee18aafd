/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket redirection: key of the SOCKHASH and per-socket state. */
#ifndef XMESH_REDIRECT_H
#define XMESH_REDIRECT_H

#include "common.h"

/*
 * Key of the redirect SOCKHASH: one incarnation of one connection, from the
 * socket's own point of view. The key of its peer is the same with local and
 * remote swapped. Padding is explicit and zeroed on both sides so that the
 * hash of two equal keys is equal.
 *
 * scope: the socket's netns cookie when both addresses are loopback (the two
 * ends share a netns, and every netns has its own 127.0.0.1), 0 for pod
 * addresses, which are unique on the node and were checked against the
 * endpoints map.
 *
 * local_isn/remote_isn: the initial sequence numbers of the two directions
 * (this socket's ISS and IRS). They tell incarnations of the same 4-tuple
 * apart: a socket of an older connection with the same tuple that is still
 * closing has other ISNs, so it can never be found as the peer of a new one
 * (docs/architecture.md, "A redirect target is always the live peer").
 */
struct xm_sock_key {
	__u64 scope;
	struct xm_addr local;
	struct xm_addr remote;
	__u16 local_port;  /* host byte order */
	__u16 remote_port; /* host byte order */
	__u8 family;       /* AF_INET or AF_INET6 */
	__u8 pad[3];
	__u32 local_isn;   /* host byte order */
	__u32 remote_isn;  /* host byte order */
};

_Static_assert(sizeof(struct xm_sock_key) == 56, "xm_sock_key layout is ABI");

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

/*
 * Socket storage, written by sockops before the socket enters the map.
 * peer: the key of the other end of this very connection (written once,
 * from this socket's own tuple and ISNs); sk_msg redirects only to it.
 */
struct xm_sock_state {
	struct xm_sock_key peer;
	__u8 mode;  /* enum xm_sock_mode */
	__u8 flags; /* XM_SOCK_F_* */
	__u8 pad[6];
};

/*
 * A local backend's socket of a connection the LB balanced and redirection
 * put in the map: its sk_msg times the responses in the client's shared probe
 * state (xm_lb_flows, bpf/lib/lb_probe.h). Set by sockops at
 * PASSIVE_ESTABLISHED; a byte that was padding, so older pinned storage maps
 * fit.
 */
#define XM_SOCK_F_LB_BACKEND 0x1

_Static_assert(sizeof(struct xm_sock_state) == 64, "xm_sock_state layout is ABI");

/*
 * Operators' opt-outs from redirection, checked when a connection is
 * established: {0, port} skips every connection with that local or remote
 * port (e.g. a service's target port), {netns cookie, 0} every connection of
 * that network namespace (a pod). Value: flags. With
 * XM_REDIRECT_SKIP_F_PORTS on {netns cookie, 0}, only the pod's connections
 * with a local or remote port that has its own {netns cookie, port} entry
 * are skipped (a pod's xmesh.io/redirect-skip-ports); pods without an entry
 * pay one lookup, as before.
 */
#define XM_REDIRECT_SKIP_F_PORTS 0x1

struct xm_redirect_skip_key {
	__u64 netns_cookie;
	__u16 port; /* host byte order */
	__u16 pad[3];
};

_Static_assert(sizeof(struct xm_redirect_skip_key) == 16, "xm_redirect_skip_key layout is ABI");

#ifndef XM_MAX_REDIRECT_SKIP
#define XM_MAX_REDIRECT_SKIP 4096
#endif

/* Build a peer's key from a socket's own key. */
static inline void xm_sock_key_peer(const struct xm_sock_key *k, struct xm_sock_key *peer)
{
	*peer = *k;
	peer->local = k->remote;
	peer->remote = k->local;
	peer->local_port = k->remote_port;
	peer->remote_port = k->local_port;
	peer->local_isn = k->remote_isn;
	peer->remote_isn = k->local_isn;
}

#endif /* XMESH_REDIRECT_H */
