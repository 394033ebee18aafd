/* SPDX-License-Identifier: MIT */
/*
 * When the weighting loop weighs a service (docs/weighting.md, "Cadence").
 *
 * Weighing folds the probe deltas since the service was last weighed into
 * its filters and recomputes its weights and table. At a few requests per
 * backend and tick that recomputes estimates from almost no new information,
 * and at 1000 services it is most of the loop's cost. So a service is
 * weighed when its backends have something new to say, and otherwise its
 * deltas and its elapsed time accumulate (the probes' counters are
 * cumulative: the next weighing sees every request since the last one, over
 * the time since the last one, so the filters and rate control see the same
 * totals and rates, only later):
 *   - at least XM_WEIGH_NEW_PER_BACKEND new requests per backend on average
 *     and its busy wait since the last weighing (xm_weigh_busy_next(): one
 *     tick, doubled by each weighing that left its table as it was, up to
 *     XM_WEIGH_BUSY_MAX_S: a busy service whose weights hold still is
 *     weighed every 2 s, its samples banked meanwhile);
 *   - at once when the service shows what its weights react to in the same
 *     tick: new failures that are news (with the service's due_fail_alpha
 *     > 0: one backend's failures since the last weighing more than the
 *     service's recent failure rate explains, xm_weigh_failures_news(); a
 *     burst on one backend is, one 5xx among a backend's ten requests at a
 *     steady 1 % is not and waits for its samples weighing; with 0 every
 *     new failure), new completions far slower than its recent ones,
 *     more requests in flight than its rates and latencies explain (slower:
 *     over the time since the last weighing, or over the last tick alone, so
 *     that a long wait does not dilute a slow tick), or (per
 *     backend, only while requests are in flight) a request in flight for
 *     longer than its backend's latency estimate (l3x's age bound); the
 *     caller also weighs at once a service that rebalances connections (its
 *     urgent retirements are planned per tick);
 *   - and at least every XM_WEIGH_MAX_WAIT_S, or, for a quiet service whose
 *     weighings have stopped moving its weights, at least every max_wait of
 *     its reference: doubled by each such quiet weighing up to
 *     XM_WEIGH_QUIET_MAX_S, back to XM_WEIGH_MAX_WAIT_S by anything else
 *     (xm_weigh_next_wait()). With no samples a weighing only moves filters
 *     along in time (rates decaying, estimates drifting to the prior after
 *     idle_after), and each filter takes its whole elapsed time in one step,
 *     so a longer wait reaches the same state, later; a wait longer than
 *     XM_WEIGH_MAX_WAIT_S never runs past a backend's idle_after, where its
 *     estimate starts to drift.
 * The service-wide checks read only the sums of its backends' probe counters
 * (the loop's copy of the probe pages, a service's ids lie together) and a
 * reference kept per service: no pass over per-backend state, which at
 * 10,000 backends costs more in cache misses than the weighing it saves.
 * The one exception: when the sums show new failures, each backend's
 * counters against its baseline of the last weighing (the caller's), which
 * costs less than the weighing a chance failure would otherwise bring.
 */
#ifndef XMESH_WEIGHDUE_H
#define XMESH_WEIGHDUE_H

#include <stdbool.h>
#include <xmesh/lb.h>

#include "weight.h"

/* A service is weighed at least this often (s); also the bound of quiet banking before. */
#define XM_WEIGH_MAX_WAIT_S 2.0
/* The longest a quiet service whose weights stopped moving waits (s). */
#define XM_WEIGH_QUIET_MAX_S 16.0
/* A weighing that moved no backend's share by more than this (0..1) left the weights settled. */
#define XM_WEIGH_SETTLED_SHARE 1e-3
/* The longest a busy service whose weighings leave its table as it was waits for samples (s). */
#define XM_WEIGH_BUSY_MAX_S 2.0
/* New requests per backend (on average over the service) that make a weighing due. */
#define XM_WEIGH_NEW_PER_BACKEND 2
/* New completions whose mean latency exceeds this many times the service's recent mean. */
#define XM_WEIGH_SLOWER_FACTOR 2

/*
 * The failure rate a service with none recently is judged by: its first
 * failures are news (one in 10 or 20 requests at 1 %, by the Chernoff bound).
 */
#define XM_WEIGH_FAIL_P_MIN 1e-4

/* Why a service is weighed in this tick; XM_WEIGH_WAIT: it is not. */
enum xm_weigh_why {
	XM_WEIGH_WAIT = 0,
	XM_WEIGH_FIRST,     /* never weighed, or its backend set was re-read */
	XM_WEIGH_MAX_WAIT,  /* its max wait (XM_WEIGH_MAX_WAIT_S or longer) since the last weighing */
	XM_WEIGH_SAMPLES,   /* enough new requests */
	XM_WEIGH_FAILURE,   /* a backend failed requests or connections: news (see above) */
	XM_WEIGH_SLOWER,    /* the new completions are far slower than the recent ones */
	XM_WEIGH_STALL,     /* in-flight rose beyond what the rates and latencies explain */
	XM_WEIGH_AGE,       /* a backend's oldest request in flight is older than its estimate */
	XM_WEIGH_REBALANCE, /* the service rebalances connections: planned every tick */
	XM_WEIGH__COUNT,
};

