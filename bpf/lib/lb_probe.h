/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * LB maps and the request/response probe, shared by bpf/lb.bpf.c (cgroup
 * hooks, sockops, cgroup_skb) and bpf/redirect.bpf.c (sk_msg sees both
 * directions of a redirected local connection, which never reach cgroup_skb).
 * Every object that includes this declares the same maps; the agent pins them
 * once and the others reuse the pinned instance.
 */
#ifndef XMESH_BPF_LB_PROBE_H
#define XMESH_BPF_LB_PROBE_H

#include <xmesh/lb.h>
#include <xmesh/redirect.h>
#include <xmesh/sock.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XM_LB_MAX_SERVICES);
	__type(key, struct xm_lb_svc_key);
	__type(value, struct xm_lb_svc);
} xm_lb_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XM_LB_MAX_SERVICES * 2);
	__type(key, __u32);
	__type(value, struct xm_lb_table);
} xm_lb_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XM_LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xm_lb_backend);
} xm_lb_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XM_LB_PROBE_PAGES);
	__type(key, __u32);
	__type(value, struct xm_lb_probe_page);
} xm_lb_probe SEC(".maps");

/*
 * Mmapable (ABI 7): the weighting loop reads the buckets a backend used
 * before in place, through its mapping, with no syscall and no copy of the
 * whole 2 KB entry (user/agent/weighting.c, hist_map()). Lookups and the
 * atomic adds below are the same as for any ARRAY.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XM_LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xm_lb_hist);
} xm_lb_hist SEC(".maps");

/* The LB's and redirection's per-socket state in one storage (xmesh/sock.h). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct xm_sock);
} xm_sock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XM_LB_MAX_FLOWS);
	__type(key, __u64);
	__type(value, struct xm_lb_flow);
} xm_lb_flows SEC(".maps");

/*
 * Per CPU, how many probe updates there were. The weighting loop sums it
 * each tick and copies every backend's per-CPU probes only when it moved:
 * an idle node costs the loop a few bytes instead of the whole array.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} xm_lb_probe_gen SEC(".maps");

/*
 * Agent-written (mmap): 1 while the per-packet probes are detached (config
 * "probes": "weighted" and no service whose weights come from the loop).
 * Redirected connections are then not timed either: no state shared with the
 * backend's socket (an LRU insert per connection that only cgroup_skb would
 * delete), nothing timed in sk_msg.
 */
volatile __u32 xm_lb_probes_off;

/*
 * The LB part of sk's storage, or NULL. Its role is XM_LB_ROLE_NONE where only
 * redirection created the storage: callers check the role.
 */
static __always_inline struct xm_lb_sock *lb_sock_of(void *sk)
{
	struct xm_sock *s = bpf_sk_storage_get(&xm_sock, sk, 0, 0);

	return s ? &s->lb : NULL;
}

/* The probe counters of backend, to update: counted in xm_lb_probe_gen. */
static __always_inline struct xm_lb_probe *lb_probe_of(__u32 backend)
{
	__u32 zero = 0, page = backend >> XM_LB_PROBE_PAGE_SHIFT;
	__u64 *gen = bpf_map_lookup_elem(&xm_lb_probe_gen, &zero);
	struct xm_lb_probe_page *pg;

	if (gen)
		(*gen)++;
	pg = bpf_map_lookup_elem(&xm_lb_probe, &page);
	return pg ? &pg->b[backend & (XM_LB_PROBE_PAGE - 1)] : NULL;
}

/* The client sent payload: a new request unless one is outstanding. */
static __always_inline void lb_probe_sent(struct xm_lb_flow *f)
{
	struct xm_lb_probe *p;

	if (f->phase == XM_LB_REQUEST)
		return;
	f->t_start = bpf_ktime_get_ns();
	f->phase = XM_LB_REQUEST;
	p = lb_probe_of(f->backend);
	if (p)
		p->req_started++;
}

/* Payload came back: the outstanding request, if any, has its response. */
static __always_inline void lb_probe_received(struct xm_lb_flow *f, int is_5xx)
{
	struct xm_lb_probe *p;
	struct xm_lb_hist *h;
	__u64 lat;
	__u32 b;

	if (f->phase != XM_LB_REQUEST)
		return;
	f->phase = XM_LB_RESPONSE;
	lat = bpf_ktime_get_ns() - f->t_start;
	p = lb_probe_of(f->backend);
	if (p) {
		p->req_completed++;
		p->latency_sum_ns += lat;
		if (is_5xx)
			p->http_5xx++;
	}
	h = bpf_map_lookup_elem(&xm_lb_hist, &f->backend);
	if (h) {
		b = xm_lb_hist_bucket(lat);
		/*
		 * Verifier workaround (Linux 6.1): clang bounds-checked one copy
		 * of b and indexed with another, whose bound 6.1 does not carry
		 * over. The barrier makes the checked register the index.
		 */
		barrier_var(b);
		if (b < XM_LB_HIST_BUCKETS)
			__sync_fetch_and_add(&h->bucket[b], 1);
	}
}

