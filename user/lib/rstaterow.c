// SPDX-License-Identifier: MIT
/* A backend's published rebalancing row, written only when it changes (rstaterow.h). */
#include <math.h>
#include <string.h>

#include "rstaterow.h"
#include "weight.h"

bool xm_rstate_row_update(struct xm_lb_rstate *o, const struct xm_rebal_tally *c, __u32 flags,
			  double dt, __u64 now)
{
	struct xm_lb_rstate r = *o;

	if (r.updated_ns && now > r.updated_ns) {
		/*
		 * A row left unchanged was at rate 0 all along, so the span is the
		 * time since the last weighing, not since the row last changed.
		 */
		double span = fmin((now - r.updated_ns) / 1e9, dt > 0 ? dt : 1e-3);
		double a = xm_filter_decay(2, span);

		r.retired_milli_s = (__u32)fmin((c->retired / span * (1 - a) +
						 r.retired_milli_s / 1e3 * a) * 1e3, 4e9);
	}
	r.retired_total += c->retired;
	r.held = c->held;
	r.idle = c->idle;
	r.flags = flags;
	if (!r.updated_ns || memcmp(&r, o, sizeof(r))) {
		r.updated_ns = now;
		*o = r;
	}
	return !r.held && !r.idle && !r.retired_milli_s;
}
