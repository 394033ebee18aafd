/* SPDX-License-Identifier: MIT */
/*
 * Probe counters for the weighting loop's unit tests: what the kernel's
 * probes would have counted after some requests (include/xmesh/lb.h).
 */
#ifndef XT_PROBES_H
#define XT_PROBES_H

#include <xmesh/lb.h>

/* k more requests of latency lat (s), f of them answered 5xx. */
void xt_probe_requests(struct xm_lb_probe *p, unsigned int k, double lat, unsigned int f);

#endif
