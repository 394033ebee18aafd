// SPDX-License-Identifier: MIT
/* When the weighting loop weighs a service (weighdue.h, docs/weighting.md "Cadence"). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "lbtable.h"
#include "weighdue.h"

static const char *const why_names[XM_WEIGH__COUNT] = {
	[XM_WEIGH_WAIT] = "wait",
	[XM_WEIGH_FIRST] = "first",
	[XM_WEIGH_MAX_WAIT] = "max-wait",
	[XM_WEIGH_SAMPLES] = "samples",
	[XM_WEIGH_FAILURE] = "failure",
	[XM_WEIGH_SLOWER] = "slower",
	[XM_WEIGH_STALL] = "stall",
	[XM_WEIGH_AGE] = "age",
	[XM_WEIGH_REBALANCE] = "rebalance",
};

const char *xm_weigh_why_str(enum xm_weigh_why why)
{
	return why < XM_WEIGH__COUNT ? why_names[why] : "?";
}

/* Requests that ended between then and now: completed, aborted, refused, timed out. */
static __u64 ended(const struct xm_lb_probe *now, const struct xm_lb_probe *then)
{
	/* Counters only grow while an id is allocated: modular differences. */
	return (now->req_completed - then->req_completed) +
	       (now->req_aborted - then->req_aborted) +
	       (now->conn_refused - then->conn_refused) +
	       (now->conn_timeout - then->conn_timeout);
}

bool xm_weigh_new_failures(const struct xm_weigh_ref *ref, const struct xm_lb_probe *now)
{
	return xm_lb_failures(now) != xm_lb_failures(&ref->then);
}

bool xm_weigh_failures_news(const struct xm_weigh_ref *ref, const struct xm_lb_probe *now,
			    const struct xm_lb_probe *then, double alpha)
{
	__u64 failures = xm_lb_failures(now) - xm_lb_failures(then);
	__u64 requests = ended(now, then);
	double p = ref->ended > 0 ? ref->failed / ref->ended : 0;

	if (!failures)
		return false;
	/* A refused or timed-out connect ends no request it counted: at least its failures. */
	if (requests < failures)
		requests = failures;
	return xm_failures_significant(failures, requests, p > XM_WEIGH_FAIL_P_MIN ? p :
							    XM_WEIGH_FAIL_P_MIN, alpha);
}

/* done completions of lat_ns in all far slower than the recent mean of ref (done > 0). */
static bool slower(__u64 done, __u64 lat_ns, const struct xm_weigh_ref *ref)
{
	return done && lat_ns > XM_WEIGH_SLOWER_FACTOR * done * (ref->lat_ns / ref->done);
}

enum xm_weigh_why xm_weigh_service_due(const struct xm_weigh_ref *ref,
				       const struct xm_lb_probe *now, unsigned int n,
				       double waited, bool *quiet, bool fail_noise)
{
	const struct xm_lb_probe *then;
	__u64 done, lat_ns, requests;
	__s64 in_now;

	*quiet = false;
	if (!ref)
		return XM_WEIGH_FIRST;
	then = &ref->then;
	in_now = xm_lb_in_flight(now);
	*quiet = !in_now && !memcmp(now, then, sizeof(*now));
	/* Counters only grow while an id is allocated: modular differences. */
	done = now->req_completed - then->req_completed;
	lat_ns = now->latency_sum_ns - then->latency_sum_ns;
	requests = ended(now, then);
	/*
	 * A failure moves l3x's success filter at once (valley): as fast as
	 * before, unless the caller found every backend's failures noise at
	 * the service's rate. Weighed at once, those rewrote the table in most
	 * ticks at a steady 1 %, and the next weighing moved it back
	 * (docs/benchmarks.md, sessions 14 and 16).
	 */
	if (!fail_noise && xm_weigh_new_failures(ref, now))
		return XM_WEIGH_FAILURE;
	/* A backend turning far slower drags the service's mean with it. */
	if (ref->done > 0 && (slower(done, lat_ns, ref) ||
			      slower(now->req_completed - ref->tick.req_completed,
				     now->latency_sum_ns - ref->tick.latency_sum_ns, ref)))
		return XM_WEIGH_SLOWER;
	/*
	 * More in flight than at the last weighing, and more than the rates and
	 * latencies explain (l3x's stall bound, (in-flight - 1) / rps > latency,
	 * summed over the service).
	 */
	if (in_now > xm_lb_in_flight(then) && in_now - 1 > ref->little)
		return XM_WEIGH_STALL;
	if (xm_weigh_waited_enough(ref, waited))
		return XM_WEIGH_MAX_WAIT;
	/* 10 ms early counts, as for the max wait. */
	if (requests && requests >= (__u64)XM_WEIGH_NEW_PER_BACKEND * (n ? n : 1) &&
	    waited >= ref->busy_wait - 1e-2)
		return XM_WEIGH_SAMPLES;
	return XM_WEIGH_WAIT;
}

