/* SPDX-License-Identifier: MIT */
/*
 * The agent's weighting loop: every tick (default 500 ms) it reads each
 * backend's probe deltas from the pinned LB maps, folds them into the
 * filters, computes weights with the service's algorithm, and writes the
 * service's inactive selection table and flips it (only when the slots
 * change). It also publishes the filtered state in xm_lb_wstate /
 * xm_lb_wloop (include/xmesh/weight.h) for the CLI and metrics.
 *
 * Services and backends are discovered from the maps each tick, so whoever
 * adds them (config, control socket) needs no call here; only the choice of
 * algorithm per service comes from the configuration:
 *
 *   "weighting": {                       top level: defaults for every service
 *     "tick_ms": 500,
 *     "algorithm": "l3",                 round-robin | l3 | l3-peak | c3 | l3x | static
 *     "params": { "penalty_s": 0.6, "floor": 0.05, ... }
 *   }
 *   a service object may carry its own "weighting": {"algorithm": ..., "params": ...}
 *   or the shorthand "algorithm": "l3x".
 *
 * "static" leaves a service's table alone (weights from the config).
 */
#ifndef XMESH_AGENT_WEIGHTING_H
#define XMESH_AGENT_WEIGHTING_H

#include <jansson.h>
#include <stdbool.h>
#include <xmesh/lb.h>
#include <xmesh/weight.h>
#include "weight.h"

struct xm_agent;

struct xm_wcfg {
	char algorithm[XM_WEIGHT_ALGO_LEN]; /* "" = inherit the default */
	struct xm_weight_params params;          /* valid when params_set */
	bool params_set;
};

/*
 * Parse a "weighting" object (or a bare algorithm string) on top of base
 * (NULL: built-in defaults). tick_ms, when non-NULL, receives "tick_ms"
 * if present. Errors name the field: "weighting.params.floor: must be in
 * [0, 1]". Returns 0 or -EINVAL.
 */
int xm_wcfg_parse(json_t *o, const struct xm_wcfg *base, struct xm_wcfg *out,
		  unsigned int *tick_ms, char *err, size_t errlen);
/* The effective parameters of a configuration (algorithm's tuning, then overrides). */
int xm_wcfg_resolve(const struct xm_wcfg *c, const struct xm_weight_algo **algo,
		    struct xm_weight_params *p);

/* Create/open the published maps, start the tick timer on a->loop. */
int xm_weighting_start(struct xm_agent *a);
void xm_weighting_stop(struct xm_agent *a);
/* Defaults for every service without its own setting; tick_ms 0 keeps the tick. */
int xm_weighting_set_default(struct xm_agent *a, const struct xm_wcfg *c, unsigned int tick_ms);
/* One service's setting; c = NULL drops it (back to the default). */
int xm_weighting_set_service(struct xm_agent *a, const struct xm_lb_svc_key *k,
			     const struct xm_wcfg *c);
/* Forget every per-service setting (before a config reload applies its own). */
void xm_weighting_clear_services(struct xm_agent *a);
/* Run one tick now (tests, benchmarks). */
void xm_weighting_tick(struct xm_agent *a);

#endif
