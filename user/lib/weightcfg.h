/* SPDX-License-Identifier: MIT */
/*
 * Configuration of the weighting algorithms (docs/weighting.md):
 *   a service's "params" object, checked at config load (lbconfig.c) and
 *   read by the agent's weighting loop;
 *   the top-level "weighting" object: {"tick_ms": 500}.
 */
#ifndef XMESH_WEIGHTCFG_H
#define XMESH_WEIGHTCFG_H

#include <jansson.h>
#include "weight.h"

/* Whether the weighting loop owns services with this algorithm's name. */
bool xm_weight_algo_is_dynamic(const char *algo);

/*
 * p = algorithm a's defaults and tuning (a may be NULL: the plain defaults),
 * then the fields of params (may be NULL). Returns 0, or -EINVAL with
 * err = "params.NAME: what is wrong".
 */
int xm_weight_params_parse(const struct xm_weight_algo *a, json_t *params,
			   struct xm_weight_params *p, char *err, size_t errlen);
/*
 * The same, and on error *at = the key in params of the parameter that is
 * wrong (NULL: params itself), so that a config file's error can point at it.
 */
int xm_weight_params_parse_at(const struct xm_weight_algo *a, json_t *params,
			      struct xm_weight_params *p, char *err, size_t errlen,
			      const char **at);
/*
 * The parameters "params" takes, i < xm_weight_param_count(), and the values
 * each takes as docs/weighting.md's range column writes them ("0..3600",
 * "0 or 1", "0 or 1..1000", "true or false", "ewma" or "peak" in quotes).
 */
unsigned int xm_weight_param_count(void);
const char *xm_weight_param_name(unsigned int i);
void xm_weight_param_range(unsigned int i, char *buf, size_t len);

/* The top-level "weighting" object (may be NULL): tick_ms (10..60000, default 500). */
int xm_weighting_conf_parse(json_t *o, unsigned int *tick_ms, char *err, size_t errlen);
/* The same, and on error *at = the key in o that is wrong (NULL: o itself). */
int xm_weighting_conf_parse_at(json_t *o, unsigned int *tick_ms, char *err, size_t errlen,
			       const char **at);

#endif
