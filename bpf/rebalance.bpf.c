// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connection-level rebalancing: a TCP socket iterator the agent runs once per
 * weighting tick in each network namespace of its cgroup (include/xmesh/
 * rebalance.h, user/agent/rebalance.c, docs/weighting.md).
 *
 * For every ESTABLISHED client socket that the LB balanced (xm_lb_sock, role
 * client) it counts the connection for its backend, notes the age of the
 * oldest request in flight to the backend (a lower bound on its latency that
 * the weighting loop can use before any slow request completed), decides
 * whether the connection is idle, and, while the backend's quota lasts,
 * destroys idle ones.
 *
 * Idle means all of: no request outstanding per the probes (phase is not
 * REQUEST), nothing the application has not read (rcv_nxt == copied_seq),
 * nothing sent and not yet acknowledged (write_seq == snd_una), and no
 * segment either way for idle_ns (tcp_mstamp, the socket's clock, which TCP
 * refreshes on every segment received and every transmit, is that old; it
 * counts microseconds of the same monotonic clock as bpf_ktime_get_ns(), so
 * one pass decides, without kernel HZ). The iterator holds the
 * socket lock while the program runs, so a send() cannot be half-way through
 * this socket meanwhile; one that comes after sees the socket closed.
 *
 * Which end: the client's socket, the one in the agent's cgroup (a remote
 * backend's socket is out of reach anyway). bpf_sock_destroy() aborts it:
 * a reset goes to the backend, the client socket is closed with
 * ECONNABORTED pending. Pools that check a pooled connection before reuse
 * (urllib3, curl, Go's net/http read loop) see it as dead - as after a
 * server's keep-alive close - and open a new connection, which connect()
 * balances with the current weights.
 *
 * Three programs from one body (the agent loads one): xm_rebal_destroy calls
 * bpf_sock_destroy() (Linux >= 6.5, a kfunc allowed only in iterators) and
 * names each socket it closed in the iterator's output (xm_rebal_pick, for
 * the agent's log of retirements);
 * xm_rebal_pick, for kernels without it, chooses by the same rules and
 * writes each chosen socket (xm_rebal_pick: 4-tuple and cookie) to the
 * iterator's output, and the agent closes it with SOCK_DESTROY over
 * sock_diag netlink; the pick marks the socket, and until the close its
 * payload is held (xmesh/lb.h, mark-and-hold: a request written between
 * the pick and the close never reaches the backend); xm_rebal_count only
 * counts.
 *
 * xm_rebal_read (BTF tracepoint tcp_rcv_space_adjust, which TCP's recvmsg hits
 * after each copy to the application, socket locked, copied_seq already
 * advanced) finds the moment a pass should run: a
 * busy pool's connection to a far slower backend is idle only between the
 * client's read of a response and its next request (a LIFO pool hands that
 * request to the connection that just came back, within milliseconds), far
 * too short for a poll to meet. When a read leaves such a connection idle
 * (its backend has on_read set and quota left), it tells the agent over a
 * ring buffer, and the agent runs a retire pass in that namespace at once;
 * the pass decides again under the socket lock, so a request written in
 * between keeps its connection. The hook sees every TCP read of the host:
 * the agent attaches it while a backend is urgent (detached after 20 ticks
 * without one), and while none asks it costs one load (xm_rebal_on_read_any). A tracepoint, not fexit on
 * tcp_recvmsg: kernels built without BPF trampolines refuse fexit (EPERM).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <xmesh/lb.h>
#include <xmesh/rebalance.h>
#include "lib/lb_probe.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TCP_ESTABLISHED_STATE 1
#define AF_INET_FAMILY 2

enum rebal_action { REBAL_COUNT, REBAL_DESTROY, REBAL_PICK };

extern int bpf_sock_destroy(struct sock_common *sk) __ksym __weak;

/* Per backend id; the agent writes idle_ns/quota and reads the counts (mmap). */
struct xm_rebal_be xm_rebal_be[XM_LB_MAX_BACKENDS];
/* Some backend has on_read set: xm_rebal_read looks further (agent-written). */
volatile __u32 xm_rebal_on_read_any;

/* xm_rebal_read_event, to the agent; a few hundred per second at most in practice. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} xm_rebal_events SEC(".maps");

/*
 * Idle by the probes and the socket: no request outstanding, nothing the
 * application has not read, nothing sent and not yet acknowledged.
 */
static __always_inline bool rebal_conn_idle(const struct tcp_sock *tp, const struct xm_lb_flow *f)
{
	return !(f && f->phase == XM_LB_REQUEST) && tp->rcv_nxt == tp->copied_seq &&
	       tp->write_seq == tp->snd_una;
}

/* The counters of the backend a balanced client socket goes to; NULL: not one. */
static __always_inline struct xm_rebal_be *rebal_client_be(void *sk, struct xm_lb_sock **lsp)
{
	struct xm_lb_sock *ls = lb_sock_of(sk);
	__u32 be;

	if (!ls || ls->role != XM_LB_ROLE_CLIENT)
		return NULL;
	be = ls->backend;
	if (be >= XM_LB_MAX_BACKENDS)
		return NULL;
	*lsp = ls;
	return &xm_rebal_be[be];
}

/*
 * Name the socket: for the agent's SOCK_DESTROY, or its log of what was
 * destroyed (before the destroy: a closed socket has given up its port).
 */
static __always_inline void rebal_name(struct xm_rebal_pick *p, struct sock_common *skc,
				       struct tcp_sock *tp, __u32 be)
{
	p->cookie = bpf_get_socket_cookie(tp);
	p->backend = be;
	p->family = skc->skc_family;
	p->sport = skc->skc_num;
	p->dport = skc->skc_dport;
	if (p->family == AF_INET_FAMILY) {
		p->saddr[0] = skc->skc_rcv_saddr;
		p->daddr[0] = skc->skc_daddr;
	} else {
		BPF_CORE_READ_INTO(&p->saddr, skc, skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&p->daddr, skc, skc_v6_daddr.in6_u.u6_addr32);
	}
}

/*
 * Marked for retirement not long ago, and held since (nothing sent after the
 * mark: the request the client wrote is still in the write queue): retired
 * although not idle, its quota taken when it was marked (rebalance.h,
 * XM_REBAL_ON_READ_HOLD). Within XM_LB_HOLD_CLOSE_NS, so that the close
 * (the agent's, over sock_diag) falls inside the hold.
 */
static __always_inline bool rebal_held(const struct tcp_sock *tp, const struct xm_lb_sock *ls,
				       __u64 now)
{
	return xm_lb_mark_fresh(ls->retire_mark, now, XM_LB_HOLD_CLOSE_NS) &&
	       tp->snd_nxt == tp->snd_una && tp->rcv_nxt == tp->copied_seq;
}

/* One unit of the backend's quota, taken before acting (rebalance.h). */
static __always_inline bool rebal_take_quota(struct xm_rebal_be *rb, bool mark)
{
	return xm_rebal_quota_take((__u64 *)&rb->quota, mark);
}

static __always_inline int rebal_sock(struct bpf_iter__tcp *ctx, enum rebal_action action)
{
	struct sock_common *skc = ctx->sk_common;
	struct xm_rebal_pick p = {};
	struct xm_rebal_be *rb;
	struct xm_lb_sock *ls;
	struct xm_lb_flow *f;
	struct tcp_sock *tp;
	__u64 now, quiet_ns;
	bool held;
	__u32 be;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp || tp->inet_conn.icsk_inet.sk.__sk_common.skc_state != TCP_ESTABLISHED_STATE)
		return 0;
	rb = rebal_client_be(tp, &ls);
	if (!rb)
		return 0;
	be = ls->backend;
	rb->held++;

	now = bpf_ktime_get_ns();
	f = lb_state_of(ls);
	if (f && f->phase == XM_LB_REQUEST) {
		if (f->t_start && now > f->t_start && now - f->t_start > rb->oldest_req_ns)
			rb->oldest_req_ns = now - f->t_start;
		return 0;
	}
	held = rebal_held(tp, ls, now);
	quiet_ns = tp->tcp_mstamp * 1000;
	quiet_ns = now > quiet_ns ? now - quiet_ns : 0;
	if (!held && (quiet_ns < rb->idle_ns || !rebal_conn_idle(tp, f)))
		return 0;
	if (action == REBAL_COUNT || (!held && !rebal_take_quota(rb, false))) {
		rb->idle++;
		return 0;
	}
	rebal_name(&p, skc, tp, be);
	if (action == REBAL_PICK)
		p.mark = held ? ls->retire_mark : xm_lb_mark_clock(now);
	if (action == REBAL_DESTROY ? bpf_sock_destroy(skc) :
				      bpf_seq_write(ctx->meta->seq, &p, sizeof(p))) {
		rb->failed++;
		rb->idle++;
		return 0;
	}
	/* picked: its payload is held until the agent's close (lb.h, mark-and-hold) */
	if (action == REBAL_PICK)
		ls->retire_mark = p.mark;
	/* closed: its name for the log (a full output buffer only loses the line) */
	if (action == REBAL_DESTROY)
		bpf_seq_write(ctx->meta->seq, &p, sizeof(p));
	rb->retired++;
	return 0;
}