/*
 * The key under which a redirected connection's probe state is shared with
 * its local backend's socket (xm_lb_flows): the client's two initial sequence
 * numbers (its ISS and IRS). Both ends have them in their redirect keys
 * (xm_sock_key), so neither needs a lookup or a map of its own to find the
 * other. The kernel hashes each ISN from the tuple and a clock: two live
 * connections share the pair only by chance, and a clash could only mix their
 * probe samples.
 */
static __always_inline __u64 lb_flow_key(__u32 client_iss, __u32 client_irs)
{
	return (__u64)client_iss << 32 | client_irs;
}

/* Where a balanced socket's request/response state is (see xm_lb_flow). */
static __always_inline struct xm_lb_flow *lb_state_of(struct xm_lb_sock *ls)
{
	if (ls->role == XM_LB_ROLE_CLIENT && !ls->shared)
		return &ls->st;
	return bpf_map_lookup_elem(&xm_lb_flows, &ls->flow);
}

/*
 * Is this client socket's payload held (xmesh/lb.h, mark-and-hold)? A stale
 * mark is cleared here, so that the 32-bit clock coming round cannot revive
 * it. Called under the socket's lock or from its transmit path, which the
 * iterator's pick (under the lock) cannot run beside.
 */
static __always_inline int lb_held(struct xm_lb_sock *ls)
{
	if (!ls->retire_mark)
		return 0;
	if (xm_lb_mark_fresh(ls->retire_mark, bpf_ktime_get_ns(), XM_LB_HOLD_NS))
		return 1;
	ls->retire_mark = 0;
	return 0;
}

/* "HTTP/1.x 5": the start of an HTTP/1 status line with a 5xx code. */
static __always_inline int lb_is_http_5xx(const __u8 *s)
{
	return s[0] == 'H' && s[1] == 'T' && s[2] == 'T' && s[3] == 'P' && s[4] == '/' &&
	       s[5] == '1' && s[6] == '.' && s[8] == ' ' && s[9] == '5';
}

/*
 * sk_msg of a socket in the redirect map: the client's sends start requests
 * (at send time, before Nagle or cwnd can hold them), a local backend's sends
 * are responses when they are redirected, so arrive now. A response that
 * takes TCP is timed when it reaches the client (cgroup_skb ingress), like a
 * remote backend's. st: the socket's redirect state (or NULL); a local backend's socket
 * of a balanced connection is marked there (XM_SOCK_F_LB_BACKEND) by sockops
 * and finds the shared state under its peer's ISNs. ls: lb_msg_sock's (the
 * same storage as st: no lookup of its own).
 */
/*
 * The LB part of an sk_msg socket's storage s, for lb_probe_msg and the hold
 * (s: the one lookup sk_msg makes for both parts): NULL while the probes are
 * off, for a socket the LB did not balance, and for a local backend's socket
 * marked in s->rd (its state is found under its peer's ISNs).
 */
static __always_inline struct xm_lb_sock *lb_msg_sock(struct xm_sock *s)
{
	if (!s || xm_lb_probes_off || (s->rd.flags & XM_SOCK_F_LB_BACKEND) ||
	    s->lb.role == XM_LB_ROLE_NONE)
		return NULL;
	return &s->lb;
}

static __always_inline void lb_probe_msg(struct sk_msg_md *msg, const struct xm_sock_state *st,
					 struct xm_lb_sock *ls, int redirected)
{
	struct xm_lb_flow *f;
	__u8 *data, *end;
	int is_5xx = 0;
	__u64 key;

	if (!msg->sk || msg->size == 0 || xm_lb_probes_off)
		return;
	/*
	 * ls first: lb_msg_sock() gives none for a socket marked in st. (Tested
	 * the other way round, clang merged the two tests and the 6.1 verifier
	 * lost that ls had been checked.)
	 */
	if (ls) {
		if (ls->role == XM_LB_ROLE_CLIENT) {
			f = lb_state_of(ls);
			if (f)
				lb_probe_sent(f);
			return;
		}
		/* a backend's socket tied by an older agent (xm_lb_sock, role server) */
		if (ls->role != XM_LB_ROLE_SERVER || !redirected)
			return;
		f = lb_state_of(ls);
	} else if (st && (st->flags & XM_SOCK_F_LB_BACKEND) && redirected) {
		key = lb_flow_key(st->peer.local_isn, st->peer.remote_isn);
		f = bpf_map_lookup_elem(&xm_lb_flows, &key);
	} else {
		return;
	}
	if (!f || f->phase != XM_LB_REQUEST)
		return;
	data = msg->data;
	end = msg->data_end;
	if ((void *)(data + 10) <= (void *)end)
		is_5xx = lb_is_http_5xx(data);
	lb_probe_received(f, is_5xx);
}

#endif
