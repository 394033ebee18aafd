// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connect-time service load balancing and per-backend probes.
 *
 * connect4/6 rewrite a connect() to a service VIP into a connect() to a
 * backend picked from the service's selection table; from then on the
 * socket talks to the backend directly (no per-packet NAT). sendmsg4/6 do
 * the same per datagram for unconnected UDP, and recvmsg4/6 make the replies
 * appear to come from the VIP; getpeername4/6 report the VIP. A service
 * without backends refuses the connect() with ECONNREFUSED.
 *
 * Probes: cgroup_skb sees a balanced TCP connection's packets in both
 * directions: payload times requests, resets and the backend's FIN end it;
 * sockops counts established connections, catches connects that time out and
 * ties a local backend's socket to its client (lib/lb_probe.h, docs/probes.md).
 * Redirected local connections are timed by the redirect object's sk_msg.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <xmesh/lb.h>
#include "lib/common_maps.h"
#include "lib/addr.h"
#include "lib/lb_probe.h"
#include "lib/lb_sockops.h"
#include "lib/kfeatures.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ECONNREFUSED 111
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XM_LB_MAX_FLOWS);
	__type(key, struct xm_lb_rev_key);
	__type(value, struct xm_lb_rev);
} xm_lb_rev SEC(".maps");

/*
 * 1 once a TCP connect() on this node was balanced (connect4/6), set before
 * that socket sends its SYN; 0 on a node whose sockets are all servers or
 * talk to pod addresses. The per-packet probes serve only balanced clients
 * and the kernel runs them for every packet of the cgroup, so until then
 * they return at their first instruction: no header parse, no socket-storage
 * lookup (a plain load, no helper). The first balanced connection is timed
 * from its first byte. The agent sets it at start when the pinned counters
 * say the node balanced a connect() before (dp_lb.c: a restart must not stop
 * timing the connections it finds).
 */
volatile __u32 xm_lb_clients;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XM_LB_MAX_CLUSTERS);
	__type(key, __u32);
	__type(value, struct xm_lb_cluster);
} xm_lb_cluster SEC(".maps");

/*
 * Pick a backend of the service at key. Returns the backend and its id, or
 * NULL: *is_svc tells whether key was a service at all (then it has no
 * usable backend).
 */
static __always_inline struct xm_lb_backend *lb_select(const struct xm_lb_svc_key *key,
							__u32 *be_id, int *is_svc)
{
	struct xm_lb_backend *be;
	struct xm_lb_table *tbl;
	struct xm_lb_svc *svc;
	__u32 idx, slot;

	*is_svc = 0;
	svc = bpf_map_lookup_elem(&xm_lb_svc, key);
	if (!svc)
		return NULL; /* the one lookup non-service traffic pays */
	*is_svc = 1;
	if (!svc->backend_count)
		return NULL;
	idx = svc->id * 2 + (svc->active & 1);
	tbl = bpf_map_lookup_elem(&xm_lb_tables, &idx);
	if (!tbl)
		return NULL;
	slot = bpf_get_prandom_u32() & XM_LB_SLOT_MASK;
	*be_id = tbl->backend[slot];
	be = bpf_map_lookup_elem(&xm_lb_be, be_id);
	if (!be || !(be->flags & XM_LB_BE_F_USED) || be->family != key->family)
		return NULL;
	return be;
}

static __always_inline void lb_refuse(void)
{
	xm_stat_add(XM_STAT_LB_NO_BACKEND, 1);
	/*
	 * Without this the kernel turns our "return 0" into EPERM. The helper
	 * is Linux >= 5.18; on older kernels (or when the agent says so) the
	 * branch is dead at load time and a refused connect() reports EPERM
	 * (still at once, never a hang).
	 */
	if (xm_kf(XM_KF_SET_RETVAL) &&
	    bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_set_retval))
		bpf_set_retval(-ECONNREFUSED);
}

