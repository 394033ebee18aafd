// SPDX-License-Identifier: MIT
/*
 * fall_gap (user/lib/weight.c sample_gap()): a latency sample below the
 * estimate weighs at most as one that followed fall_gap seconds, so a slow
 * backend that was not measured for a while is not made fast by its first
 * calm tick; a sample above it keeps its full gap.
 */
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

#define N 3
#define TICK 0.5

static void init(struct xm_wservice *s, const char *algo, double fall_gap)
{
	struct xm_weight_params p;
	char err[200];
	json_t *o = json_pack("{s:f}", "fall_gap_s", fall_gap);

	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find(algo), o, &p, err, sizeof(err)),
			 0);
	json_decref(o);
	assert_int_equal(xm_wservice_init(s, xm_weight_algo_find(algo), &p, N), 0);
}

/*
 * secs of ticks: backends 0 and 1 answer in 10 ms; backend 2 in lat2 s, or
 * completes nothing (lat2 < 0: no sample, as when its connections were
 * retired).
 */
static void run_every(struct xm_wservice *s, double secs, double lat2, double dt)
{
	struct xm_wsample x[N];

	for (double t = 0; t < secs; t += dt) {
		for (unsigned int i = 0; i < N; i++) {
			double lat = i == 2 ? lat2 : 0.010;

			memset(&x[i], 0, sizeof(x[i]));
			x[i].alive = true;
			x[i].p99 = x[i].p50 = x[i].p99_2nd = -1;
			if (lat < 0)
				continue;
			x[i].requests = 20;
			x[i].p99 = x[i].p50 = lat;
			x[i].inflight = 0;
		}
		xm_wservice_tick(s, x, dt);
	}
}

static void run(struct xm_wservice *s, double secs, double lat2)
{
	run_every(s, secs, lat2, TICK);
}

/*
 * The traced case: backend 2 at 170 ms, then 8 s without a sample (less than
 * idle_after: no drift), then one calm tick (12 ms). Without the rule that
 * tick takes it to ~20 ms and a weight share of 0.15; with fall_gap one
 * tick it stays near its slow value (145 ms), an outlier: a share of 0.06.
 */
static void calm_tick_after_a_gap_is_one_tick_of_evidence(void **st)
{
	struct xm_wservice off, on;

	init(&off, "l3x", 0);
	init(&on, "l3x", TICK);
	run(&off, 10, 0.170);
	run(&on, 10, 0.170);
	run(&off, 8, -1);
	run(&on, 8, -1);
	run(&off, TICK, 0.012);
	run(&on, TICK, 0.012);
	assert_true(off.b[2].latency.value < 0.025);
	assert_true(on.b[2].latency.value > 0.120);
	assert_true(on.b[2].weight < off.b[2].weight / 2);
	xm_wservice_free(&off);
	xm_wservice_free(&on);
}

/* Calm samples every tick still bring it back: evidence accumulates. */
static void steady_calm_samples_converge(void **st)
{
	struct xm_wservice off, on;

	init(&off, "l3x", 0);
	init(&on, "l3x", TICK);
	run(&off, 10, 0.170);
	run(&on, 10, 0.170);
	run(&off, 5, -1);
	run(&on, 5, -1);
	run(&off, 20, 0.012);
	run(&on, 20, 0.012);
	assert_true(fabs(on.b[2].latency.value - 0.012) < 0.002);
	assert_true(fabs(on.b[2].weight - off.b[2].weight) < 0.01);
	xm_wservice_free(&off);
	xm_wservice_free(&on);
}

/*
 * Slow news keeps its full gap. With an EWMA latency filter (l3: no peak
 * filter that would jump anyway) a slow sample after a gap moves the
 * estimate exactly as without the rule.
 */
static void slow_sample_after_a_gap_is_not_capped(void **st)
{
	struct xm_wservice off, on;

	init(&off, "l3", 0);
	init(&on, "l3", TICK);
	run(&off, 10, 0.010);
	run(&on, 10, 0.010);
	run(&off, 5, -1);
	run(&on, 5, -1);
	run(&off, TICK, 0.200);
	run(&on, TICK, 0.200);
	assert_true(on.b[2].latency.value > 0.090);
	assert_true(on.b[2].latency.value == off.b[2].latency.value);
	xm_wservice_free(&off);
	xm_wservice_free(&on);
}

/*
 * A busy service whose table holds is weighed every 2 s (weighdue.h): each
 * weighing's p99 is 2 s of samples, its gap the weighing's dt. The rule must
 * not take that for one tick of evidence: recovery as fast as without it.
 */
static void long_weighing_interval_is_not_capped(void **st)
{
	struct xm_wservice off, on;

	init(&off, "l3x", 0);
	init(&on, "l3x", TICK);
	run_every(&off, 10, 0.170, 2.0);
	run_every(&on, 10, 0.170, 2.0);
	run_every(&off, 2.0, 0.012, 2.0);
	run_every(&on, 2.0, 0.012, 2.0);
	assert_true(off.b[2].latency.value < 0.100);
	assert_true(on.b[2].latency.value == off.b[2].latency.value);
	xm_wservice_free(&off);
	xm_wservice_free(&on);
}

/* Out of range: a clear error naming the parameter. */
static void bad_value_is_refused(void **st)
{
	struct xm_weight_params p;
	char err[200] = "";
	json_t *o = json_pack("{s:f}", "fall_gap_s", -1.0);

	assert_int_not_equal(
		xm_weight_params_parse(xm_weight_algo_find("l3x"), o, &p, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "fall_gap_s"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(calm_tick_after_a_gap_is_one_tick_of_evidence),
		cmocka_unit_test(steady_calm_samples_converge),
		cmocka_unit_test(slow_sample_after_a_gap_is_not_capped),
		cmocka_unit_test(long_weighing_interval_is_not_capped),
		cmocka_unit_test(bad_value_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
