/* SPDX-License-Identifier: MIT */
/*
 * A backend's published rebalancing row (xm_lb_rstate, include/xmesh/rebalance.h)
 * after a connection-counting pass: written only when it changes, so that the
 * weighting loop's tick costs no write to a shared page for a backend whose
 * row would read the same.
 */
#ifndef XMESH_RSTATEROW_H
#define XMESH_RSTATEROW_H

#include <stdbool.h>
#include <xmesh/rebalance.h>

/*
 * Row o after a pass that counted c (held, idle, retired since the last
 * pass), with flags, dt s after the service was last weighed, at now
 * (CLOCK_MONOTONIC ns). The retired rate is an EWMA with a 2 s half-life
 * over the time since the last weighing. o->updated_ns becomes now only when
 * a field changed (or the row was never written). True when the row now
 * says nothing is held, idle or being retired: a caller may then leave it
 * untouched while the counts stay zero.
 */
bool xm_rstate_row_update(struct xm_lb_rstate *o, const struct xm_rebal_tally *c, __u32 flags,
			  double dt, __u64 now);

#endif