SEC("iter/tcp")
int xm_rebal_destroy(struct bpf_iter__tcp *ctx)
{
	return rebal_sock(ctx, REBAL_DESTROY);
}

SEC("iter/tcp")
int xm_rebal_pick(struct bpf_iter__tcp *ctx)
{
	return rebal_sock(ctx, REBAL_PICK);
}

SEC("iter/tcp")
int xm_rebal_count(struct bpf_iter__tcp *ctx)
{
	return rebal_sock(ctx, REBAL_COUNT);
}

SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(xm_rebal_read, struct sock *sk)
{
	struct xm_rebal_read_event *e;
	struct xm_rebal_be *rb;
	struct xm_lb_sock *ls;
	struct tcp_sock *tp;

	if (!xm_rebal_on_read_any)
		return 0;
	rb = rebal_client_be(sk, &ls);
	if (!rb || !rb->on_read || !rb->quota)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp || sk->__sk_common.skc_state != TCP_ESTABLISHED_STATE ||
	    !rebal_conn_idle(tp, lb_state_of(ls)))
		return 0;
	/* hold the next request for the pass (socket locked: recvmsg's) */
	if (rb->on_read == XM_REBAL_ON_READ_HOLD) {
		if (xm_lb_mark_fresh(ls->retire_mark, bpf_ktime_get_ns(), XM_LB_HOLD_CLOSE_NS) ||
		    !rebal_take_quota(rb, true))
			return 0;
		ls->retire_mark = xm_lb_mark_clock(bpf_ktime_get_ns());
	}
	e = bpf_ringbuf_reserve(&xm_rebal_events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->cookie = bpf_get_socket_cookie(sk);
	e->netns_ino = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	e->backend = ls->backend;
	e->read_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
	return 0;
}
