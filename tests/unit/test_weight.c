// SPDX-License-Identifier: MIT
/* Filters and weighting algorithms (user/lib/weight.c). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weight.h"
#include "weightcfg.h"
#include "lbconfig.h"

#define near(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

/* ---- filters ---- */

static void ewma_half_life_is_halfway(void **st)
{
	struct xm_filter f;

	xm_filter_init(&f, XM_FILTER_EWMA, 0, 5);
	xm_filter_sample(&f, 100, 5);
	near(f.value, 50, 1e-9);
	/* The same after ten ticks of 0.5 s. */
	xm_filter_init(&f, XM_FILTER_EWMA, 0, 5);
	for (int i = 0; i < 10; i++)
		xm_filter_sample(&f, 100, 0.5);
	near(f.value, 50, 1e-9);
	/* Two half-lives: three quarters. */
	xm_filter_sample(&f, 100, 5);
	near(f.value, 75, 1e-9);
}

static void ewma_eq1(void **st)
{
	struct xm_filter f;
	double a = exp(-1.0 * M_LN2 / 10);

	xm_filter_init(&f, XM_FILTER_EWMA, 0.8, 10);
	xm_filter_sample(&f, 0.2, 1);
	near(f.value, 0.2 * (1 - a) + 0.8 * a, 1e-12);
}

static void peak_jumps_up_decays_down(void **st)
{
	struct xm_filter f;

	xm_filter_init(&f, XM_FILTER_PEAK, 0.05, 5);
	xm_filter_sample(&f, 0.9, 0.5);
	near(f.value, 0.9, 1e-12); /* at once, not after a half-life */
	xm_filter_sample(&f, 0.1, 5);
	near(f.value, 0.5, 1e-12); /* down like the EWMA */

	/* A plain EWMA would have barely moved. */
	xm_filter_init(&f, XM_FILTER_EWMA, 0.05, 5);
	xm_filter_sample(&f, 0.9, 0.5);
	assert_true(f.value < 0.2);
}

static void valley_drops_at_once(void **st)
{
	struct xm_filter f;

	xm_filter_init(&f, XM_FILTER_VALLEY, 1, 10);
	xm_filter_sample(&f, 0.3, 0.5);
	near(f.value, 0.3, 1e-12);
	xm_filter_sample(&f, 1, 10);
	near(f.value, 0.65, 1e-12);
}

static void first_sample_adopted_or_not(void **st)
{
	struct xm_wservice s;
	struct xm_weight_params p;
	struct xm_wsample x[1] = { { .requests = 10, .p99 = 0.05, .p50 = 0.02, .alive = true } };

	/* Default: the first sample replaces the 5 s initial value. */
	xm_wservice_init(&s, xm_weight_algo_find("l3"), NULL, 1);
	near(s.b[0].latency.value, 5, 0);
	xm_wservice_tick(&s, x, 0.5);
	near(s.b[0].latency.value, 0.05, 1e-12);
	xm_wservice_free(&s);
	/* Paper-literal: Eq. 1 from the initial value. */
	xm_weight_params_default(&p);
	p.adopt_first = false;
	xm_wservice_init(&s, xm_weight_algo_find("l3"), &p, 1);
	xm_wservice_tick(&s, x, 0.5);
	double a = exp(-0.5 * M_LN2 / 5);
	near(s.b[0].latency.value, 0.05 * (1 - a) + 5 * a, 1e-12);
	xm_wservice_free(&s);
}

static void drift_goes_to_default(void **st)
{
	struct xm_filter f;

	xm_filter_init(&f, XM_FILTER_EWMA, 5, 5);
	f.value = 1;
	xm_filter_drift(&f, 5);
	near(f.value, 3, 1e-12);
	for (int i = 0; i < 200; i++)
		xm_filter_drift(&f, 0.5);
	near(f.value, 5, 1e-3);
}

/* ---- L3 algorithm 1 ---- */

