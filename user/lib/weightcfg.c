// SPDX-License-Identifier: MIT
/* Configuration of the weighting algorithms (weightcfg.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <xmesh/weight.h>

#include "weightcfg.h"

static const struct {
	const char *key;
	size_t off;
	double lo, hi;
} nums[] = {
#define P(k, f, lo, hi) { k, offsetof(struct xm_weight_params, f), lo, hi }
	P("hl_latency_s", hl_latency, 0, 3600),
	P("hl_inflight_s", hl_inflight, 0, 3600),
	P("hl_success_s", hl_success, 0, 3600),
	P("hl_rps_s", hl_rps, 0, 3600),
	P("default_latency_s", default_latency, 0, 3600),
	P("default_success", default_success, 0, 1),
	P("default_rps", default_rps, 0, 1e9),
	P("idle_after_s", idle_after, 0, 3600),
	P("penalty_s", penalty, 0, 3600),
	P("floor", floor, 0, 1),
	P("rc_exponent", rc_exponent, 0, 10),
	P("latency_exponent", latency_exponent, 0, 10),
	P("outlier_factor", outlier_factor, 0, 1000),
	P("age_bound", age_bound, 0, 1),
	P("stickiness", stickiness, 0, 4),
	P("sticky_pooled", sticky_pooled, 0, 1),
	P("conn_cap", conn_cap, 0, 1000),
	P("held_cap", held_cap, 0, 1000),
	P("hl_tail_s", hl_tail, 0, 3600),
	P("table_deadband", table_deadband, 0, 1),
	P("fail_alpha", fail_alpha, 0, 1),
	P("fall_gap_s", fall_gap, 0, 3600),
	P("due_fail_alpha", due_fail_alpha, 0, 1),
	P("success_alpha", success_alpha, 0, 1),
	P("unmeasured_typical", unmeasured_typical, 0, 1),
#undef P
};

bool xm_weight_algo_is_dynamic(const char *algo)
{
	const struct xm_weight_algo *a = xm_weight_algo_find(algo);

	/* Equal weights are written once by the config code; they need no loop. */
	return a && !a->equal_weights;
}

static int get_bool(json_t *params, const char *k, bool *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(params, k);

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "params.%s: must be true or false", k);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

int xm_weight_params_parse(const struct xm_weight_algo *a, json_t *params,
			   struct xm_weight_params *p, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	size_t i;

	xm_weight_params_default(p);
	if (a && a->tune)
		a->tune(p);
	if (!params)
		return 0;
	if (!json_is_object(params)) {
		snprintf(err, errlen, "params: must be an object");
		return -EINVAL;
	}
	json_object_foreach(params, k, v) {
		bool known = !strcmp(k, "rate_control") || !strcmp(k, "latency_filter") ||
			     !strcmp(k, "adopt_first");

		for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
			known |= !strcmp(k, nums[i].key);
		if (!known) {
			snprintf(err, errlen, "params.%s: unknown parameter (see docs/weighting.md)", k);
			return -EINVAL;
		}
	}
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		v = json_object_get(params, nums[i].key);
		if (!v)
			continue;
		if (!json_is_number(v) || json_number_value(v) < nums[i].lo ||
		    json_number_value(v) > nums[i].hi) {
			snprintf(err, errlen, "params.%s: must be a number from %g to %g", nums[i].key,
				 nums[i].lo, nums[i].hi);
			return -EINVAL;
		}
		*(double *)((char *)p + nums[i].off) = json_number_value(v);
	}
	if (get_bool(params, "rate_control", &p->rate_control, err, errlen) ||
	    get_bool(params, "adopt_first", &p->adopt_first, err, errlen))
		return -EINVAL;
	v = json_object_get(params, "latency_filter");
	if (v) {
		const char *s = json_string_value(v);

		if (s && !strcmp(s, "ewma")) {
			p->latency_filter = XM_FILTER_EWMA;
		} else if (s && !strcmp(s, "peak")) {
			p->latency_filter = XM_FILTER_PEAK;
		} else {
			snprintf(err, errlen, "params.latency_filter: \"ewma\" or \"peak\"");
			return -EINVAL;
		}
	}
	return 0;
}

int xm_weighting_conf_parse(json_t *o, unsigned int *tick_ms, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	*tick_ms = XM_TICK_MS_DEFAULT;
	if (!o)
		return 0;
	if (!json_is_object(o)) {
		snprintf(err, errlen, "weighting: must be an object");
		return -EINVAL;
	}
	json_object_foreach(o, k, v) {
		if (strcmp(k, "tick_ms")) {
			snprintf(err, errlen, "weighting.%s: unknown field (tick_ms)", k);
			return -EINVAL;
		}
	}
	v = json_object_get(o, "tick_ms");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 10 ||
		    json_integer_value(v) > 60000) {
			snprintf(err, errlen, "weighting.tick_ms: must be an integer from 10 to 60000");
			return -EINVAL;
		}
		*tick_ms = (unsigned int)json_integer_value(v);
	}
	return 0;
}
