// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connection-level rebalancing: a TCP socket iterator the agent runs once per
 * weighting tick in each network namespace of its cgroup (include/xmesh/
 * rebalance.h, user/agent/rebalance.c, docs/weighting.md).
 *
 * For every ESTABLISHED client socket that the LB balanced (xm_lb_sock, role
 * client) it counts the connection for its backend, decides whether it is
 * idle, and, while the backend's quota lasts, destroys idle ones.
 *
 * Idle means all of: no request outstanding per the probes (phase is not
 * REQUEST), nothing the application has not read (rcv_nxt == copied_seq),
 * nothing sent and not yet acknowledged (write_seq == snd_una), and no
 * segment either way for idle_ns (segs_in + segs_out unchanged since the
 * time kept in xm_rebal_sk; a kernel-HZ-free clock). The iterator holds the
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
 * Two programs from one body: xm_rebal_destroy calls bpf_sock_destroy()
 * (Linux >= 6.5, a kfunc allowed only in iterators); xm_rebal_count only
 * counts, for kernels without it (the agent loads one of the two).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <xmesh/lb.h>
#include <xmesh/rebalance.h>
#include "lib/lb_probe.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TCP_ESTABLISHED_STATE 1

extern int bpf_sock_destroy(struct sock_common *sk) __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct xm_rebal_sk);
} xm_rebal_sk SEC(".maps");

/* Per backend id; the agent writes idle_ns/quota and reads the counts (mmap). */
struct xm_rebal_be xm_rebal_be[XM_LB_MAX_BACKENDS];

static __always_inline int rebal_sock(struct bpf_iter__tcp *ctx, int destroy)
{
	struct sock_common *skc = ctx->sk_common;
	struct xm_rebal_be *rb;
	struct xm_rebal_sk *rs;
	struct xm_lb_sock *ls;
	struct xm_lb_flow *f;
	struct tcp_sock *tp;
	__u32 segs, be;
	__u64 now;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp || tp->inet_conn.icsk_inet.sk.__sk_common.skc_state != TCP_ESTABLISHED_STATE)
		return 0;
	ls = bpf_sk_storage_get(&xm_lb_sock, tp, 0, 0);
	if (!ls || ls->role != XM_LB_ROLE_CLIENT)
		return 0;
	be = ls->backend;
	if (be >= XM_LB_MAX_BACKENDS)
		return 0;
	rb = &xm_rebal_be[be];
	rb->held++;

	now = bpf_ktime_get_ns();
	segs = tp->segs_in + tp->segs_out;
	rs = bpf_sk_storage_get(&xm_rebal_sk, tp, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!rs)
		return 0;
	if (!rs->since_ns || rs->segs != segs) {
		rs->segs = segs;
		rs->since_ns = now;
		return 0;
	}
	if (now - rs->since_ns < rb->idle_ns)
		return 0;
	f = lb_state_of(ls);
	if (f && f->phase == XM_LB_REQUEST)
		return 0;
	if (tp->rcv_nxt != tp->copied_seq || tp->write_seq != tp->snd_una)
		return 0;
	if (!destroy || !rb->quota) {
		rb->idle++;
		return 0;
	}
	if (bpf_sock_destroy(skc)) {
		rb->failed++;
		rb->idle++;
		return 0;
	}
	rb->quota--;
	rb->retired++;
	return 0;
}

SEC("iter/tcp")
int xm_rebal_destroy(struct bpf_iter__tcp *ctx)
{
	return rebal_sock(ctx, 1);
}

SEC("iter/tcp")
int xm_rebal_count(struct bpf_iter__tcp *ctx)
{
	return rebal_sock(ctx, 0);
}