static void l3_alg1(void **st)
{
	double est, w;

	/* No failures, no in-flight: w = 1 / L. */
	w = xm_l3_weight(0.1, 1, 100, 0, 0.6, &est);
	near(est, 0.1, 1e-12);
	near(w, 10, 1e-9);
	/* 80 % success: L_est = L + 0.6 (1/0.8 - 1) = 0.1 + 0.15. */
	w = xm_l3_weight(0.1, 0.8, 100, 0, 0.6, &est);
	near(est, 0.25, 1e-12);
	near(w, 4, 1e-9);
	/* R_i = 50 / 100 = 0.5: divided by 1.5^2. */
	w = xm_l3_weight(0.1, 1, 100, 50, 0.6, &est);
	near(w, 10 / 2.25, 1e-9);
	/* No rate: R_i = 0. */
	w = xm_l3_weight(0.1, 1, 0, 50, 0.6, &est);
	near(w, 10, 1e-9);
	/* R_s = 0: the paper keeps L_s. */
	w = xm_l3_weight(0.1, 0, 10, 0, 0.6, &est);
	near(est, 0.1, 1e-12);
}

/* ---- L3 algorithm 2, paper Figure 4 ---- */

static void l3_rate_control_figure4(void **st)
{
	double w;

	w = xm_l3_rate_control(2000, 1000, -0.5, 1.5);
	near(w, 2829, 1); /* 3000 - 1000 / 3.25^1.5 = 2829.3 */
	assert_true(w > 2800);
	w = xm_l3_rate_control(500, 1000, -0.5, 1.5);
	near(w, 177, 0.5); /* 500 / 2^1.5 = 176.8 */
	/* The reference code's integer exponent (1) would give 2692 and 250. */
	assert_true(fabs(xm_l3_rate_control(2000, 1000, -0.5, 1) - 2692.3) < 1);
	assert_true(fabs(xm_l3_rate_control(500, 1000, -0.5, 1) - 250) < 1e-9);
}

static void l3_rate_control_rise_and_flat(void **st)
{
	/* c > 0 pulls toward the mean from both sides. */
	double hi = xm_l3_rate_control(2000, 1000, 1, 1.5);
	double lo = xm_l3_rate_control(500, 1000, 1, 1.5);

	near(hi, 1000 + 1000 / pow(2, 1.5), 1e-9);
	assert_true(hi < 2000 && hi > 1000);
	assert_true(lo > 500 && lo < 1000);
	/* Unchanged rate: untouched. */
	near(xm_l3_rate_control(2000, 1000, 0, 1.5), 2000, 0);
	near(xm_l3_rate_control(500, 1000, 0, 1.5), 500, 0);
}

/* ---- floor, slots, histogram ---- */

static void floor_raises_low_weights(void **st)
{
	double w[4] = { 100, 100, 0.001, 5 };
	bool live[4] = { true, true, true, false };

	xm_weight_apply_floor(w, live, 4, 0.1);
	/* mean over live = 200.001 / 3 -> floor 6.67 */
	near(w[2], 0.1 * 200.001 / 3, 1e-9);
	near(w[0], 100, 0);
	near(w[3], 5, 0); /* not live: untouched */
}

/* ---- services ---- */

static void sample(struct xm_wsample *x, uint64_t req, uint64_t fail, double p99, double inflight)
{
	memset(x, 0, sizeof(*x));
	x->requests = req;
	x->failures = fail;
	x->p99 = p99;
	x->p50 = p99 >= 0 ? p99 / 3 : -1;
	x->inflight = inflight;
	x->alive = true;
}

static void names_and_unknown(void **st)
{
	struct xm_wservice s;

	for (int i = 0; xm_weight_algos[i]; i++) {
		assert_non_null(xm_weight_algo_find(xm_weight_algos[i]->name));
		assert_int_equal(xm_wservice_init(&s, xm_weight_algos[i], NULL, 3), 0);
		xm_wservice_free(&s);
	}
	assert_non_null(xm_weight_algo_find("round-robin"));
	assert_non_null(xm_weight_algo_find("l3"));
	assert_non_null(xm_weight_algo_find("c3"));
	assert_non_null(xm_weight_algo_find("l3x"));
	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("nope"), NULL, 3), -ENOENT);
}

static void defaults_documented(void **st)
{
	struct xm_wservice s;

	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3"), NULL, 2), 0);
	near(s.p.hl_latency, 5, 0);
	near(s.p.hl_inflight, 5, 0);
	near(s.p.hl_success, 10, 0);
	near(s.p.hl_rps, 10, 0);
	near(s.p.penalty, 0.6, 0);
	near(s.p.rc_exponent, 1.5, 0);
	assert_true(s.p.rate_control);
	near(s.b[0].latency.value, 5, 0);
	near(s.b[0].success.value, 1, 0);
	near(s.b[0].rps.value, 0, 0);
	xm_wservice_free(&s);
}