const char *xm_weigh_why_str(enum xm_weigh_why why);

/* What a service's news are measured against: kept from its last weighing. */
struct xm_weigh_ref {
	struct xm_lb_probe then; /* the sum of its backends' counters then */
	double lat_ns;           /* recent completions' latency, decayed per weighing (ns) */
	double done;             /* and their count, decayed the same way */
	double little;           /* requests in flight its backends' rates and latencies explain */
	double max_wait;         /* s it may wait for news; 0: XM_WEIGH_MAX_WAIT_S */
	double busy_wait;        /* s it waits for samples; 0: one tick (xm_weigh_busy_next()) */
	struct xm_lb_probe tick; /* the sum of its backends' counters at the last tick looked at */
	/*
	 * Recent failures and requests ended, decayed per weighing. Last: read
	 * only when the sums show new failures, so the fields every tick reads
	 * stay in as many cache lines as before.
	 */
	double failed, ended;
};

/* sum += p, counter by counter (inline: the loop sums every visited service's backends). */
static inline void xm_lb_probe_add(struct xm_lb_probe *sum, const struct xm_lb_probe *p)
{
	__u64 *d = (__u64 *)sum;
	const __u64 *s = (const __u64 *)p;

	_Static_assert(sizeof(*p) % 8 == 0, "probe counters are u64s");
	for (size_t k = 0; k < sizeof(*p) / 8; k++)
		d[k] += s[k];
}

/*
 * Whether a service of n backends whose counters now sum to now, waited
 * seconds after its last weighing (this tick included), is due, by its
 * reference ref (NULL: never weighed). *quiet: not a counter moved since and
 * nothing in flight. fail_noise: the caller judged its new failures backend
 * by backend and none is news (xm_weigh_failures_news()): they wait for the
 * samples weighing like any sample, instead of weighing it at once.
 */
enum xm_weigh_why xm_weigh_service_due(const struct xm_weigh_ref *ref,
				       const struct xm_lb_probe *now, unsigned int n,
				       double waited, bool *quiet, bool fail_noise);

/* The service's failures since its last weighing (counters summing to now): any? */
bool xm_weigh_new_failures(const struct xm_weigh_ref *ref, const struct xm_lb_probe *now);

/*
 * A backend of the service of ref, whose counters are now and were then at
 * the service's last weighing, failed more requests since than the service's
 * recent failure rate (ref->failed / ref->ended, at least
 * XM_WEIGH_FAIL_P_MIN) gives with probability alpha (xm_failures_significant()):
 * a burst of its own, to weigh at once. Judged per backend, so that a burst
 * on one backend of ten is not diluted in the service's sums.
 */
bool xm_weigh_failures_news(const struct xm_weigh_ref *ref, const struct xm_lb_probe *now,
			    const struct xm_lb_probe *then, double alpha);

/* After xm_weigh_service_due() (ref not NULL): now is what the next tick's "slower" compares with. */
void xm_weigh_tick_seen(struct xm_weigh_ref *ref, const struct xm_lb_probe *now);

/*
 * After a weighing for why that spanned waited s, found the service quiet or
 * not, and rewrote its table or not: ref->busy_wait, how long it waits for
 * samples before the next. A "samples" or "max-wait" weighing that left the
 * table as it was doubles the wait (the first from waited, one tick), up to
 * XM_WEIGH_BUSY_MAX_S; a rewrite, a quiet weighing, a first one or
 * rebalancing reset it to one tick; the other at-once reasons leave it.
 */
void xm_weigh_busy_next(struct xm_weigh_ref *ref, enum xm_weigh_why why, double waited,
			bool quiet, bool rewritten);

/* waited seconds since a service's last weighing make it due whatever its news (ref: NULL ok). */
bool xm_weigh_waited_enough(const struct xm_weigh_ref *ref, double waited);

/*
 * After a weighing that found the service quiet (nothing moved since the one
 * before, nothing in flight) or not, moved its backends' shares by at most
 * moved (0..1), and whose first backend to reach idle_after does so in
 * headroom s (< 0: none will): ref->max_wait for the wait to its next.
 */
void xm_weigh_next_wait(struct xm_weigh_ref *ref, bool quiet, double moved, double headroom);

/*
 * xm_weigh_next_wait() after weighing s: before holds its backends' places
 * (b->place) from before a quiet weighing; NULL: the weighing was not quiet.
 */
void xm_weigh_settle(struct xm_weigh_ref *ref, const struct xm_wservice *s, const double *before);

/* l3x's age bound binds for backend b of s, whose oldest request in flight is oldest s old. */
bool xm_weigh_backend_aged(const struct xm_wservice *s, const struct xm_wbackend *b,
			   double oldest);

/* After weighing s with its counters summing to now: the reference for its next news. */
void xm_weigh_ref_update(struct xm_weigh_ref *ref, const struct xm_lb_probe *now,
			 const struct xm_wservice *s);

#endif
