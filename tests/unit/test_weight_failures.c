// SPDX-License-Identifier: MIT
/*
 * l3x believes a tick's failures at once only when they are significant
 * against the service's failure rate (user/lib/weight.c, fail_alpha): a 5xx
 * that a 1 % error rate gives by chance is not a failing replica, and must
 * not rewrite the table; a replica that starts failing is still out of the
 * table in the tick it is seen.
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

#define NB 10
#define TICK_NS 500000000ULL
#define BAD_FROM 200 /* tick when backend 3 starts failing half its requests */

/* failures of requests, the service's rate, alpha: significant? */
static const struct {
	uint64_t f, n;
	double p, alpha;
	bool significant;
} tail_cases[] = {
	{ 1, 10, 0.01, 0.001, false },   /* one 5xx in ten at a 1 % rate: P = 0.096, noise */
	{ 2, 10, 0.01, 0.001, false },
	{ 3, 10, 0.01, 0.001, true },
	{ 5, 10, 0.01, 0.001, true },    /* half of them: P ~ 2e-8 */
	{ 1, 1, 0.01, 0.001, false },    /* one request that failed says little */
	{ 2, 2, 0.01, 0.001, true },     /* two of two do */
	{ 150, 10000, 0.01, 0.001, true },
	{ 110, 10000, 0.01, 0.001, false },
	{ 0, 10, 0.01, 0.001, false },
	{ 1, 100, 0.01, 0.001, false },  /* no more than the service's rate */
	{ 5, 10, 1, 0.001, false },
	{ 2, 10, 0.01, 0.05, true },     /* a looser level believes more */
};

static void binomial_tail_bound(void **st)
{
	for (size_t k = 0; k < sizeof(tail_cases) / sizeof(tail_cases[0]); k++) {
		bool got = xm_failures_significant(tail_cases[k].f, tail_cases[k].n,
						   tail_cases[k].p, tail_cases[k].alpha);

		if (got != tail_cases[k].significant)
			fail_msg("%llu of %llu at %g, alpha %g: %d",
				 (unsigned long long)tail_cases[k].f,
				 (unsigned long long)tail_cases[k].n, tail_cases[k].p,
				 tail_cases[k].alpha, got);
	}
}

static double rnd01(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * l3x on NB backends, 10 requests per backend per tick, each failing with
 * probability 1 % (half of backend 3's from tick BAD_FROM); latencies
 * steady, so failures are the only noise. As the loop runs it, with the
 * default deadband: table writes before BAD_FROM, the smallest share of a
 * healthy backend's fair share there (1 = all equal), and the tick (after
 * BAD_FROM) in which backend 3 is written out of the table (-1: never).
 */
static void run(double fail_alpha, int *writes, double *worst_share, int *bad_tick)
{
	struct xm_weight_params p;
	struct xm_wservice s;
	struct xm_wsample x[NB];
	unsigned long long seed = 0x51ed270b;
	__u32 table[NB] = { 0 }, want[NB];
	double w[NB];
	__u64 now = 0, written = 0;
	bool have = false;
	char err[200];

	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), NULL, &p, err,
						sizeof(err)), 0);
	p.fail_alpha = fail_alpha;
	p.success_alpha = 0; /* fail_alpha alone (session 7); success_alpha: test_weight_chance.c */
	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), &p, NB), 0);
	*writes = 0;
	*worst_share = 1;
	*bad_tick = -1;
	for (int t = 0; t < BAD_FROM + 20; t++, now += TICK_NS) {
		for (int i = 0; i < NB; i++) {
			double rate = i == 3 && t >= BAD_FROM ? 0.5 : 0.01;

			memset(&x[i], 0, sizeof(x[i]));
			x[i].alive = true;
			x[i].requests = 10;
			for (int k = 0; k < 10; k++)
				x[i].failures += rnd01(&seed) < rate;
			x[i].p99 = 0.015;
			x[i].p50 = 0.005;
		}
		xm_wservice_tick(&s, x, 0.5);
		for (int i = 0; i < NB; i++)
			w[i] = s.b[i].place;
		xm_lb_slots_apportion(w, NB, want);
		if (!have || xm_table_write_due(table, want, NB, p.table_deadband, now - written)) {
			memcpy(table, want, sizeof(table));
			written = now;
			have = true;
			*writes += t < BAD_FROM;
			if (t >= BAD_FROM && *bad_tick < 0 && table[3] <= XM_LB_SLOTS / NB / 4)
				*bad_tick = t - BAD_FROM;
		}
		for (int i = 0; t >= 20 && t < BAD_FROM && i < NB; i++)
			if (w[i] * NB < *worst_share)
				*worst_share = w[i] * NB;
	}
	xm_wservice_free(&s);
}

static void chance_failures_do_not_move_weights(void **st)
{
	int writes0, writes1, bad0, bad1;
	double share0, share1;

	run(0, &writes0, &share0, &bad0);
	run(0.001, &writes1, &share1, &bad1); /* the level measured (off by default) */
	print_message("1 %% failures, %d ticks: table writes %d (every failure at once) / %d "
		      "(significant ones); smallest share of fair %.2f / %.2f; failing replica "
		      "out after %d / %d ticks\n",
		      BAD_FROM, writes0, writes1, share0, share1, bad0, bad1);
	/*
	 * Before: a chance 5xx took a healthy backend to a tenth of its share
	 * (the penalty still moves it, gradually: L3's P = 0.6 s).
	 */
	assert_true(share0 < 0.15);
	assert_true(share1 > 0.2);
	assert_true(writes1 < writes0);
	/* A replica that starts failing half its requests: out in the tick it is seen. */
	assert_int_equal(bad0, 0);
	assert_int_equal(bad1, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(binomial_tail_bound),
		cmocka_unit_test(chance_failures_do_not_move_weights),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