/* Run a 3-backend service for secs seconds of 0.5 s ticks at these p99s. */
static void run(struct xm_wservice *s, double secs, const double *p99, const double *succ)
{
	struct xm_wsample x[8];

	for (double t = 0; t < secs; t += 0.5) {
		for (unsigned int i = 0; i < s->n; i++) {
			uint64_t req = 50;
			uint64_t fail = succ ? (uint64_t)llround(req * (1 - succ[i])) : 0;

			sample(&x[i], req, fail, p99[i], 100 * 0.5 * p99[i] / 3);
		}
		xm_wservice_tick(s, x, 0.5);
	}
}

static void rr_is_equal(void **st)
{
	struct xm_wservice s;
	double p99[3] = { 0.01, 0.1, 1 };

	xm_wservice_init(&s, xm_weight_algo_find("round-robin"), NULL, 3);
	run(&s, 10, p99, NULL);
	for (int i = 0; i < 3; i++)
		near(s.b[i].weight, 1.0 / 3, 1e-12);
	xm_wservice_free(&s);
}

static void slow_backend_loses_share(void **st)
{
	const char *algos[] = { "l3", "l3-peak", "c3", "l3x" };
	double p99[3] = { 0.05, 0.05, 0.5 };

	for (unsigned int a = 0; a < 4; a++) {
		struct xm_wservice s;

		xm_wservice_init(&s, xm_weight_algo_find(algos[a]), NULL, 3);
		run(&s, 60, p99, NULL);
		/* Same latency, same weight; ten times slower, much less. */
		near(s.b[0].weight, s.b[1].weight, 1e-9);
		assert_true(s.b[2].weight < s.b[0].weight / 4);
		/* The floor keeps it sampled. */
		assert_true(s.b[2].weight > 0);
		near(s.b[0].weight + s.b[1].weight + s.b[2].weight, 1, 1e-9);
		xm_wservice_free(&s);
	}
}

static void failing_backend_loses_share(void **st)
{
	const char *algos[] = { "l3", "l3x" };
	double p99[3] = { 0.05, 0.05, 0.05 };
	double succ[3] = { 1, 1, 0.5 };

	for (unsigned int a = 0; a < 2; a++) {
		struct xm_wservice s;

		xm_wservice_init(&s, xm_weight_algo_find(algos[a]), NULL, 3);
		run(&s, 60, p99, succ);
		/* L_est = 0.05 + 0.6 (2 - 1) = 0.65 vs 0.05. */
		near(s.b[2].l_est, 0.65, 0.02);
		assert_true(s.b[2].weight < s.b[0].weight / 4);
		xm_wservice_free(&s);
	}
	/* c3 ignores failures (as in the paper's adaptation). */
	struct xm_wservice s;

	xm_wservice_init(&s, xm_weight_algo_find("c3"), NULL, 3);
	run(&s, 60, p99, succ);
	near(s.b[2].weight, s.b[0].weight, 0.02);
	xm_wservice_free(&s);
}

static void dead_backend_gets_nothing(void **st)
{
	struct xm_wservice s;
	struct xm_wsample x[3];

	xm_wservice_init(&s, xm_weight_algo_find("l3"), NULL, 3);
	for (int i = 0; i < 3; i++)
		sample(&x[i], 10, 0, 0.05, 1);
	x[1].alive = false;
	xm_wservice_tick(&s, x, 0.5);
	near(s.b[1].weight, 0, 0);
	near(s.b[0].weight, 0.5, 1e-9);
	xm_wservice_free(&s);
}

