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
 *     (a busy service: every tick);
 *   - at once when any backend shows what the weights react to in the same
 *     tick today: a new failure, new completions far slower than its
 *     latency estimate, in-flight requests Little's law cannot explain, or
 *     a request in flight for longer than its latency estimate (l3x's age
 *     bound); the caller also weighs at once a service that rebalances
 *     connections (its urgent retirements are planned per tick);
 *   - and at least every XM_WEIGH_MAX_WAIT_S.
 * The checks read only the counters the loop already copied.
 */
#ifndef XMESH_WEIGHDUE_H
#define XMESH_WEIGHDUE_H

#include <stdbool.h>
#include <xmesh/lb.h>

#include "weight.h"

/* A service is weighed at least this often (s); also the bound of quiet banking before. */
#define XM_WEIGH_MAX_WAIT_S 2.0
/* New requests per backend (on average over the service) that make a weighing due. */
#define XM_WEIGH_NEW_PER_BACKEND 2
/* New completions whose mean latency exceeds this many times the backend's p99 estimate. */
#define XM_WEIGH_SLOWER_FACTOR 2

/* Why a service is weighed in this tick; XM_WEIGH_WAIT: it is not. */
enum xm_weigh_why {
	XM_WEIGH_WAIT = 0,
	XM_WEIGH_FIRST,     /* never weighed, or its backend set was re-read */
	XM_WEIGH_MAX_WAIT,  /* XM_WEIGH_MAX_WAIT_S since the last weighing */
	XM_WEIGH_SAMPLES,   /* enough new requests */
	XM_WEIGH_FAILURE,   /* a backend failed a request or a connection */
	XM_WEIGH_SLOWER,    /* a backend's new completions are far slower than its estimate */
	XM_WEIGH_STALL,     /* a backend's in-flight rose beyond what its rate and latency explain */
	XM_WEIGH_AGE,       /* a backend's oldest request in flight is older than its estimate */
	XM_WEIGH_REBALANCE, /* the service rebalances connections: planned every tick */
	XM_WEIGH__COUNT,
};

const char *xm_weigh_why_str(enum xm_weigh_why why);

/*
 * What backend b of service s says since the service was last weighed: now
 * and then are its probe counters (summed over CPUs) at this tick and at that
 * weighing, oldest the age (s) of its oldest request in flight (0: unknown).
 * Adds its new requests (completed, aborted, refused, timed out) to
 * *requests. Returns the urgent reason, or XM_WEIGH_WAIT.
 */
enum xm_weigh_why xm_weigh_backend_news(const struct xm_wservice *s, const struct xm_wbackend *b,
					const struct xm_lb_probe *now,
					const struct xm_lb_probe *then, double oldest,
					__u64 *requests);

/*
 * Whether a service of n backends, waited seconds after its last weighing
 * (this tick included) and with requests new requests since, is due by
 * count or by time.
 */
enum xm_weigh_why xm_weigh_service_due(double waited, __u64 requests, unsigned int n);

#endif