/* Remember on the socket what it was balanced to (getpeername, probes). */
static __always_inline void lb_remember(struct bpf_sock_addr *ctx, const struct xm_lb_svc_key *key,
					__u32 be_id, const struct xm_lb_backend *be)
{
	struct xm_lb_sock *ls;
	struct xm_sock *s;

	if (!ctx->sk)
		return;
	/* the socket's one storage (xmesh/sock.h): redirection's part stays as it is */
	s = bpf_sk_storage_get(&xm_sock, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return;
	ls = &s->lb;
	ls->flow = 0; /* set when the state is shared (lib/lb_sockops.h) */
	ls->vip = key->vip;
	ls->vport = key->port;
	ls->family = key->family;
	ls->role = XM_LB_ROLE_CLIENT;
	ls->backend = be_id;
	ls->shared = 0;
	ls->retire_mark = 0;
	ls->st.t_start = 0;
	ls->st.backend = be_id;
	ls->st.phase = XM_LB_IDLE;
	ls->st.flags = 0;
}

/* Datagrams from backend be to this socket are replies from the VIP. */
static __always_inline void lb_rev_add(struct bpf_sock_addr *ctx, const struct xm_lb_svc_key *key,
				       const struct xm_lb_backend *be)
{
	struct xm_lb_rev_key rk = {};
	struct xm_lb_rev rv = {};

	rk.cookie = bpf_get_socket_cookie(ctx);
	rk.addr = be->addr;
	rk.port = be->port;
	rk.family = be->family;
	rv.vip = key->vip;
	rv.vport = key->port;
	rv.family = key->family;
	/* New entries are counted: the agent estimates LRU evictions from them. */
	if (bpf_map_update_elem(&xm_lb_rev, &rk, &rv, BPF_NOEXIST) == 0)
		xm_stat_add(XM_STAT_LB_REV_NEW, 1);
	else
		bpf_map_update_elem(&xm_lb_rev, &rk, &rv, BPF_EXIST);
}

static __always_inline void key4(struct xm_lb_svc_key *key, struct bpf_sock_addr *ctx)
{
	key->vip.ip[0] = ctx->user_ip4;
	key->port = bpf_ntohs((__u16)ctx->user_port);
	key->proto = (__u8)ctx->protocol;
	key->family = AF_INET;
}

/* A v4-mapped destination of a dual-stack socket is looked up as IPv4. */
static __always_inline void key6(struct xm_lb_svc_key *key, struct bpf_sock_addr *ctx)
{
	key->family = xm_addr_load(&key->vip, AF_INET6, 0, ctx->user_ip6[0], ctx->user_ip6[1],
				   ctx->user_ip6[2], ctx->user_ip6[3]);
	key->port = bpf_ntohs((__u16)ctx->user_port);
	key->proto = (__u8)ctx->protocol;
}

static __always_inline void write6(struct bpf_sock_addr *ctx, __u8 family, const struct xm_addr *a,
				   __u16 port)
{
	if (family == AF_INET) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = XM_V4MAPPED_WORD;
		ctx->user_ip6[3] = a->ip[0];
	} else {
		ctx->user_ip6[0] = a->ip[0];
		ctx->user_ip6[1] = a->ip[1];
		ctx->user_ip6[2] = a->ip[2];
		ctx->user_ip6[3] = a->ip[3];
	}
	ctx->user_port = bpf_htons(port);
}

static __always_inline int lb_connect(struct bpf_sock_addr *ctx, struct xm_lb_svc_key *key, int v6)
{
	struct xm_lb_backend *be;
	__u32 be_id = 0;
	int is_svc;

	if (key->proto != IPPROTO_TCP && key->proto != IPPROTO_UDP)
		return 1;
	be = lb_select(key, &be_id, &is_svc);
	if (!be) {
		if (!is_svc)
			return 1;
		lb_refuse();
		return 0;
	}
	if (v6) {
		write6(ctx, be->family, &be->addr, be->port);
	} else {
		ctx->user_ip4 = be->addr.ip[0];
		ctx->user_port = bpf_htons(be->port);
	}
	/* Connected UDP finds its VIP in socket storage on recvmsg: no reverse entry. */
	lb_remember(ctx, key, be_id, be);
	/* read first: a store per connect would bounce the line between CPUs */
	if (key->proto == IPPROTO_TCP && !xm_lb_clients)
		xm_lb_clients = 1;
	xm_stat_add(XM_STAT_LB_CONNECTS, 1);
	return 1;
}

