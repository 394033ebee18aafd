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
 * Per-socket decision for the direction this socket sends in, taken at its
 * first message: bytes of one direction must all go the same way, or
 * redirected bytes would overtake bytes still in TCP (the receiver reads its
 * redirect queue before its TCP receive queue).
 *
 * The one change allowed is REDIRECT -> DEMOTED, a one-way bulk sender going
 * back to TCP (docs/redirect-compat.md, "Bulk senders"): its earlier bytes
 * are already in the peer's redirect queue (a redirect is queued before
 * sendmsg goes on), its later ones follow in TCP, and the peer reads them in
 * that order. Leaving the map gives the sender plain TCP back, but drops its
 * own redirect queue, so it may only leave if nothing was or ever will be
 * redirected to it: the peer's direction is closed first, UNDECIDED -> TCP,
 * one compare-and-exchange against the peer's own UNDECIDED -> REDIRECT at
 * its first message; whoever is first wins. The exchange is on the 64-bit
 * word of mode and bulk_bytes (0 while UNDECIDED: 64-bit atomics work with
 * any BPF CPU version); mode was a byte with zero padding before, and reads
 * as the byte it was on little-endian.
 */
enum xm_sock_mode {
	XM_SOCK_UNDECIDED = 0,
	XM_SOCK_REDIRECT,
	XM_SOCK_TCP,     /* never redirected */
	XM_SOCK_DEMOTED, /* redirected, then TCP: a bulk sender (out of the map), or held (lb.h) */
};

/*
 * A redirected sender is a bulk candidate after this many bytes (about what
 * TCP lets a sender queue ahead of its reader; the redirect has no such
 * limit: docs/benchmarks.md, "Bulk streams"). It is demoted if its peer has
 * never redirected a byte to it (a one-way stream, not request/response).
 */
#ifndef XM_BULK_DEMOTE_BYTES
#define XM_BULK_DEMOTE_BYTES (4u << 20)
#endif
/* bulk_bytes past counting: the agent was asked / the sender keeps the redirect */
#define XM_BULK_ASKED 0xfffffffeu
#define XM_BULK_KEEP 0xffffffffu

/*
 * The demotion of a bulk sender, between its sk_msg and the agent's
 * iterator over the redirect map (bpf/redirect.bpf.c, xm_redirect_bulk):
 * neither sk_msg nor iterators may look a peer socket up (no bpf_sk_release
 * there), and sk_msg may not delete from a sockhash, so the two ends meet
 * in this map, keyed by the key of the sender's PEER (the socket that must
 * close its direction). Value: enum xm_bulk_ask.
 */
enum xm_bulk_ask {
	XM_BULK_ASK_PENDING = 0, /* the sender asked; the peer has not been visited */
	XM_BULK_ASK_CLOSED,      /* the peer's direction is TCP for good: demote */
	XM_BULK_ASK_REFUSED,     /* the peer has redirected: keep the redirect */
};

#ifndef XM_MAX_BULK_ASKS
#define XM_MAX_BULK_ASKS 1024
#endif

/*
 * Socket storage, written by sockops before the socket enters the map.
 * peer: the key of the other end of this very connection (written once,
 * from this socket's own tuple and ISNs); sk_msg redirects only to it.
 * bulk_bytes: bytes redirected, counted up to XM_BULK_DEMOTE_BYTES, then
 * XM_BULK_ASKED, then XM_BULK_KEEP or the mode DEMOTED.
 */
struct xm_sock_state {
	struct xm_sock_key peer;
	union {
		struct {
			__u32 mode; /* enum xm_sock_mode */
			__u32 bulk_bytes;
		};
		__u64 dir; /* both, for a compare-and-exchange (64-bit: any BPF CPU version) */
	};
	__u8 flags; /* XM_SOCK_F_*: outside dir, so claiming a direction never sees them */
	__u8 pad[7];
};

/*
 * A local backend's socket of a connection the LB balanced and redirection
 * put in the map: its sk_msg times the responses in the client's shared probe
 * state (xm_lb_flows, bpf/lib/lb_probe.h). Set by sockops at
 * PASSIVE_ESTABLISHED.
 */
#define XM_SOCK_F_LB_BACKEND 0x1

_Static_assert(sizeof(struct xm_sock_state) == 72, "xm_sock_state layout is ABI");

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
