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
 * peer: at the ESTABLISHED callbacks of a socket redirection put in its map,
 * the redirect key of the other end (NULL otherwise). Returns 1 when sk is a
 * local backend's socket of a balanced connection whose state is shared (its
 * sk_msg times the responses: lb_probe_msg), else 0.
 */
static __always_inline int lb_sockops(struct bpf_sock_ops *skops, const struct xm_sock_key *peer)
{
	struct bpf_sock *sk = skops->sk;
	struct xm_lb_sock *ls;
	struct xm_lb_flow *f;
	struct xm_lb_probe *p;
	__u64 key;

	if (!sk)
		return 0;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		ls = lb_sock_of(sk);
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
		ls = lb_sock_of(sk);
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
		if (!peer || xm_lb_probes_off)
			break;
		/* the local backend's sk_msg will time the responses: share the state */
		key = lb_flow_key(peer->remote_isn, peer->local_isn);
		if (bpf_map_update_elem(&xm_lb_flows, &key, &ls->st, BPF_ANY) == 0) {
			xm_stat_add(XM_STAT_LB_FLOWS_NEW, 1);
			ls->flow = key;
			ls->shared = 1;
		}
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		/*
		 * Only a redirected client on this node shares its state, and
		 * its ACTIVE_ESTABLISHED ran before this (the ACK that makes
		 * this socket is sent after it): one lookup tells.
		 */
		if (!peer || xm_lb_probes_off)
			break;
		key = lb_flow_key(peer->local_isn, peer->remote_isn);
		return bpf_map_lookup_elem(&xm_lb_flows, &key) != NULL;
	case BPF_SOCK_OPS_RTO_CB:
		if (skops->state != BPF_TCP_SYN_SENT)
			break;
		ls = lb_sock_of(sk);
		if (!ls || ls->role != XM_LB_ROLE_CLIENT)
			break;
		f = lb_state_of(ls);
		if (f)
			f->flags |= XM_LB_FLOW_F_SYN_RTO;
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		ls = lb_sock_of(sk);
		if (ls && ls->role == XM_LB_ROLE_CLIENT)
			lb_state_change(ls, skops->args[0], skops->args[1]);
		break;
	}
	return 0;
}

#endif