SEC("cgroup/connect4")
int xm_lb_connect4(struct bpf_sock_addr *ctx)
{
	struct xm_lb_svc_key key = {};

	key4(&key, ctx);
	return lb_connect(ctx, &key, 0);
}

SEC("cgroup/connect6")
int xm_lb_connect6(struct bpf_sock_addr *ctx)
{
	struct xm_lb_svc_key key = {};

	key6(&key, ctx);
	return lb_connect(ctx, &key, 1);
}

/* Unconnected UDP: every datagram to the VIP picks a backend. */
static __always_inline int lb_sendmsg(struct bpf_sock_addr *ctx, struct xm_lb_svc_key *key, int v6)
{
	struct xm_lb_backend *be;
	struct xm_lb_probe *p;
	__u32 be_id = 0;
	int is_svc;

	if (key->proto != IPPROTO_UDP)
		return 1;
	be = lb_select(key, &be_id, &is_svc);
	if (!be) {
		if (!is_svc)
			return 1;
		lb_refuse();
		return 0;
	}
	if (v6) {
		write6(ctx, be->family, &be->addr, be->port);
	} else {
		ctx->user_ip4 = be->addr.ip[0];
		ctx->user_port = bpf_htons(be->port);
	}
	lb_rev_add(ctx, key, be);
	p = lb_probe_of(be_id);
	if (p)
		p->udp_sends++;
	xm_stat_add(XM_STAT_LB_SENDMSG, 1);
	return 1;
}

SEC("cgroup/sendmsg4")
int xm_lb_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct xm_lb_svc_key key = {};

	key4(&key, ctx);
	return lb_sendmsg(ctx, &key, 0);
}

SEC("cgroup/sendmsg6")
int xm_lb_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct xm_lb_svc_key key = {};

	key6(&key, ctx);
	return lb_sendmsg(ctx, &key, 1);
}

/*
 * A datagram from a backend this socket sent to through a VIP: show the VIP.
 * A connected socket knows its backend from socket storage; an unconnected
 * one looks up {cookie, source} in xm_lb_rev.
 */
static __always_inline int lb_recvmsg(struct bpf_sock_addr *ctx, int v6)
{
	struct xm_lb_rev_key rk = {};
	struct xm_lb_backend *be;
	struct xm_lb_sock *ls;
	struct xm_lb_rev tmp = {};
	struct xm_lb_rev *rv;

	rk.cookie = bpf_get_socket_cookie(ctx);
	if (v6)
		rk.family = xm_addr_load(&rk.addr, AF_INET6, 0, ctx->user_ip6[0], ctx->user_ip6[1],
					 ctx->user_ip6[2], ctx->user_ip6[3]);
	else
		rk.family = xm_addr_load(&rk.addr, AF_INET, ctx->user_ip4, 0, 0, 0, 0);
	rk.port = bpf_ntohs((__u16)ctx->user_port);
	rv = bpf_map_lookup_elem(&xm_lb_rev, &rk);
	if (!rv && ctx->sk) {
		ls = lb_sock_of(ctx->sk);
		if (!ls || ls->role != XM_LB_ROLE_CLIENT)
			return 1;
		be = bpf_map_lookup_elem(&xm_lb_be, &ls->backend);
		if (!be || be->port != rk.port || be->family != rk.family ||
		    be->addr.ip[0] != rk.addr.ip[0] || be->addr.ip[1] != rk.addr.ip[1] ||
		    be->addr.ip[2] != rk.addr.ip[2] || be->addr.ip[3] != rk.addr.ip[3])
			return 1;
		tmp.vip = ls->vip;
		tmp.vport = ls->vport;
		tmp.family = ls->family;
		rv = &tmp;
	}
	if (!rv)
		return 1;
	if (v6) {
		write6(ctx, rv->family, &rv->vip, rv->vport);
	} else if (rv->family == AF_INET) {
		ctx->user_ip4 = rv->vip.ip[0];
		ctx->user_port = bpf_htons(rv->vport);
	}
	xm_stat_add(XM_STAT_LB_REVNAT, 1);
	return 1;
}

