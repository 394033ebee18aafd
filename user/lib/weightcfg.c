// SPDX-License-Identifier: MIT
/* Configuration of the weighting algorithms (weightcfg.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <xmesh/weight.h>

#include "nearname.h"
#include "numparse.h"
#include "weightcfg.h"

/*
 * What a parameter takes. NUMBER: lo..hi; FLAG: 0 or 1 (a number read as
 * on when > 0: 0.5 would be taken for 1); OFF_OR: 0 (off) or lo..hi (a
 * value between means nothing: conn_cap 0.5 caps every backend's target
 * below an equal share, and the targets no longer add up to the
 * connections held); BOOL: true or false; FILTER: "ewma" or "peak".
 */
enum param_kind { NUMBER, FLAG, OFF_OR, BOOL, FILTER };

/*
 * Every parameter "params" takes: the parser's table, its errors' names,
 * and docs/weighting.md's range column (xm_weight_param_range, checked both
 * ways by tests/unit/test_config_check.c).
 */
static const struct {
	const char *key;
	enum param_kind kind;
	size_t off;
	double lo, hi;
} params[] = {
#define P(k, f, lo, hi) { k, NUMBER, offsetof(struct xm_weight_params, f), lo, hi }
#define K(k, kind, f, lo, hi) { k, kind, offsetof(struct xm_weight_params, f), lo, hi }
	P("hl_latency_s", hl_latency, 0, 3600),
	P("hl_inflight_s", hl_inflight, 0, 3600),
	P("hl_success_s", hl_success, 0, 3600),
	P("hl_rps_s", hl_rps, 0, 3600),
	P("default_latency_s", default_latency, 0, 3600),
	P("default_success", default_success, 0, 1),
	P("default_rps", default_rps, 0, 1e9),
	P("idle_after_s", idle_after, 0, 3600),
	K("adopt_first", BOOL, adopt_first, 0, 1),
	P("penalty_s", penalty, 0, 3600),
	P("floor", floor, 0, 1),
	K("rate_control", BOOL, rate_control, 0, 1),
	P("rc_exponent", rc_exponent, 0, 10),
	K("latency_filter", FILTER, latency_filter, 0, 0),
	P("latency_exponent", latency_exponent, 0, 10),
	P("outlier_factor", outlier_factor, 0, 1000),
	P("age_bound", age_bound, 0, 1),
	K("unmeasured_typical", FLAG, unmeasured_typical, 0, 1),
	P("stickiness", stickiness, 0, 4),
	K("sticky_pooled", FLAG, sticky_pooled, 0, 1),
	K("conn_cap", OFF_OR, conn_cap, 1, 1000),
	P("held_cap", held_cap, 0, 1000),
	P("hl_tail_s", hl_tail, 0, 3600),
	P("table_deadband", table_deadband, 0, 1),
	P("fail_alpha", fail_alpha, 0, 1),
	P("success_alpha", success_alpha, 0, 1),
	P("due_fail_alpha", due_fail_alpha, 0, 1),
	P("fall_gap_s", fall_gap, 0, 3600),
#undef K
#undef P
};
#define N_PARAMS (sizeof(params) / sizeof(params[0]))

unsigned int xm_weight_param_count(void)
{
	return N_PARAMS;
}

const char *xm_weight_param_name(unsigned int i)
{
	return i < N_PARAMS ? params[i].key : NULL;
}

void xm_weight_param_range(unsigned int i, char *buf, size_t len)
{
	char lo[32], hi[32];

	if (i >= N_PARAMS) {
		snprintf(buf, len, "%s", "");
		return;
	}
	xm_number_str(params[i].lo, lo, sizeof(lo));
	xm_number_str(params[i].hi, hi, sizeof(hi));
	switch (params[i].kind) {
	case NUMBER:
		snprintf(buf, len, "%s..%s", lo, hi);
		break;
	case FLAG:
		snprintf(buf, len, "0 or 1");
		break;
	case OFF_OR:
		snprintf(buf, len, "0 or %s..%s", lo, hi);
		break;
	case BOOL:
		snprintf(buf, len, "true or false");
		break;
	case FILTER:
		snprintf(buf, len, "\"ewma\" or \"peak\"");
		break;
	}
}

bool xm_weight_algo_is_dynamic(const char *algo)
{
	const struct xm_weight_algo *a = xm_weight_algo_find(algo);

	/* Equal weights are written once by the config code; they need no loop. */
	return a && !a->equal_weights;
}

