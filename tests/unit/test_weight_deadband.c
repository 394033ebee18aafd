// SPDX-License-Identifier: MIT
/*
 * When the weighting loop rewrites a table (user/lib/tablewrite.c): a wobble
 * of noisy estimates is not written, a real move is, at once when it is big.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lbtable.h"
#include "tablewrite.h"
#include "weight.h"
#include "weightcfg.h"

#define NOW 0ULL
#define LATER (XM_TW_WAIT_NS + 1)
#define DB 0.05 /* the default deadband */

/* n backends sharing XM_LB_SLOTS as evenly as slots allow. */
static void even(__u32 *slots, unsigned int n)
{
	double w[n];

	for (unsigned int i = 0; i < n; i++)
		w[i] = 1;
	xm_lb_slots_apportion(w, n, slots);
}

/* Some backends gain and others lose 16 slots: 3 % of the traffic moves. */
static void wobble_is_not_written(void **st)
{
	__u32 t[10], w[10];

	even(t, 10);
	memcpy(w, t, sizeof(w));
	w[0] += 16, w[1] -= 16, w[2] += 16, w[3] -= 16;
	assert_false(xm_table_write_due(t, w, 10, DB, NOW));
	/* A wobble is rarely lasting; if it is, it is written after the wait. */
	assert_true(xm_table_write_due(t, w, 10, DB, LATER));
	/* Without a deadband every 8-slot move was written. */
	assert_true(xm_table_write_due(t, w, 10, 0, NOW));
	/* A smaller lasting wobble stays unwritten: the table is within D / 2. */
	memcpy(w, t, sizeof(w));
	w[0] += 10, w[1] -= 10;
	assert_false(xm_table_write_due(t, w, 10, DB, LATER));
	memcpy(w, t, sizeof(w));
	assert_false(xm_table_write_due(t, w, 10, DB, LATER));
}

/* A replica going bad (to the floor) is written in the tick it is seen. */
static void bad_replica_is_written_at_once(void **st)
{
	__u32 t[10], w[10];
	double wt[10];

	for (int i = 0; i < 10; i++)
		wt[i] = i == 4 ? 0.05 : 1;
	even(t, 10);
	xm_lb_slots_apportion(wt, 10, w);
	assert_true(xm_table_write_due(t, w, 10, DB, NOW));
	/* And its recovery. */
	assert_true(xm_table_write_due(w, t, 10, DB, NOW));
}

/*
 * In a large service one backend is a small share: it halving moves under 1 %
 * of the traffic, below any deadband, and must still be written at once.
 */
static void big_relative_move_in_large_service(void **st)
{
	__u32 t[100], w[100];

	even(t, 100); /* 10 or 11 slots each */
	memcpy(w, t, sizeof(w));
	w[7] = 1;
	for (__u32 k = t[7] - 1, i = 8; k; k--, i++)
		w[i]++;
	assert_true(xm_table_write_due(t, w, 100, DB, NOW));
	/* A move of a few slots is not a relative move that counts. */
	memcpy(w, t, sizeof(w));
	w[7] -= 5, w[8] += 5;
	assert_false(xm_table_write_due(t, w, 100, DB, NOW));
}

static void zero_crossing_is_written(void **st)
{
	__u32 t[3] = { 512, 511, 1 }, w[3] = { 512, 512, 0 };

	assert_true(xm_table_write_due(t, w, 3, DB, NOW));
	assert_true(xm_table_write_due(w, t, 3, DB, NOW));
	assert_true(xm_table_write_due(t, w, 3, 1, NOW));
}

/* Moves of the deadband or more are written at once, a third of it after the wait. */
static void deadband_bounds_the_error(void **st)
{
	__u32 t[4] = { 256, 256, 256, 256 }, w[4];

	memcpy(w, t, sizeof(w));
	w[0] += 52, w[1] -= 52; /* 5.1 % */
	assert_true(xm_table_write_due(t, w, 4, DB, NOW));
	memcpy(w, t, sizeof(w));
	w[0] += 40, w[1] -= 40; /* 3.9 % */
	assert_false(xm_table_write_due(t, w, 4, DB, NOW));
	assert_true(xm_table_write_due(t, w, 4, DB, LATER));
	assert_false(xm_table_write_due(t, w, 4, 0.1, LATER));
}

