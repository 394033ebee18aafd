/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection-level rebalancing (docs/weighting.md, "Pooled connections"):
 * what bpf/rebalance.bpf.c and the agent (user/agent/rebalance.c) share, and
 * what the agent publishes for xmeshctl and metrics.
 *
 * The agent runs the TCP socket iterator once per weighting tick in every
 * network namespace that has a process in its cgroup. Per backend it counts
 * the client connections held (ESTABLISHED sockets balanced to it) and how
 * many of them are idle, and retires up to `quota` idle ones with
 * bpf_sock_destroy() (Linux >= 6.5). The agent sets `quota` and `idle_ns`
 * and zeroes the counts before each pass, in the object's .bss.
 *
 *   xm_lb_rstate  ARRAY  backend id -> xm_lb_rstate   published per tick (pinned, agent-made)
 */
#ifndef XMESH_REBALANCE_H
#define XMESH_REBALANCE_H

#include "lb.h"

/* Per backend, in the iterator object's .bss (index = backend id). */
struct xm_rebal_be {
	__u64 idle_ns;  /* in: a socket counts as idle after this long without a segment */
	__u32 quota;    /* in: idle connections the pass may retire; decremented */
	__u32 held;     /* out: established client connections */
	__u32 idle;     /* out: of which idle (and not retired) */
	__u32 retired;  /* out: destroyed by this pass */
	__u32 failed;   /* out: bpf_sock_destroy() refused */
	__u32 pad;
};

/* Per client socket: when its segment counters last moved (SK_STORAGE, iterator only). */
struct xm_rebal_sk {
	__u64 since_ns;  /* bpf_ktime_get_ns() when segs last changed */
	__u32 segs;      /* segs_in + segs_out at that time */
	__u32 pad;
};

/* What the agent publishes per backend, each tick it ran a pass. */
struct xm_lb_rstate {
	__u64 updated_ns;       /* CLOCK_MONOTONIC of the pass; 0: never */
	__u64 retired_total;    /* connections retired since the backend id was handed out */
	__u32 held;             /* client connections held at the last pass */
	__u32 idle;             /* of which idle */
	__u32 retired_milli_s;  /* retired per second (EWMA over ~2 s) x 1000 */
	__u32 flags;            /* XM_RSTATE_F_* */
};

#define XM_RSTATE_F_ENABLED (1U << 0) /* the service has rebalancing on */
#define XM_RSTATE_F_NO_DESTROY (1U << 1) /* kernel lacks bpf_sock_destroy: counts only */

_Static_assert(sizeof(struct xm_rebal_be) == 32, "xm_rebal_be layout");
_Static_assert(sizeof(struct xm_lb_rstate) == 32, "xm_lb_rstate layout");

#endif /* XMESH_REBALANCE_H */