void xm_weigh_tick_seen(struct xm_weigh_ref *ref, const struct xm_lb_probe *now)
{
	ref->tick = *now;
}

void xm_weigh_busy_next(struct xm_weigh_ref *ref, enum xm_weigh_why why, double waited,
			bool quiet, bool rewritten)
{
	double next;

	/*
	 * A new table, no traffic (the quiet back-off takes over), a new backend
	 * set, or connections rebalanced every tick: weights on the move, the
	 * next samples weighed as soon as they come.
	 */
	if (rewritten || quiet || why == XM_WEIGH_FIRST || why == XM_WEIGH_REBALANCE) {
		ref->busy_wait = 0;
		return;
	}
	/*
	 * A failure, a slower tick, a stall or an old request was weighed at
	 * once: that says nothing of whether the samples between still move the
	 * weights, so the wait stays. A weighing of banked samples that left the
	 * table as it was: the next may bank twice as long (its filters see the
	 * same totals over the same time, in one step).
	 */
	if (why != XM_WEIGH_SAMPLES && why != XM_WEIGH_MAX_WAIT)
		return;
	next = 2 * (ref->busy_wait > waited ? ref->busy_wait : waited);
	ref->busy_wait = next < XM_WEIGH_BUSY_MAX_S ? next : XM_WEIGH_BUSY_MAX_S;
}

bool xm_weigh_waited_enough(const struct xm_weigh_ref *ref, double waited)
{
	double max = ref && ref->max_wait > 0 ? ref->max_wait : XM_WEIGH_MAX_WAIT_S;

	/* 10 ms early counts: a late tick makes the next one short, the sum stays. */
	return waited >= max - 1e-2;
}

void xm_weigh_next_wait(struct xm_weigh_ref *ref, bool quiet, double moved, double headroom)
{
	double next = ref->max_wait > 0 ? ref->max_wait : XM_WEIGH_MAX_WAIT_S;

	/*
	 * Traffic, or weights still on the move (rates decaying, estimates
	 * drifting): the table follows them every XM_WEIGH_MAX_WAIT_S as before.
	 */
	if (!quiet || moved > XM_WEIGH_SETTLED_SHARE) {
		ref->max_wait = XM_WEIGH_MAX_WAIT_S;
		return;
	}
	next *= 2;
	if (next > XM_WEIGH_QUIET_MAX_S)
		next = XM_WEIGH_QUIET_MAX_S;
	/* Weighed by the time a backend turns unmeasured and starts to drift. */
	if (headroom >= 0 && next > headroom)
		next = headroom;
	ref->max_wait = next > XM_WEIGH_MAX_WAIT_S ? next : XM_WEIGH_MAX_WAIT_S;
}

bool xm_weigh_backend_aged(const struct xm_wservice *s, const struct xm_wbackend *b,
			   double oldest)
{
	/* Its estimate grows with the request's age every tick from here on. */
	return s->algo->age_bounded && s->p.age_bound > 0 &&
	       s->p.age_bound * oldest > b->latency.value;
}

void xm_weigh_ref_update(struct xm_weigh_ref *ref, const struct xm_lb_probe *now,
			 const struct xm_wservice *s)
{
	/* Each weighing's completions count half as much at the next: a few windows' mean. */
	ref->lat_ns = ref->lat_ns / 2 + (double)(now->latency_sum_ns - ref->then.latency_sum_ns);
	ref->done = ref->done / 2 + (double)(now->req_completed - ref->then.req_completed);
	/* The failure rate over the last ~8 weighings: a rate, not a burst. */
	ref->failed = ref->failed * 7 / 8 + (double)(xm_lb_failures(now) - xm_lb_failures(&ref->then));
	ref->ended = ref->ended * 7 / 8 + (double)ended(now, &ref->then);
	ref->then = *now;
	ref->tick = *now;
	ref->little = 0;
	for (unsigned int i = 0; i < s->n; i++)
		if (s->b[i].alive)
			ref->little += s->b[i].rps.value * s->b[i].latency.value;
}

void xm_weigh_settle(struct xm_weigh_ref *ref, const struct xm_wservice *s, const double *before)
{
	double moved = 0, headroom = -1;

	/* A look at every backend only after a quiet weighing (rare: the point is fewer of them). */
	for (unsigned int i = 0; before && i < s->n; i++) {
		const struct xm_wbackend *b = &s->b[i];
		double d = fabs(b->place - before[i]), left = s->p.idle_after - b->idle;

		moved = d > moved ? d : moved;
		/*
		 * Drifting for less than XM_WEIGH_MAX_WAIT_S: its move has hardly
		 * begun (at idle_after exactly, not at all), the usual bound.
		 */
		if (left <= -XM_WEIGH_MAX_WAIT_S || !b->alive)
			continue;
		left = left > 0 ? left : 0;
		if (headroom < 0 || left < headroom)
			headroom = left;
	}
	xm_weigh_next_wait(ref, before != NULL, moved, headroom);
}
