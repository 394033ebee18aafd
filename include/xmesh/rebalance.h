/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection-level rebalancing (docs/weighting.md, "Clients that keep their connections"):
 * what bpf/rebalance.bpf.c and the agent (user/agent/rebalance.c) share, and
 * what the agent publishes for xmeshctl and metrics.
 *
 * The agent runs the TCP socket iterator once per weighting tick in every
 * network namespace that has a process in its cgroup. Per backend it counts
 * the client connections held (ESTABLISHED sockets balanced to it) and how
 * many of them are idle, and retires up to `quota` idle ones with
 * bpf_sock_destroy() (Linux >= 6.5), or, on older kernels, names them
 * (xm_rebal_pick) for the agent to close with SOCK_DESTROY over sock_diag
 * netlink (CONFIG_INET_DIAG_DESTROY). The agent sets `quota` and `idle_ns`
 * and zeroes the counts before each pass, in the object's .bss.
 *
 * Backends far slower than the rest (rebal.h fast_factor) lose connections
 * at their first idle moment. In a busy pool that moment follows the client's
 * read of a response: for a backend with `on_read` set (and quota left) the
 * object's program on the tracepoint tcp_rcv_space_adjust (TCP's recvmsg
 * hits it after each copy to the application) reports each read that leaves one of
 * its connections idle (xm_rebal_read_event, ring buffer), and the agent
 * walks that socket's network namespace at once (docs/weighting.md).
 *
 *   xm_lb_rstate  ARRAY  backend id -> xm_lb_rstate   published per tick (pinned, agent-made)
 */
#ifndef XMESH_REBALANCE_H
#define XMESH_REBALANCE_H

#include "lb.h"

/*
 * Per backend id, in the iterator object's .bss (index = backend id).
 *
 * `quota` is spent by two writers at once: the iterator (the agent's thread)
 * and the read hook (any CPU). Each unit is taken, before the connection is
 * acted on, by one compare-and-exchange of the 8-byte word `quota` shares
 * with `marked` (rebal_take_quota): it never goes below zero, and a mark is
 * counted in the same exchange as its unit. The agent ends a tick's period by
 * exchanging that word with zero (xm_rebalance_pass), so every unit of a
 * period's quota is counted once: retired by a pass, or marked by a read
 * (closed by a later pass without another unit).
 */
struct xm_rebal_be {
	__u64 idle_ns;  /* in: a socket counts as idle after this long without a segment */
	__u32 quota;    /* in: connections passes and reads may still retire; taken */
	__u32 marked;   /* out: read-hook marks (each took a unit of quota) */
	__u32 held;     /* out: established client connections */
	__u32 idle;     /* out: of which idle (and not retired) */
	__u32 retired;  /* out: closed by this pass (incl. those held since a mark) */
	__u32 failed;   /* out: bpf_sock_destroy() refused (its unit stays spent) */
	__u32 on_read;  /* in: XM_REBAL_ON_READ_*: report (and hold) its idle moments after a read */
	__u64 oldest_req_ns; /* out: age of the oldest request in flight on these connections */
};

/*
 * xm_rebal_be.on_read. HOLD: the read also marks the connection for
 * retirement (lb.h, mark-and-hold; one of the quota taken at once), so that
 * the client's next request is held until the pass closes the connection:
 * a busy pool's next request comes within milliseconds of its read, often
 * before the pass. The pass then retires the connection although that
 * request is queued, as long as nothing was sent since the mark (snd_nxt ==
 * snd_una): the request fails at the client and is sent again on a new
 * connection.
 */
enum xm_rebal_on_read {
	XM_REBAL_ON_READ_OFF = 0,
	XM_REBAL_ON_READ_REPORT,
	XM_REBAL_ON_READ_HOLD,
};

/*
 * A connection chosen for retirement, written to the iterator's output by
 * the "choose" variant (kernels without bpf_sock_destroy): the agent closes
 * it with SOCK_DESTROY over sock_diag netlink, from the same network
 * namespace. Addresses and dport in network order, sport in host order (as
 * the socket keeps them); IPv4 in the first word.
 */
