// SPDX-License-Identifier: MIT
/*
 * A backend without samples of its own (user/lib/weight.c, measured): its
 * latency estimate is default_latency, a prior, and must not count as a
 * latency where backends are compared (l3x's outlier median; the
 * rebalancing plan, tests/unit/test_rebal_measured.c).
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

/* Measured: a request completed within idle_after, or one in flight beyond the prior. */
static void measured_flag(void **st)
{
	double p99[N] = { 0.01, 0.01, 0.01, -1 }, none[N] = { -1, -1, -1, -1 };
	double oldest[N] = { 0, 0, 0, 6 };
	struct xm_wservice s;

	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, N), 0);
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
 * unmeasured one. With the prior in the median (27.5 ms) it was not.
 */
static void outlier_median_of_measured(void **st)
{
	double p99[N] = { 0.010, 0.010, 0.045, -1 };
	struct xm_wservice s;

	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, N), 0);
	tick(&s, p99, NULL, 0.5);
	assert_true(fabs(s.b[2].weight - s.b[3].weight) < 1e-9);
	assert_true(s.b[2].weight < s.b[0].weight * 0.03);
	/* 35 ms (3.5x) is no outlier: its weight is L^-2's, above the floor. */
	xm_wservice_free(&s);
	p99[2] = 0.035;
	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, N), 0);
	tick(&s, p99, NULL, 0.5);
	assert_true(s.b[2].weight > s.b[3].weight * 1.5);
	xm_wservice_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(measured_flag),
		cmocka_unit_test(outlier_median_of_measured),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