SEC("cgroup/recvmsg4")
int xm_lb_recvmsg4(struct bpf_sock_addr *ctx)
{
	return lb_recvmsg(ctx, 0);
}

SEC("cgroup/recvmsg6")
int xm_lb_recvmsg6(struct bpf_sock_addr *ctx)
{
	return lb_recvmsg(ctx, 1);
}

static __always_inline int lb_getpeername(struct bpf_sock_addr *ctx, int v6)
{
	struct xm_lb_sock *ls;

	if (!ctx->sk)
		return 1;
	ls = lb_sock_of(ctx->sk);
	if (!ls || ls->role != XM_LB_ROLE_CLIENT)
		return 1;
	if (v6) {
		write6(ctx, ls->family, &ls->vip, ls->vport);
	} else if (ls->family == AF_INET) {
		ctx->user_ip4 = ls->vip.ip[0];
		ctx->user_port = bpf_htons(ls->vport);
	}
	return 1;
}

SEC("cgroup/getpeername4")
int xm_lb_getpeername4(struct bpf_sock_addr *ctx)
{
	return lb_getpeername(ctx, 0);
}

SEC("cgroup/getpeername6")
int xm_lb_getpeername6(struct bpf_sock_addr *ctx)
{
	return lb_getpeername(ctx, 1);
}

/* ---- sockops: only where the redirect module is off (see lib/lb_sockops.h) ---- */

SEC("sockops")
int xm_lb_sockops(struct bpf_sock_ops *skops)
{
	/* nothing is redirected: a local backend is timed like a remote one */
	lb_sockops(skops, NULL);
	return 1;
}

/* ---- cgroup_skb: request/response timing on the client's packets ---- */

#define TCP_FL_FIN 0x01
#define TCP_FL_RST 0x04

/*
 * TCP payload length of skb and where it starts (0 when there is none), and
 * its TCP flags byte. Headers are read in place (they are in the linear part
 * on both hooks): cheaper than bpf_skb_load_bytes on a path every packet of
 * a balanced connection takes.
 */
static __always_inline __u32 tcp_payload(struct __sk_buff *skb, __u32 *off, __u8 *flags)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct tcphdr *th;
	__u32 l3;

	*flags = 0;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP)
			return 0;
		l3 = ip->ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return 0; /* extension headers: not timed */
		l3 = sizeof(*ip6);
	} else {
		return 0;
	}
	if (l3 < 20 || l3 > 60)
		return 0;
	th = data + l3;
	if ((void *)(th + 1) > end)
		return 0;
	*flags = ((__u8 *)th)[13];
	*off = l3 + th->doff * 4;
	return skb->len > *off ? skb->len - *off : 0;
}

/* The client socket's LB storage and probe state for skb, or NULL. */
static __always_inline struct xm_lb_flow *skb_flow(struct __sk_buff *skb, struct xm_lb_sock **lsp,
						   __u32 *state)
{
	struct bpf_sock *sk = skb->sk;
	struct xm_lb_sock *ls;

	if (!sk)
		return NULL;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return NULL;
	ls = lb_sock_of(sk);
	if (!ls || ls->role != XM_LB_ROLE_CLIENT)
		return NULL;
	*lsp = ls;
	*state = sk->state;
	return lb_state_of(ls);
}

/*
 * The connection ended for the probes: a reset (either way) or the backend's
 * FIN. A request still waiting is aborted; a reset before ESTABLISHED is a
 * refused connect. The shared copy of a local backend's connection goes (the
 * backend can send nothing after its FIN or a reset).
 */
