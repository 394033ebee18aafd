/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the agent's weighting loop publishes for the CLI and metrics: the
 * filtered view behind every weight. Written only by user space (the agent
 * creates and pins these maps itself; no BPF program uses them), read by
 * `xmeshctl backend list`, `xmeshctl top` and the metrics endpoint, so they
 * work while the agent is down (showing the last tick).
 *
 *   xm_lb_wstate  ARRAY  backend id -> xm_lb_wstate   per backend, per tick
 *   xm_lb_wloop   ARRAY  0          -> xm_lb_wloop    the loop itself
 *
 * The algorithms are in user/lib/weight.h; docs/weighting.md explains them.
 */
#ifndef XMESH_WEIGHT_MAPS_H
#define XMESH_WEIGHT_MAPS_H

#include "lb.h"

#define XM_WEIGHT_ALGO_LEN 16

struct xm_lb_wstate {
	__u64 updated_ns;     /* CLOCK_MONOTONIC of the tick that wrote it; 0: never */
	__u32 svc_id;
	__u32 flags;          /* XM_WSTATE_F_* */
	__u32 p99_us;         /* filtered p99 latency (the algorithm's L_s) */
	__u32 l_est_us;       /* latency estimate the weight came from (L_est) */
	__u32 tick_p50_us;    /* raw p50 of the last tick; U32_MAX: no sample */
	__u32 tick_p99_us;    /* raw p99 of the last tick; U32_MAX: no sample */
	__u32 success_ppm;    /* filtered success rate x 1e6 */
	__u32 rps_milli;      /* filtered completed requests per second x 1000 */
	__u32 inflight_milli; /* filtered in-flight requests x 1000 */
	__u32 inflight_now;   /* in-flight at the tick */
	__u32 weight_ppm;     /* computed share x 1e6 (the table's slots: its active xm_lb_tables entry) */
	/*
	 * With XM_WSTATE_F_TABLE: the share of new connections (weight) the
	 * table in force was written from, x 1e6, set when the loop flips to it:
	 * what `backend list`, `service show`, `top` and /metrics show as the
	 * weight. Was padding: older readers ignore it, the layout is the same.
	 */
	__u32 table_weight_ppm;
	char algo[XM_WEIGHT_ALGO_LEN]; /* algorithm of its service */
};

_Static_assert(sizeof(struct xm_lb_wstate) == 72, "xm_lb_wstate layout is ABI");

#define XM_WSTATE_F_LIVE (1U << 0)
/*
 * The table in force is the weighting loop's: table_weight_ppm is valid.
 * Cleared when the loop stops weighing the service and when the agent writes
 * the service's table from its config (then the configured weight in
 * xm_lb_backend.weight_milli is the one in force).
 */
#define XM_WSTATE_F_TABLE (1U << 1)

struct xm_lb_wloop {
	__u64 ticks;
	__u64 updated_ns;     /* CLOCK_MONOTONIC of the last tick */
	__u64 last_cost_ns;   /* CPU time (thread) of the last tick */
	__u64 total_cost_ns;  /* CPU time of all ticks */
	__u64 table_writes;   /* selection tables written (only when slots changed) */
	__u32 tick_ms;
	__u32 services;       /* services visited in the last tick (weighed or waiting) */
	__u32 backends;       /* backends weighted in the last tick */
	/*
	 * Services weighed, summed over all ticks, modulo 2^32 (readers take
	 * differences): the others waited for news (docs/weighting.md, "Cadence").
	 * Was padding: older readers ignore it, the layout is the same.
	 */
	__u32 weighed_total;
};

#define XM_TICK_MS_DEFAULT 500
#define XM_WEIGHT_UNSET 0xffffffffU

#endif /* XMESH_WEIGHT_MAPS_H */
