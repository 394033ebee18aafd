/* SPDX-License-Identifier: MIT */
/*
 * Probe counters for the weighting loop's unit tests: what the kernel's
 * probes would have counted after some requests. A header of the unit tests,
 * not of tests/lib: that library is also built into the test cluster's image
 * (scripts/k8s-images.sh), which has no include/xmesh.
 */
#ifndef XT_PROBE_COUNTS_H
#define XT_PROBE_COUNTS_H

#include <xmesh/lb.h>

/* k more requests of latency lat (s), f of them answered 5xx. */
static inline void xt_probe_requests(struct xm_lb_probe *p, unsigned int k, double lat,
				     unsigned int f)
{
	p->req_started += k;
	p->req_completed += k;
	p->latency_sum_ns += (__u64)(k * lat * 1e9);
	p->http_5xx += f;
}

#endif