static void idle_backend_drifts_to_defaults(void **st)
{
	struct xm_wservice s;
	struct xm_wsample x[2];

	xm_wservice_init(&s, xm_weight_algo_find("l3"), NULL, 2);
	for (int t = 0; t < 120; t++) {
		sample(&x[0], 10, 0, 0.05, 0);
		sample(&x[1], 10, 5, 0.05, 0);
		xm_wservice_tick(&s, x, 0.5);
	}
	assert_true(s.b[1].latency.value < 0.06);
	assert_true(s.b[1].success.value < 0.6);
	/* Backend 1 goes quiet: first nothing moves (idle_after = 10 s)... */
	for (int t = 0; t < 19; t++) {
		sample(&x[0], 10, 0, 0.05, 0);
		sample(&x[1], 0, 0, -1, 0);
		xm_wservice_tick(&s, x, 0.5);
	}
	assert_true(s.b[1].latency.value < 0.06);
	/* ...then it drifts back: half way to 5 s after one half-life. */
	double before = s.b[1].latency.value;
	for (int t = 0; t < 11; t++) {
		sample(&x[0], 10, 0, 0.05, 0);
		sample(&x[1], 0, 0, -1, 0);
		xm_wservice_tick(&s, x, 0.5);
	}
	near(s.b[1].latency.value, before + (5 - before) / 2, 0.01);
	for (int t = 0; t < 400; t++) {
		sample(&x[0], 10, 0, 0.05, 0);
		sample(&x[1], 0, 0, -1, 0);
		xm_wservice_tick(&s, x, 0.5);
	}
	near(s.b[1].latency.value, 5, 0.01);
	near(s.b[1].success.value, 1, 0.01);
	xm_wservice_free(&s);
}

/* After a step change, how many ticks until the slow backend's share halves. */
static int ticks_to_halve(const char *algo, bool rate_control)
{
	const struct xm_weight_algo *a = xm_weight_algo_find(algo);
	struct xm_weight_params p;
	struct xm_wservice s;
	struct xm_wsample x[3];
	double before;
	int t;

	xm_weight_params_default(&p);
	a->tune(&p);
	p.rate_control = rate_control;
	xm_wservice_init(&s, xm_weight_algo_find(algo), &p, 3);
	for (t = 0; t < 120; t++) {
		for (int i = 0; i < 3; i++)
			sample(&x[i], 10, 0, 0.05, 0.3);
		xm_wservice_tick(&s, x, 0.5);
	}
	before = s.b[2].weight;
	for (t = 1; t < 200; t++) {
		for (int i = 0; i < 2; i++)
			sample(&x[i], 10, 0, 0.05, 0.3);
		/* Replica 2 turns 10x slower: few completions, in-flight piles up. */
		sample(&x[2], t < 2 ? 0 : 2, 0, t < 2 ? -1 : 0.5, 0.3 + 10 * t);
		if (x[2].inflight > 10)
			x[2].inflight = 10;
		xm_wservice_tick(&s, x, 0.5);
		if (s.b[2].weight <= before / 2)
			break;
	}
	xm_wservice_free(&s);
	return t;
}

static void step_change_reaction(void **st)
{
	int x = ticks_to_halve("l3x", true);
	/* Without rate control (which also reacts to the lost completions). */
	int l3 = ticks_to_halve("l3", false), l3p = ticks_to_halve("l3-peak", false);

	print_message("ticks to halve: l3 %d l3-peak %d l3x %d\n", l3, l3p, x);
	/* l3x halves the share in the first tick (Little's-law bound). */
	assert_int_equal(x, 1);
	/* The peak filter reacts on the first slow sample. */
	assert_true(l3p <= 2);
	/* The plain EWMA takes more ticks. */
	assert_true(l3 > l3p);
}

/*
 * Pooled connections: a backend turns slow, its requests pile up on its one
 * connection (in flight: 1, so no stall bound) and none completes yet; only
 * the age of its oldest request in flight says so. l3x believes it in the
 * very tick.
 */
static void l3x_oldest_request_in_flight(void **st)
{
	struct xm_wservice s;
	struct xm_wsample x[3];

	xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, 3);
	for (int t = 0; t < 20; t++) {
		for (int i = 0; i < 3; i++)
			sample(&x[i], 10, 0, 0.02, 1);
		xm_wservice_tick(&s, x, 0.5);
	}
	assert_true(s.b[2].weight > 0.25);
	for (int i = 0; i < 3; i++)
		sample(&x[i], 10, 0, 0.02, 1);
	sample(&x[2], 0, 0, -1, 1);
	x[2].oldest = 0.4; /* 20x the others' p99, nothing completed */
	xm_wservice_tick(&s, x, 0.5);
	assert_true(s.b[2].l_est >= 0.4);
	assert_true(s.b[2].weight < 0.05);
	xm_wservice_free(&s);
}

