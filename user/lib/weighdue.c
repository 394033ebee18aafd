// SPDX-License-Identifier: MIT
/* When the weighting loop weighs a service (weighdue.h, docs/weighting.md "Cadence"). */
#include <stddef.h>

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

enum xm_weigh_why xm_weigh_backend_news(const struct xm_wservice *s, const struct xm_wbackend *b,
					const struct xm_lb_probe *now,
					const struct xm_lb_probe *then, double oldest,
					__u64 *requests)
{
	/* Counters only grow while an id is allocated: modular differences. */
	__u64 done = now->req_completed - then->req_completed;
	__u64 lat_ns = now->latency_sum_ns - then->latency_sum_ns;
	__s64 in_now = xm_lb_in_flight(now);

	*requests += done + (now->req_aborted - then->req_aborted) +
		     (now->conn_refused - then->conn_refused) +
		     (now->conn_timeout - then->conn_timeout);
	/* A failure moves l3x's success filter at once (valley): as fast as before. */
	if (xm_lb_failures(now) != xm_lb_failures(then))
		return XM_WEIGH_FAILURE;
	if (done && lat_ns > XM_WEIGH_SLOWER_FACTOR * b->latency.value * 1e9 * done)
		return XM_WEIGH_SLOWER;
	/*
	 * More in flight than at the last weighing, and more than the rate and
	 * latency explain (l3x's stall bound: (in-flight - 1) / rps > latency).
	 */
	if (in_now > xm_lb_in_flight(then) && in_now - 1 > b->rps.value * b->latency.value)
		return XM_WEIGH_STALL;
	/* l3x's age bound binds: its estimate grows with the request's age every tick. */
	if (s->p.age_bound > 0 && s->p.age_bound * oldest > b->latency.value)
		return XM_WEIGH_AGE;
	return XM_WEIGH_WAIT;
}

enum xm_weigh_why xm_weigh_service_due(double waited, __u64 requests, unsigned int n)
{
	/* 10 ms early counts: a late tick makes the next one short, the sum stays. */
	if (waited >= XM_WEIGH_MAX_WAIT_S - 1e-2)
		return XM_WEIGH_MAX_WAIT;
	if (requests && requests >= (__u64)XM_WEIGH_NEW_PER_BACKEND * (n ? n : 1))
		return XM_WEIGH_SAMPLES;
	return XM_WEIGH_WAIT;
}
