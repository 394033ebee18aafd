/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sockops for the LB probes: connection outcomes, and the tie between a client
 * and a local backend's accepted socket (docs/probes.md). Called from the one
 * sockops program of the node (redirect.bpf.c), or from lb.bpf.c's own when
 * the redirect module is off.
 */
#ifndef XMESH_BPF_LB_SOCKOPS_H
#define XMESH_BPF_LB_SOCKOPS_H

#include "lb_probe.h"
#include "addr.h"
#include "common_maps.h"

/*
 * What redirection made of an established socket, which tells the LB whether
 * a local backend's socket will need the connection's probe state: only a
 * redirected connection's responses skip the client's cgroup_skb (the
 * backend's sk_msg times them), so only then is the state shared.
 */
enum xm_sock_peer {
	XM_SOCK_PEER_REMOTE = 0,   /* the peer cannot be on this node (or not IP) */
	XM_SOCK_PEER_LOCAL,        /* local peer, this socket stays on TCP */
	XM_SOCK_PEER_REDIRECTED,   /* in the redirect map */
};

/* The tuple as the backend's socket sees it: local = backend, remote = client. */
static __always_inline void lb_tuple(struct bpf_sock_ops *skops, struct xm_lb_tuple *t, int swap)
{
	struct xm_addr l, r;
	__u16 lp, rp;

	t->family = xm_addr_load(&l, skops->family, skops->local_ip4, skops->local_ip6[0],
				 skops->local_ip6[1], skops->local_ip6[2], skops->local_ip6[3]);
	xm_addr_load(&r, skops->family, skops->remote_ip4, skops->remote_ip6[0],
		     skops->remote_ip6[1], skops->remote_ip6[2], skops->remote_ip6[3]);
	lp = (__u16)skops->local_port;
	rp = (__u16)bpf_ntohl(skops->remote_port);
	if (swap) {
		t->local = r;
		t->remote = l;
		t->local_port = rp;
		t->remote_port = lp;
	} else {
		t->local = l;
		t->remote = r;
		t->local_port = lp;
		t->remote_port = rp;
	}
	if (xm_addr_is_loopback(t->family, &t->local) && xm_addr_is_loopback(t->family, &t->remote))
		t->scope = bpf_get_netns_cookie(skops);
}

/*
 * Enabled only after a SYN timed out: the connect gave up (SYN_SENT ->
 * CLOSE) unless a reset ended it first (counted as refused in cgroup_skb).
 */
static __always_inline void lb_state_change(struct xm_lb_sock *ls, __u32 old, __u32 new)
{
	struct xm_lb_probe *p;
	struct xm_lb_flow *f;

	if (new != BPF_TCP_CLOSE || old != BPF_TCP_SYN_SENT)
		return;
	f = lb_state_of(ls);
	if (!f || (f->flags & XM_LB_FLOW_F_DONE))
		return;
	f->flags |= XM_LB_FLOW_F_DONE;
	p = lb_probe_of(ls->backend);
	if (p)
		p->conn_timeout++;
}

/*
 * The LB's part of a sockops callback. It is not a program of its own: the
 * kernel runs every sockops program of the cgroup for every callback of every
 * socket (TIMEOUT_INIT, RWND_INIT, TCP_CONNECT, NEEDS_ECN, ESTABLISHED at
 * least, whatever the flags), so one program that dispatches on the op once
 * for redirection and LB (redirect.bpf.c) costs half of two. lb.bpf.c wraps it
 * in a program of its own for when the redirect module is off.
 * peer: enum xm_sock_peer, what redirection did at the ESTABLISHED callbacks.
 */
static __always_inline void lb_sockops(struct bpf_sock_ops *skops, int peer)
{
	struct xm_lb_tuple t = {};
	struct bpf_sock *sk = skops->sk;
	struct xm_lb_sock *ls;
	struct xm_lb_flow *f;
	struct xm_lb_probe *p;
	__u64 *cookie;

	if (!sk)
		return;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		ls = bpf_sk_storage_get(&xm_lb_sock, sk, 0, 0);
		/*
		 * Only the RTO callback: resets, refusals and closes are seen in
		 * cgroup_skb, so the state callback (a program run per state
		 * change, for every program of the cgroup) is enabled only
		 * once a SYN timed out, to see the connect give up. Keep flags
		 * other programs set: the helper replaces them all.
		 */
		if (ls && ls->role == XM_LB_ROLE_CLIENT)
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
							 BPF_SOCK_OPS_RTO_CB_FLAG);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		ls = bpf_sk_storage_get(&xm_lb_sock, sk, 0, 0);
		if (!ls || ls->role != XM_LB_ROLE_CLIENT)
			break;
		p = lb_probe_of(ls->backend);
		if (p)
			p->conns++;
		ls->st.flags |= XM_LB_FLOW_F_EST;
		/*
		 * A remote backend, or a local one this connection does not
		 * redirect to: the client's own hooks see every byte, the
		 * state stays in socket storage (no map entry, no lookup).
		 */
		if (peer != XM_SOCK_PEER_REDIRECTED)
			break;
		/* the local backend's sk_msg will need the state: share it */
		lb_tuple(skops, &t, 1);
		if (bpf_map_update_elem(&xm_lb_flows, &ls->flow, &ls->st, BPF_ANY) == 0) {
			xm_stat_add(XM_STAT_LB_FLOWS_NEW, 1);
			ls->shared = 1;
			bpf_map_update_elem(&xm_lb_peer, &t, &ls->flow, BPF_ANY);
		}
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		/* only a redirected client on this node shares its state */
		if (peer == XM_SOCK_PEER_REMOTE)
			break;
		lb_tuple(skops, &t, 0);
		cookie = bpf_map_lookup_elem(&xm_lb_peer, &t);
		if (!cookie)
			break;
		/* the storage is for sk_msg, which only a redirected socket runs */
		ls = peer == XM_SOCK_PEER_REDIRECTED ?
			     bpf_sk_storage_get(&xm_lb_sock, sk, 0, BPF_SK_STORAGE_GET_F_CREATE) :
			     NULL;
		/* its sk_msg finds the backend in the shared state itself */
		if (ls) {
			ls->flow = *cookie;
			ls->role = XM_LB_ROLE_SERVER;
		}
		bpf_map_delete_elem(&xm_lb_peer, &t);
		break;
	case BPF_SOCK_OPS_RTO_CB:
		if (skops->state != BPF_TCP_SYN_SENT)
			break;
		ls = bpf_sk_storage_get(&xm_lb_sock, sk, 0, 0);
		if (!ls || ls->role != XM_LB_ROLE_CLIENT)
			break;
		f = lb_state_of(ls);
		if (f)
			f->flags |= XM_LB_FLOW_F_SYN_RTO;
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		ls = bpf_sk_storage_get(&xm_lb_sock, sk, 0, 0);
		if (ls && ls->role == XM_LB_ROLE_CLIENT)
			lb_state_change(ls, skops->args[0], skops->args[1]);
		break;
	}
}

#endif