static void l3x_outlier_goes_to_floor(void **st)
{
	struct xm_wservice s;
	double p99[4] = { 0.05, 0.05, 0.05, 0.3 };
	struct xm_wsample x[4];

	xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, 4);
	for (int t = 0; t < 60; t++) {
		for (int i = 0; i < 4; i++)
			sample(&x[i], 10, 0, p99[i], 0.5);
		xm_wservice_tick(&s, x, 0.5);
	}
	/* 6x the median: at the floor, 5 % of the mean weight. */
	double mean = 0.25;
	assert_true(s.b[3].weight < 0.06 * mean * 1.2);
	xm_wservice_free(&s);
}

static void rate_control_in_service(void **st)
{
	struct xm_wservice on, off;
	struct xm_weight_params p;
	struct xm_wsample x[2];
	int t;

	xm_weight_params_default(&p);
	p.rate_control = true;
	xm_wservice_init(&on, xm_weight_algo_find("l3"), &p, 2);
	p.rate_control = false;
	xm_wservice_init(&off, xm_weight_algo_find("l3"), &p, 2);
	for (t = 0; t < 100; t++) {
		sample(&x[0], 50, 0, 0.05, 1);
		sample(&x[1], 50, 0, 0.2, 1);
		xm_wservice_tick(&on, x, 0.5);
		xm_wservice_tick(&off, x, 0.5);
	}
	/* Steady rate: the same weights. */
	near(on.b[0].weight, off.b[0].weight, 1e-3);
	/* Load doubles: rate control pulls toward equal shares. */
	sample(&x[0], 100, 0, 0.05, 1);
	sample(&x[1], 100, 0, 0.2, 1);
	xm_wservice_tick(&on, x, 0.5);
	xm_wservice_tick(&off, x, 0.5);
	assert_true(on.rc_change > 0.5);
	assert_true(on.b[0].weight < off.b[0].weight);
	/* Load falls: the fast backend gets more. */
	for (t = 0; t < 100; t++) {
		sample(&x[0], 100, 0, 0.05, 1);
		sample(&x[1], 100, 0, 0.2, 1);
		xm_wservice_tick(&on, x, 0.5);
		xm_wservice_tick(&off, x, 0.5);
	}
	sample(&x[0], 25, 0, 0.05, 1);
	sample(&x[1], 25, 0, 0.2, 1);
	xm_wservice_tick(&on, x, 0.5);
	xm_wservice_tick(&off, x, 0.5);
	assert_true(on.rc_change < -0.5);
	assert_true(on.b[0].weight > off.b[0].weight);
	xm_wservice_free(&on);
	xm_wservice_free(&off);
}

static void params_parse(void **st)
{
	struct xm_weight_params p;
	char err[200];
	json_t *o;
	unsigned int tick;

	/* Defaults and the algorithm's tuning. */
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), NULL, &p, err, sizeof(err)), 0);
	near(p.hl_latency, 2, 0);
	near(p.latency_exponent, 2, 0);
	assert_int_equal(p.latency_filter, XM_FILTER_PEAK);
	/* Overrides keep the rest. */
	o = json_pack("{s:f, s:s, s:b}", "penalty_s", 1.2, "latency_filter", "ewma",
		      "rate_control", 0);
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3"), o, &p, err, sizeof(err)), 0);
	near(p.penalty, 1.2, 0);
	assert_int_equal(p.latency_filter, XM_FILTER_EWMA);
	assert_false(p.rate_control);
	near(p.hl_latency, 5, 0);
	json_decref(o);
	/* Errors name the parameter. */
	o = json_pack("{s:f}", "floor", 2.0);
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3"), o, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "params.floor"));
	json_decref(o);
	o = json_pack("{s:i}", "flor", 1);
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3"), o, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "params.flor: unknown"));
	json_decref(o);
	o = json_pack("{s:s}", "latency_filter", "median");
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3"), o, &p, err, sizeof(err)), -EINVAL);
	json_decref(o);
	/* Which algorithms the loop owns. */
	assert_true(xm_weight_algo_is_dynamic("l3"));
	assert_true(xm_weight_algo_is_dynamic("l3x"));
	assert_false(xm_weight_algo_is_dynamic("round-robin"));
	assert_false(xm_weight_algo_is_dynamic("static"));
	/* What the config accepts and which algorithm means equal weights: from the ops table. */
	assert_true(xm_lb_algo_known("static"));
	for (unsigned int i = 0; xm_weight_algos[i]; i++)
		assert_true(xm_lb_algo_known(xm_weight_algos[i]->name));
	assert_false(xm_lb_algo_known("rr"));
	assert_false(xm_lb_algo_known("fastest"));
	assert_true(xm_lb_algo_equal_weights("round-robin"));
	assert_false(xm_lb_algo_equal_weights("l3"));
	assert_false(xm_lb_algo_equal_weights("static"));
	/* The top-level section. */
	assert_int_equal(xm_weighting_conf_parse(NULL, &tick, err, sizeof(err)), 0);
	assert_int_equal(tick, 500);
	o = json_pack("{s:i}", "tick_ms", 100);
	assert_int_equal(xm_weighting_conf_parse(o, &tick, err, sizeof(err)), 0);
	assert_int_equal(tick, 100);
	json_decref(o);
	o = json_pack("{s:i}", "tick_ms", 5);
	assert_int_equal(xm_weighting_conf_parse(o, &tick, err, sizeof(err)), -EINVAL);
	json_decref(o);
}

