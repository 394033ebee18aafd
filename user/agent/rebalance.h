/* SPDX-License-Identifier: MIT */
/*
 * Connection-level rebalancing, the kernel half (bpf/rebalance.bpf.c): count
 * the client connections held per backend and retire idle ones to backends
 * the weighting loop wants fewer connections on. The weighting loop owns the
 * policy (user/lib/rebal.h) and calls this once per tick.
 */
#ifndef XMESH_AGENT_REBALANCE_H
#define XMESH_AGENT_REBALANCE_H

#include <stdbool.h>
#include <xmesh/rebalance.h>

struct xm_agent;
struct xm_rebalancer;

/*
 * Load the iterator (maps shared with the LB object through the pin root).
 * NULL when this kernel cannot run it: a warning says why, nothing is counted.
 */
struct xm_rebalancer *xm_rebalance_open(struct xm_agent *a);
void xm_rebalance_close(struct xm_rebalancer *r);
/*
 * The test knobs XMESH_TEST_DESTROY_DELAY_MS and XMESH_TEST_WALK_DELAY_MS
 * (rebalance.c): their ms, 0 when unset; -EINVAL with an error line when one
 * is not 0..1000 (the agent refuses to start).
 */
int xm_rebalance_test_env(long *destroy_ms, long *walk_ms);
/* false: the kernel lacks bpf_sock_destroy (Linux < 6.5); connections are only counted. */
bool xm_rebalance_can_retire(const struct xm_rebalancer *r);
/*
 * One pass over the TCP sockets of every network namespace that has a
 * process in the agent's cgroup: fills the counts, retires up to each
 * backend's quota, then clears the quotas. Returns the number of namespaces
 * walked, or -errno; -EAGAIN: skipped, the walks have had their share of the
 * time (rebalance.c, XM_REBAL_WALK_SHARE_INV): the counts and quotas stay
 * those of the last pass, and no plan should be made on them.
 */
int xm_rebalance_pass(struct xm_rebalancer *r);
/* Whether this tick's xm_rebalance_pass() ran (the counts are this tick's). */
bool xm_rebalance_fresh(const struct xm_rebalancer *r);
/*
 * A pass that only retires, between two full passes: up to the quotas left,
 * counting what it retired into the next full pass's `retired`; the counts
 * stay those of the last full pass. Returns the number of backends
 * that still have quota at the first idle moment (idle_ns 0; over sock_diag,
 * the least silence it allows there).
 */
unsigned int xm_rebalance_retire_now(struct xm_rebalancer *r);
/*
 * How long to wait before the next retire-now pass: urgent_ms, or longer
 * while the walks have had their share of the time (rebalance.c,
 * XM_REBAL_WALK_SHARE_INV), so that they never take the CPU from the
 * clients and servers on a slow machine or with many namespaces.
 */
long xm_rebalance_poll_wait_ms(struct xm_rebalancer *r, long urgent_ms);
/*
 * Backend id as the last full pass left it: the counts of that pass, and the
 * period it ended (struct xm_rebal_tally, include/xmesh/rebalance.h).
 */
struct xm_rebal_tally xm_rebalance_tally(const struct xm_rebalancer *r, __u32 id);
/* Ask for the cache line xm_rebalance_tally() will read for backend id. */
void xm_rebalance_prefetch(const struct xm_rebalancer *r, __u32 id);
/*
 * Let the next pass retire up to quota idle connections (idle for idle_ns) of
 * backend id; on_read: also run a pass in a namespace as soon as a read there
 * leaves one of its connections idle (read events; idle_ns 0 is meant), and
 * with XM_REBAL_ON_READ_HOLD hold the connection's next request for it.
 */
void xm_rebalance_allow(struct xm_rebalancer *r, __u32 id, __u32 quota, __u64 idle_ns,
			enum xm_rebal_on_read on_read);

/* Retirements at the first idle moment, by what found the moment (logged at close). */
struct xm_rebal_retire_stats {
	unsigned long long read_events;  /* reads that left an on_read backend's connection idle */
	unsigned long long read_passes;  /* passes they started (incl. the passes after) */
	unsigned long long read_limited; /* passes not run: over XM_REBAL_READ_PASSES_PER_S */
	unsigned long long read_retired; /* connections those passes retired */
	unsigned long long read_lag_ns, read_lag_max_ns, read_lag_n; /* read -> its first pass */
	unsigned long long poll_passes;  /* urgent_ms passes (xm_rebalance_retire_now) */
	unsigned long long poll_retired; /* connections they retired */
	unsigned long long poll_stretched; /* waits made longer than urgent_ms (walk budget) */
	unsigned long long tick_passes, tick_ns, tick_netns; /* the ticks' full passes */
	unsigned long long tick_skipped; /* ticks' passes skipped (walk budget) */
	unsigned long long poll_netns;   /* namespaces the urgent_ms passes walked */
	unsigned long long walk_ns, walk_span_ns; /* walks' time; from the first to the budget's end */
};

#endif