static void deadband_param(void **st)
{
	struct xm_weight_params p;
	char err[200];
	json_t *o;

	xm_weight_params_parse(xm_weight_algo_find("l3x"), NULL, &p, err, sizeof(err));
	assert_true(fabs(p.table_deadband - DB) < 1e-9);
	o = json_pack("{s:f}", "table_deadband", 0.0);
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3"), o, &p, err,
						sizeof(err)), 0);
	assert_true(p.table_deadband == 0);
	json_decref(o);
	o = json_pack("{s:f}", "table_deadband", 1.5);
	assert_int_not_equal(xm_weight_params_parse(xm_weight_algo_find("l3"), o, &p, err,
						    sizeof(err)), 0);
	assert_non_null(strstr(err, "table_deadband"));
	json_decref(o);
}

static double rnd01(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * l3x on 10 backends whose tick p99s are noisy (log-normal, as
 * tests/tools/fake_probes.c makes them), as the loop runs it: writes per
 * tick with deadband db, and the tick in which a replica that turns 20x
 * slower at tick 200 is written out of the table (-1: never).
 */
static void run_l3x(double db, int *writes, int *bad_tick, double *worst_tvd)
{
	struct xm_wservice s;
	struct xm_wsample x[10];
	unsigned long long seed = 0x9e3779b9;
	__u32 table[10] = { 0 }, want[10];
	double w[10];
	__u64 now = 0, written = 0;
	bool have = false;

	*writes = 0;
	*bad_tick = -1;
	*worst_tvd = 0;
	xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, 10);
	for (int t = 0; t < 400; t++, now += 500000000ULL) {
		for (int i = 0; i < 10; i++) {
			double u1 = rnd01(&seed), u2 = rnd01(&seed);
			double z = sqrt(-2 * log(u1 > 1e-12 ? u1 : 1e-12)) * cos(2 * M_PI * u2);
			double med = (5 + i) * 1e-3 * (i == 3 && t >= 200 ? 20 : 1);

			memset(&x[i], 0, sizeof(x[i]));
			x[i].alive = true;
			x[i].requests = 8;
			x[i].p99 = med * 3 * exp(0.3 * z);
			x[i].p50 = med;
			x[i].inflight = 1;
		}
		xm_wservice_tick(&s, x, 0.5);
		for (int i = 0; i < 10; i++)
			w[i] = s.b[i].place;
		xm_lb_slots_apportion(w, 10, want);
		if (!have || xm_table_write_due(table, want, 10, db, now - written)) {
			memcpy(table, want, sizeof(table));
			written = now;
			have = true;
			(*writes)++;
			if (t >= 200 && *bad_tick < 0 && table[3] <= 20)
				*bad_tick = t - 200;
		}
		if (t >= 20) {
			double tvd = 0;

			for (int i = 0; i < 10; i++)
				tvd += fabs((double)table[i] - want[i]) / 2 / XM_LB_SLOTS;
			*worst_tvd = tvd > *worst_tvd ? tvd : *worst_tvd;
		}
	}
	xm_wservice_free(&s);
}

static void noisy_l3x_fewer_writes_same_reaction(void **st)
{
	int w0, w1, bad0, bad1;
	double tvd0, tvd1;

	run_l3x(0, &w0, &bad0, &tvd0);
	run_l3x(DB, &w1, &bad1, &tvd1);
	print_message("writes in 400 ticks: no deadband %d, deadband %.2f %d; "
		      "slow replica out after %d / %d ticks; worst TVD %.3f / %.3f\n",
		      w0, DB, w1, bad0, bad1, tvd0, tvd1);
	/* A third fewer writes in this model (more in the bench: docs/benchmarks.md). */
	assert_true(w1 * 3 <= w0 * 2);
	/* The replica that turned slow is out of the table in the tick it is seen. */
	assert_int_equal(bad0, 0);
	assert_int_equal(bad1, 0);
	/* The table is never further than the deadband from what the weights ask. */
	assert_true(tvd1 <= DB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wobble_is_not_written),
		cmocka_unit_test(bad_replica_is_written_at_once),
		cmocka_unit_test(big_relative_move_in_large_service),
		cmocka_unit_test(zero_crossing_is_written),
		cmocka_unit_test(deadband_bounds_the_error),
		cmocka_unit_test(deadband_param),
		cmocka_unit_test(noisy_l3x_fewer_writes_same_reaction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
