// SPDX-License-Identifier: MIT
/*
 * A backend without samples of its own (user/lib/weight.c, measured): its
 * latency estimate is default_latency, a prior, and must not count as a
 * latency where backends are compared (l3x's outlier median; the
 * rebalancing plan, tests/unit/test_rebal_measured.c). With l3x's
 * unmeasured_typical (the default since session 21) it is weighed at the
 * typical estimate of the measured backends instead of the prior.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "weight.h"

#define N 4

/* One tick of dt: backend i completed 50 requests at p99[i] (< 0: none). */
static void tick(struct xm_wservice *s, const double *p99, const double *oldest, double dt)
{
	struct xm_wsample x[N];

	for (unsigned int i = 0; i < N; i++) {
		memset(&x[i], 0, sizeof(x[i]));
		x[i].alive = true;
		x[i].p99 = x[i].p50 = p99[i];
		x[i].requests = p99[i] >= 0 ? 50 : 0;
		x[i].oldest = oldest ? oldest[i] : 0;
		x[i].inflight = x[i].oldest > 0;
	}
	xm_wservice_tick(s, x, dt);
}

/* l3x with unmeasured_typical set (default 1). */
static void init_l3x(struct xm_wservice *s, double unmeasured_typical)
{
	const struct xm_weight_algo *a = xm_weight_algo_find("l3x");
	struct xm_weight_params p;

	xm_weight_params_default(&p);
	a->tune(&p);
	assert_true(p.unmeasured_typical == 1);
	p.unmeasured_typical = unmeasured_typical;
	assert_int_equal(xm_wservice_init(s, a, &p, N), 0);
}

/* Measured: a request completed within idle_after, or one in flight beyond the prior. */
static void measured_flag(void **st)
{
	double p99[N] = { 0.01, 0.01, 0.01, -1 }, none[N] = { -1, -1, -1, -1 };
	double oldest[N] = { 0, 0, 0, 6 };
	struct xm_wservice s;

	init_l3x(&s, 0);
	for (unsigned int i = 0; i < N; i++)
		assert_false(s.b[i].measured);
	tick(&s, p99, NULL, 0.5);
	assert_true(s.b[0].measured);
	assert_false(s.b[3].measured);
	assert_true(fabs(s.b[3].l_est - s.p.default_latency) < 1e-9);
	/* In flight for 6 s, longer than the prior: l3x's age bound is a measurement. */
	tick(&s, p99, oldest, 0.5);
	assert_true(s.b[3].measured);
	/* Nothing completed for idle_after: its estimate drifts back to the prior. */
	for (double t = 0; t < s.p.idle_after + 0.5; t += 0.5)
		tick(&s, none, NULL, 0.5);
	assert_false(s.b[0].measured);
	xm_wservice_free(&s);
}

/*
 * l3x's outliers (L_est > 4x the median go to the floor): the median of the
 * measured backends. 10, 10 and 45 ms and one without a request (5 s): the
 * median is 10 ms, so 45 ms (4.5x) is an outlier, at the floor with the
 * unmeasured one (weighed at the prior, unmeasured_typical 0). With the
 * prior in the median (27.5 ms) it was not.
 */
static void outlier_median_of_measured(void **st)
{
	double p99[N] = { 0.010, 0.010, 0.045, -1 };
	struct xm_wservice s;

	init_l3x(&s, 0);
	tick(&s, p99, NULL, 0.5);
	assert_true(fabs(s.b[2].weight - s.b[3].weight) < 1e-9);
	assert_true(s.b[2].weight < s.b[0].weight * 0.03);
	/* 35 ms (3.5x) is no outlier: its weight is L^-2's, above the floor. */
	xm_wservice_free(&s);
	p99[2] = 0.035;
	init_l3x(&s, 0);
	tick(&s, p99, NULL, 0.5);
	assert_true(s.b[2].weight > s.b[3].weight * 1.5);
	xm_wservice_free(&s);
}

/*
 * A pool that never reached a backend: 10, 20 and 30 ms measured, one
 * without a request. Weighed at the median of the measured (20 ms) it gets
 * the 20 ms backend's weight, not the floor, and is still no measurement:
 * the outlier median and the rebalancing plan leave it out. With the prior
 * (unmeasured_typical 0) it is at the floor.
 */
static void unmeasured_weighed_typical(void **st)
{
	double p99[N] = { 0.010, 0.020, 0.030, -1 };
	struct xm_wservice s;

	init_l3x(&s, 1);
	tick(&s, p99, NULL, 0.5);
	assert_false(s.b[3].measured);
	assert_true(fabs(s.b[3].l_est - 0.020) < 1e-9);
	assert_true(fabs(s.b[3].weight - s.b[1].weight) < 1e-9);
	assert_true(s.b[3].weight > s.b[2].weight);
	xm_wservice_free(&s);

	init_l3x(&s, 0);
	tick(&s, p99, NULL, 0.5);
	assert_true(fabs(s.b[3].l_est - s.p.default_latency) < 1e-9);
	assert_true(s.b[3].weight < s.b[2].weight * 0.2); /* the floor */
	xm_wservice_free(&s);
}

/*
 * A backend measured slow (200 ms against 10 ms) whose connections are gone:
 * while its samples are recent (within idle_after) it stays slow; once they
 * are old it is weighed as typical again, so a pool's reconnects measure it
 * anew, instead of drifting to the 5 s prior and the floor for good. A fast
 * one (5 ms) that went quiet keeps its own lower estimate.
 */
static void unmeasured_slow_one_forgiven_after_idle(void **st)
{
	double busy[N] = { 0.200, 0.010, 0.010, 0.005 };
	double quiet[N] = { -1, 0.010, 0.010, -1 };
	struct xm_wservice s;

	for (int typical = 1; typical >= 0; typical--) {
		double t;

		init_l3x(&s, typical);
		for (t = 0; t < 5; t += 0.5)
			tick(&s, busy, NULL, 0.5);
		assert_true(s.b[0].weight < s.b[1].weight * 0.1);
		for (t = 0; t < s.p.idle_after - 1; t += 0.5)
			tick(&s, quiet, NULL, 0.5);
		assert_true(s.b[0].measured);
		assert_true(s.b[0].weight < s.b[1].weight * 0.5);
		for (; t < s.p.idle_after + 1; t += 0.5)
			tick(&s, quiet, NULL, 0.5);
		assert_false(s.b[0].measured);
		assert_false(s.b[3].measured);
		if (typical) {
			assert_true(fabs(s.b[0].l_est - 0.010) < 1e-9);
			assert_true(fabs(s.b[0].weight - s.b[1].weight) < 1e-9);
			assert_true(s.b[3].l_est <= 0.010);
			assert_true(s.b[3].weight >= s.b[1].weight);
		} else {
			assert_true(s.b[0].l_est > 0.100);
			assert_true(s.b[0].weight < s.b[1].weight * 0.1);
		}
		xm_wservice_free(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(measured_flag),
		cmocka_unit_test(outlier_median_of_measured),
		cmocka_unit_test(unmeasured_weighed_typical),
		cmocka_unit_test(unmeasured_slow_one_forgiven_after_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