/* The agent's config rejects bad weighting settings with their location. */
static void config_locations(void **st)
{
	static const char bad_param[] =
		"{\"services\": [{\"vip\": \"10.96.0.1\", \"port\": 80, \"algorithm\": \"l3x\",\n"
		" \"params\": {\"floor\": 7}, \"backends\": []}]}\n";
	static const char bad_algo[] =
		"{\"services\": [{\"vip\": \"10.96.0.1\", \"port\": 80, \"algorithm\": \"l4\"}]}";
	static const char bad_tick[] = "{\"weighting\": {\"tick_ms\": 0}}";
	static const char good[] =
		"{\"weighting\": {\"tick_ms\": 250}, \"services\": [{\"vip\": \"10.96.0.1\", "
		"\"port\": 80, \"algorithm\": \"l3-peak\", \"params\": {\"penalty_s\": 1}}]}";
	struct xm_lb_conf c;
	char err[600];

	assert_int_equal(xm_lb_conf_parse("f.json", bad_param, strlen(bad_param), &c, err,
					  sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "f.json:2:"));
	assert_non_null(strstr(err, "params.floor"));
	assert_int_equal(xm_lb_conf_parse("f.json", bad_algo, strlen(bad_algo), &c, err,
					  sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "l3x"));
	assert_int_equal(xm_lb_conf_parse("f.json", bad_tick, strlen(bad_tick), &c, err,
					  sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "tick_ms"));
	assert_int_equal(xm_lb_conf_parse("f.json", good, strlen(good), &c, err, sizeof(err)), 0);
	assert_int_equal(c.tick_ms, 250);
	assert_string_equal(c.svc[0].algorithm, "l3-peak");
	xm_lb_conf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ewma_half_life_is_halfway),
		cmocka_unit_test(ewma_eq1),
		cmocka_unit_test(peak_jumps_up_decays_down),
		cmocka_unit_test(valley_drops_at_once),
		cmocka_unit_test(first_sample_adopted_or_not),
		cmocka_unit_test(drift_goes_to_default),
		cmocka_unit_test(l3_alg1),
		cmocka_unit_test(l3_rate_control_figure4),
		cmocka_unit_test(l3_rate_control_rise_and_flat),
		cmocka_unit_test(floor_raises_low_weights),
		cmocka_unit_test(names_and_unknown),
		cmocka_unit_test(defaults_documented),
		cmocka_unit_test(rr_is_equal),
		cmocka_unit_test(slow_backend_loses_share),
		cmocka_unit_test(failing_backend_loses_share),
		cmocka_unit_test(dead_backend_gets_nothing),
		cmocka_unit_test(idle_backend_drifts_to_defaults),
		cmocka_unit_test(step_change_reaction),
		cmocka_unit_test(l3x_outlier_goes_to_floor),
		cmocka_unit_test(l3x_oldest_request_in_flight),
		cmocka_unit_test(rate_control_in_service),
		cmocka_unit_test(params_parse),
		cmocka_unit_test(config_locations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