/* Parameter i from v, or -EINVAL with err = "params.NAME: what it takes". */
static int param_set(unsigned int i, json_t *v, struct xm_weight_params *p, char *err,
		     size_t errlen)
{
	double x = json_number_value(v);
	const char *s = json_string_value(v);
	char lo[32], hi[32], hint[96];

	xm_number_str(params[i].lo, lo, sizeof(lo));
	xm_number_str(params[i].hi, hi, sizeof(hi));
	switch (params[i].kind) {
	case NUMBER:
		if (json_is_number(v) && x >= params[i].lo && x <= params[i].hi)
			break;
		snprintf(err, errlen, "params.%s: must be a number from %s to %s", params[i].key,
			 lo, hi);
		return -EINVAL;
	case FLAG:
		if (json_is_number(v) && (x == 0 || x == 1))
			break;
		snprintf(err, errlen, "params.%s: must be 0 or 1 (off or on)", params[i].key);
		return -EINVAL;
	case OFF_OR:
		if (json_is_number(v) && (x == 0 || (x >= params[i].lo && x <= params[i].hi)))
			break;
		snprintf(err, errlen, "params.%s: must be 0 (off) or a number from %s to %s",
			 params[i].key, lo, hi);
		return -EINVAL;
	case BOOL:
		if (!json_is_boolean(v)) {
			snprintf(err, errlen, "params.%s: must be true or false", params[i].key);
			return -EINVAL;
		}
		*(bool *)((char *)p + params[i].off) = json_is_true(v);
		return 0;
	case FILTER:
		if (s && !strcmp(s, "ewma")) {
			p->latency_filter = XM_FILTER_EWMA;
		} else if (s && !strcmp(s, "peak")) {
			p->latency_filter = XM_FILTER_PEAK;
		} else {
			static const char *const filters[] = { "ewma", "peak", NULL };

			xm_nearname_hint_in(s, filters, hint, sizeof(hint));
			snprintf(err, errlen, "params.%s: must be \"ewma\" or \"peak\"%s",
				 params[i].key, hint);
			return -EINVAL;
		}
		return 0;
	}
	*(double *)((char *)p + params[i].off) = x;
	return 0;
}

int xm_weight_params_parse(const struct xm_weight_algo *a, json_t *params_o,
			   struct xm_weight_params *p, char *err, size_t errlen)
{
	return xm_weight_params_parse_at(a, params_o, p, err, errlen, NULL);
}

int xm_weight_params_parse_at(const struct xm_weight_algo *a, json_t *params_o,
			      struct xm_weight_params *p, char *err, size_t errlen,
			      const char **at)
{
	const char *k;
	json_t *v;
	unsigned int i;

	if (at)
		*at = NULL;
	xm_weight_params_default(p);
	if (a && a->tune)
		a->tune(p);
	if (!params_o)
		return 0;
	if (!json_is_object(params_o)) {
		snprintf(err, errlen, "params: must be an object");
		return -EINVAL;
	}
	/* Names first: a misspelt one is the error even after a bad value. */
	json_object_foreach(params_o, k, v) {
		struct xm_nearname near;
		char hint[96];

		xm_nearname_init(&near, k);
		for (i = 0; i < N_PARAMS && strcmp(k, params[i].key); i++)
			xm_nearname_offer(&near, params[i].key);
		if (i < N_PARAMS)
			continue;
		if (at)
			*at = k;
		/* the names are too many to list in a Kubernetes note: the docs have them */
		snprintf(err, errlen, "params.%.64s: unknown parameter%s (all of them: "
			 "docs/weighting.md, \"Parameters\")", k,
			 xm_nearname_hint(&near, hint, sizeof(hint)));
		return -EINVAL;
	}
	for (i = 0; i < N_PARAMS; i++) {
		v = json_object_get(params_o, params[i].key);
		if (v && param_set(i, v, p, err, errlen)) {
			if (at)
				*at = params[i].key;
			return -EINVAL;
		}
	}
	return 0;
}

int xm_weighting_conf_parse(json_t *o, unsigned int *tick_ms, char *err, size_t errlen)
{
	return xm_weighting_conf_parse_at(o, tick_ms, err, errlen, NULL);
}

int xm_weighting_conf_parse_at(json_t *o, unsigned int *tick_ms, char *err, size_t errlen,
			       const char **at)
{
	const char *k;
	json_t *v;

	if (at)
		*at = NULL;
	*tick_ms = XM_TICK_MS_DEFAULT;
	if (!o)
		return 0;
	if (!json_is_object(o)) {
		snprintf(err, errlen, "weighting: must be an object");
		return -EINVAL;
	}
	json_object_foreach(o, k, v) {
		if (strcmp(k, "tick_ms")) {
			static const char *const fields[] = { "tick_ms", NULL };
			char hint[96];

			if (at)
				*at = k;
			snprintf(err, errlen,
				 "weighting.%.64s: unknown field (known here: tick_ms)%s", k,
				 xm_nearname_hint_in(k, fields, hint, sizeof(hint)));
			return -EINVAL;
		}
	}
	v = json_object_get(o, "tick_ms");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 10 ||
		    json_integer_value(v) > 60000) {
			if (at)
				*at = "tick_ms";
			snprintf(err, errlen, "weighting.tick_ms: must be an integer from 10 to 60000");
			return -EINVAL;
		}
		*tick_ms = (unsigned int)json_integer_value(v);
	}
	return 0;
}