static __always_inline void lb_conn_end(struct xm_lb_sock *ls, struct xm_lb_flow *f, int rst,
					__u32 state)
{
	struct xm_lb_probe *p = lb_probe_of(ls->backend);

	if (p) {
		if (rst && state == BPF_TCP_SYN_SENT)
			p->conn_refused++;
		else if (rst)
			p->resets++;
		if (f->phase == XM_LB_REQUEST)
			p->req_aborted++;
	}
	f->phase = XM_LB_IDLE;
	f->flags |= XM_LB_FLOW_F_DONE;
	if (ls->shared) {
		ls->st = *f;
		ls->shared = 0;
		if (bpf_map_delete_elem(&xm_lb_flows, &ls->flow) == 0)
			xm_stat_add(XM_STAT_LB_FLOWS_ENDED, 1);
	}
}

/*
 * Which packets look at the connection's state: the headers alone say
 * whether a packet can change anything for the probes (payload, which may
 * start or answer a request, a reset, the backend's FIN). Every other packet,
 * such as the ACKs coming back to a bulk sender, returns before the
 * socket-storage lookup, the part of a run the program can avoid (its cache
 * lines are cold between two packets of a connection; entering the program
 * costs as much and cannot be avoided). The headers are hot on both hooks.
 * Counted (XM_STAT_LB_PROBE_LOOKUPS) so a test can tell.
 */
static __always_inline struct xm_lb_flow *skb_flow_if(struct __sk_buff *skb, int may_change,
						      struct xm_lb_sock **lsp, __u32 *state)
{
	if (!may_change)
		return NULL;
	xm_stat_add(XM_STAT_LB_PROBE_LOOKUPS, 1);
	return skb_flow(skb, lsp, state);
}

SEC("cgroup_skb/egress")
int xm_lb_egress(struct __sk_buff *skb)
{
	struct xm_lb_sock *ls = NULL;
	struct xm_lb_flow *f;
	__u32 off, state = 0, len;
	__u8 fl;

	if (!xm_lb_clients)
		return 1; /* no balanced client on this node yet */
	len = tcp_payload(skb, &off, &fl);
	/* our FIN is no end: a client may half-close and still await the response */
	f = skb_flow_if(skb, len || (fl & TCP_FL_RST), &ls, &state);
	/* picked for retirement: TCP keeps the data for after the mark (lb.h, mark-and-hold) */
	if (len && ls && lb_held(ls)) {
		xm_stat_add(XM_STAT_LB_HELD_SEGS, 1);
		return 0;
	}
	if (!f || !ls || (f->flags & XM_LB_FLOW_F_DONE))
		return 1;
	if (len && f->phase != XM_LB_REQUEST)
		lb_probe_sent(f);
	if (fl & TCP_FL_RST)
		lb_conn_end(ls, f, 1, state);
	return 1;
}

/* "HTTP/1.x 5" at the payload's start: read in place when it is in the linear part. */
static __always_inline int skb_is_http_5xx(struct __sk_buff *skb, __u32 off)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u8 s[10];

	if (off <= 120 && data + off + sizeof(s) <= end)
		return lb_is_http_5xx(data + off);
	if (bpf_skb_load_bytes(skb, off, s, sizeof(s)))
		return 0;
	return lb_is_http_5xx(s);
}

SEC("cgroup_skb/ingress")
int xm_lb_ingress(struct __sk_buff *skb)
{
	struct xm_lb_sock *ls = NULL;
	struct xm_lb_flow *f;
	__u32 off, state = 0, len;
	__u8 fl;

	if (!xm_lb_clients)
		return 1; /* no balanced client on this node yet */
	len = tcp_payload(skb, &off, &fl);
	f = skb_flow_if(skb, len || (fl & (TCP_FL_RST | TCP_FL_FIN)), &ls, &state);
	if (!f || !ls || (f->flags & XM_LB_FLOW_F_DONE))
		return 1;
	if (len && f->phase == XM_LB_REQUEST)
		lb_probe_received(f, skb_is_http_5xx(skb, off));
	if (fl & (TCP_FL_RST | TCP_FL_FIN))
		lb_conn_end(ls, f, fl & TCP_FL_RST, state);
	return 1;
}