struct xm_rebal_pick {
	__u64 cookie;    /* socket cookie: the kernel refuses a reused 4-tuple */
	__u32 backend;   /* backend id, for the counters */
	__u16 family;    /* AF_INET or AF_INET6 */
	__u16 sport;     /* local port */
	__be16 dport;    /* remote port */
	__u16 pad;
	__u32 mark;      /* the pick's retire_mark (lb.h: mark-and-hold); 0: not marked */
	__be32 saddr[4]; /* local address */
	__be32 daddr[4]; /* remote address */
};

/* A read left a connection of an on_read backend idle (ring buffer xm_rebal_events). */
struct xm_rebal_read_event {
	__u64 cookie;    /* socket cookie */
	__u32 netns_ino; /* its network namespace (the nsfs inode, as /proc/PID/ns/net) */
	__u32 backend;   /* backend id */
	__u64 read_ns;   /* bpf_ktime_get_ns() of the read (CLOCK_MONOTONIC) */
};

/*
 * Agent side: one backend as a tick's pass left it (user/agent/rebalance.c):
 * the pass's counts and the period it ended, from the quota given the tick
 * before.
 */
struct xm_rebal_tally {
	__u32 held;    /* established client connections */
	__u32 idle;    /* of which idle (and not retired) */
	__u32 retired; /* connections closed in the period, by any pass */
	__u32 spent;   /* units of the period's quota taken: by passes, and by read marks */
	__u32 marked;  /* of which read marks (their closes need no unit of their own) */
	__u64 oldest_req_ns; /* age of the oldest request in flight at the pass */
};

/* What the agent publishes per backend, each tick it ran a pass. */
struct xm_lb_rstate {
	__u64 updated_ns;       /* CLOCK_MONOTONIC of the pass that last changed it; 0: never */
	__u64 retired_total;    /* connections retired since the backend id was handed out */
	__u32 held;             /* client connections held at the last pass */
	__u32 idle;             /* of which idle */
	__u32 retired_milli_s;  /* retired per second (EWMA over ~2 s) x 1000 */
	__u32 flags;            /* XM_RSTATE_F_* */
};

#define XM_RSTATE_F_ENABLED (1U << 0) /* the service has rebalancing on */
#define XM_RSTATE_F_NO_DESTROY (1U << 1) /* kernel lacks bpf_sock_destroy: counts only */

_Static_assert(sizeof(struct xm_rebal_be) == 48, "xm_rebal_be layout");
/* rebal_take_quota (bpf/rebalance.bpf.c) exchanges quota with marked as one aligned 8-byte word */
_Static_assert(__builtin_offsetof(struct xm_rebal_be, quota) == 8, "xm_rebal_be.quota offset");
_Static_assert(__builtin_offsetof(struct xm_rebal_be, marked) == 12, "xm_rebal_be.marked offset");
_Static_assert(sizeof(struct xm_lb_rstate) == 32, "xm_lb_rstate layout");
_Static_assert(sizeof(struct xm_rebal_pick) == 56, "xm_rebal_pick layout");
_Static_assert(sizeof(struct xm_rebal_read_event) == 24, "xm_rebal_read_event layout");

/* The word quota and marked share, as xm_rebal_quota_take and the agent exchange it. */
union xm_rebal_quota_word {
	__u64 word;
	struct {
		__u32 quota, marked;
	};
};

/*
 * Take one unit of a backend's quota before acting on a connection (the
 * iterator and the read hook on other CPUs take from the same quota): one
 * compare-and-exchange of the 8-byte word quota shares with marked (BPF has
 * no 32-bit one before v3 CPUs), so the quota never goes below zero and a
 * mark is counted with its unit. A check, the act, then a plain decrement
 * let a unit the hook took in between wrap the quota to 2^32 - 1 for the
 * rest of the tick (a pass retired 8 connections of a quota of 2). A few
 * tries: an exchange lost to another taker is not an empty quota.
 * Returns 1 when a unit was taken.
 */
static inline int xm_rebal_quota_take(__u64 *word, int mark)
{
	union xm_rebal_quota_word was, want;

	for (int i = 0; i < 4; i++) {
		was.word = *(volatile __u64 *)word;
		if (!was.quota)
			return 0;
		want = was;
		want.quota--;
		want.marked += !!mark;
		if (__sync_val_compare_and_swap(word, was.word, want.word) == was.word)
			return 1;
	}
	return 0;
}

#endif /* XMESH_REBALANCE_H */
