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

static __always_inline int lb_peer_local(__u8 family, const struct xm_addr *a)
{
	struct xm_endpoint_key k = {};

	if (xm_addr_is_loopback(family, a))
		return 1;
	k.family = family;
	k.addr = *a;
	return bpf_map_lookup_elem(&xm_endpoints, &k) != NULL;
}

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
 */
static __always_inline void lb_sockops(struct bpf_sock_ops *skops)
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
		lb_tuple(skops, &t, 1);
		if (!lb_peer_local(t.family, &t.local))
			break; /* remote backend: the state stays in socket storage */
		/* a local backend's socket will need the state: share it */
		if (bpf_map_update_elem(&xm_lb_flows, &ls->flow, &ls->st, BPF_ANY) == 0) {
			xm_stat_add(XM_STAT_LB_FLOWS_NEW, 1);
			ls->shared = 1;
			bpf_map_update_elem(&xm_lb_peer, &t, &ls->flow, BPF_ANY);
		}
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		lb_tuple(skops, &t, 0);
		cookie = bpf_map_lookup_elem(&xm_lb_peer, &t);
		if (!cookie)
			break;
		ls = bpf_sk_storage_get(&xm_lb_sock, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (ls) {
			ls->flow = *cookie;
			ls->role = XM_LB_ROLE_SERVER;
			f = bpf_map_lookup_elem(&xm_lb_flows, cookie);
			if (f)
				ls->backend = f->backend;
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
