/* SPDX-License-Identifier: MIT */
/*
 * The agent's weighting loop: every tick (default 500 ms, config
 * "weighting": {"tick_ms": N}) it reads each backend's probe deltas from the
 * pinned LB maps, folds them into the filters, computes weights with the
 * service's algorithm, and writes the service's inactive selection table and
 * flips it (only when some backend's slots change by 2 or more). It also
 * publishes the filtered state in xm_lb_wstate / xm_lb_wloop
 * (include/xmesh/weight.h) for the CLI and metrics.
 *
 * Services and backends are discovered from the maps each tick; a service's
 * algorithm and "params" come from the agent's applied services (lbstate):
 * l3, l3-peak, c3 and l3x are weighted here; static and round-robin tables
 * are written by the config code and left alone (their filters still run,
 * for display). docs/weighting.md describes algorithms and parameters.
 */
#ifndef XMESH_AGENT_WEIGHTING_H
#define XMESH_AGENT_WEIGHTING_H

#include <xmesh/weight.h>

struct xm_agent;

/* Create/open the published maps and start the tick timer on a->loop. */
int xm_weighting_start(struct xm_agent *a);
void xm_weighting_stop(struct xm_agent *a);
/* Change the tick (0: keep). */
int xm_weighting_set_tick(struct xm_agent *a, unsigned int tick_ms);
/* Backends or services were added or removed: re-read them at the next tick. */
void xm_weighting_topology_changed(struct xm_agent *a);
/* Run one tick now (also what the timer calls). */
void xm_weighting_tick(struct xm_agent *a);

#endif
