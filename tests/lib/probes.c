// SPDX-License-Identifier: MIT
#include "probes.h"

void xt_probe_requests(struct xm_lb_probe *p, unsigned int k, double lat, unsigned int f)
{
	p->req_started += k;
	p->req_completed += k;
	p->latency_sum_ns += (__u64)(k * lat * 1e9);
	p->http_5xx += f;
}
