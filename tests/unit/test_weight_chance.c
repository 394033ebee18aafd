// SPDX-License-Identifier: MIT
/*
 * l3x's success estimate and chance failures (user/lib/weight.c, the param
 * success_alpha, default 0.01 for l3x): a 5xx that the service's usual rate
 * gives a backend by chance leaves its success filter at the service's rate,
 * like every other backend's, so it moves no weight and rewrites no table;
 * a burst on one backend (30 %) still halves its share in the tick it shows,
 * a backend that keeps failing 9 % still loses its share, and one that fails
 * much less than the others keeps its advantage.
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
#define TICK 0.5
#define TICK_NS 500000000ULL
#define PER_TICK 10 /* requests per backend and tick: 20 rps */
#define FROM 200    /* the tick the scenario's backend 3 changes */
#define TICKS 260

/* Two-sided: both tails, decayed counts, the chi-square shortcut. */
static const struct {
	double f, n, p;
	bool differ;
} cases[] = {
	{ 1, 40, 0.01, false },    /* one 5xx in 40 at a 1 % rate: chance */
	{ 2, 40, 0.01, false },
	{ 6, 20, 0.01, true },     /* 30 % of a tick's 20: a burst */
	{ 3, 10, 0.01, true },
	{ 1.4, 144, 0.01, false }, /* a 5 s window at 20 rps, the service's rate */
	{ 13, 144, 0.01, true },   /* 9 % over it */
	{ 0, 144, 0.01, false },   /* none at 1 %: 1.4 expected */
	{ 0, 144, 0.042, true },   /* none while the others fail 4.2 %: better, really */
	{ 0, 14, 0.042, false },   /* at 2 rps: not enough to tell */
	{ 40, 144, 0.27, false },  /* everyone fails alike */
	{ 1, 20, 0.001, false },   /* a clean service's first 5xx in 20 */
	{ 2, 20, 0.001, true },    /* two are not chance */
	{ 0, 0, 0.01, false },
	{ 5, 10, 1, false },
	{ 5, 10, 0, false },
};

/* The bound without the shortcut, for the grid below. */
static bool differ_exact(double f, double n, double p, double thr)
{
	double q = f >= n ? 1 : f / n;
	double kl = (q > 0 ? q * log(q / p) : 0) + (q < 1 ? (1 - q) * log((1 - q) / (1 - p)) : 0);

	return n * kl > thr;
}

static void counts_differ(void **st)
{
	double thr = -log(0.01);

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
		if (xm_counts_differ(cases[k].f, cases[k].n, cases[k].p, thr) != cases[k].differ)
			fail_msg("%g of %g at %g: expected %d", cases[k].f, cases[k].n, cases[k].p,
				 cases[k].differ);
	/* The chi-square shortcut never changes the answer (KL <= chi-square). */
	for (int n = 1; n <= 400; n += 7)
		for (int f = 0; f <= n; f += 1 + n / 50)
			for (double p = 0.0005; p < 0.9; p *= 1.7)
				if (xm_counts_differ(f, n, p, thr) != differ_exact(f, n, p, thr))
					fail_msg("%d of %d at %g: shortcut wrong", f, n, p);
}

static double rnd01(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

enum scenario { STEADY, BURST, NINE, OTHERS_FAIL, CLEAN };

struct outcome {
	int writes;         /* table writes in ticks [20, FROM) */
	double worst_share; /* smallest share of a backend in [20, FROM), of its fair share */
	int half;           /* ticks from FROM until backend 3's table share halved (-1: never) */
	double share3;      /* backend 3's mean share of the table in [FROM + 20, TICKS) */
	double w[NB];       /* the weights at the end */
	int rate_moves;     /* weighings in [20, FROM) that moved the service's chance rate */
};

/*
 * l3x on NB backends with equal latencies, PER_TICK requests per backend and
 * tick, each failing at 1 % (fixed seed), weighed every tick, tables written
 * by the loop's rule. From FROM: BURST backend 3 fails 30 % for 12 ticks,
 * NINE backend 3 fails 9 %, OTHERS_FAIL every backend but 3 fails 30 %;
 * CLEAN: no failures at all.
 */
static void run(double alpha, enum scenario sc, int k, struct outcome *o)
{
	struct xm_weight_params p;
	struct xm_wservice s;
	struct xm_wsample x[NB];
	unsigned long long seed = 0x17c4a7ceULL * (k + 1) + 99;
	__u32 table[NB] = { 0 }, want[NB], before = 0;
	double w[NB];
	__u64 now = 0, written = 0;
	bool have = false;
	char err[200];

	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), NULL, &p, err,
						sizeof(err)), 0);
	p.success_alpha = alpha;
	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), &p, NB), 0);
	memset(o, 0, sizeof(*o));
	o->worst_share = 1;
	o->half = -1;
	for (int t = 0; t < TICKS; t++, now += TICK_NS) {
		for (int i = 0; i < NB; i++) {
			double rate = sc == CLEAN ? 0 : 0.01;

			if (t >= FROM && sc == BURST && i == 3 && t < FROM + 12)
				rate = 0.3;
			if (t >= FROM && sc == NINE && i == 3)
				rate = 0.09;
			if (t >= FROM && sc == OTHERS_FAIL && i != 3)
				rate = 0.3;
			memset(&x[i], 0, sizeof(x[i]));
			x[i].alive = true;
			x[i].requests = PER_TICK;
			x[i].started = PER_TICK;
			for (int k = 0; k < PER_TICK; k++)
				x[i].failures += rnd01(&seed) < rate;
			/* Steady latencies, a little apart: failures are the only noise. */
			x[i].p99 = 0.030 + 0.001 * i;
			x[i].p50 = 0.010 + 0.001 * i;
			x[i].p99_2nd = -1;
		}
		double rate = s.chance_rate;

		xm_wservice_tick(&s, x, TICK);
		o->rate_moves += t >= 20 && t < FROM && s.chance_rate != rate;
		for (int i = 0; i < NB; i++)
			w[i] = s.b[i].place;
		xm_lb_slots_apportion(w, NB, want);
		if (!have || xm_table_write_due(table, want, NB, p.table_deadband, now - written)) {
			memcpy(table, want, sizeof(table));
			written = now;
			have = true;
			o->writes += t >= 20 && t < FROM;
		}
		for (int i = 0; t >= 20 && t < FROM && i < NB; i++)
			if ((double)table[i] * NB / XM_LB_SLOTS < o->worst_share)
				o->worst_share = (double)table[i] * NB / XM_LB_SLOTS;
		if (t == FROM - 1)
			before = table[3];
		/* Halved, or at the floor (0.05 of a fair share: 5 slots). */
		if (t >= FROM && o->half < 0 && (table[3] * 2 <= before || table[3] <= 8))
			o->half = t - FROM + 1;
		if (t >= FROM + 20)
			o->share3 += (double)table[3] / XM_LB_SLOTS / (TICKS - FROM - 20);
	}
	memcpy(o->w, w, sizeof(w));
	xm_wservice_free(&s);
}

#define SEEDS 10

/*
 * At a steady 1 %: a tenth of the table writes. Before, each chance 5xx
 * dropped a backend's valley filter to 0.9 and its share with it.
 */
static void chance_failures_keep_the_table(void **st)
{
	int on = 0, off = 0, moves = 0;

	for (int k = 0; k < SEEDS; k++) {
		struct outcome o1, o0;

		run(0.01, STEADY, k, &o1);
		run(0, STEADY, k, &o0);
		on += o1.writes;
		off += o0.writes;
		moves += o1.rate_moves;
	}
	print_message("1 %% failures, %d seeds x %d ticks: table writes %d (success_alpha 0.01) "
		      "against %d (0); the chance rate moved in %d weighings\n", SEEDS, FROM - 20, on,
		      off, moves);
	assert_true(off >= SEEDS * 20);
	assert_true(on * 5 <= off);
	/* The rate the chance backends are fed holds still (each move moves every penalty). */
	assert_true(moves <= SEEDS * (FROM - 20) / 20);
}

/*
 * A 30 % burst on one backend, weighed every tick (10 requests each): halved
 * in the first tick with three of ten; one or two are a chance failure's
 * size, and then the 5 s window tells it within a few ticks (the agent's
 * busy wait banks 2-4 ticks at 20 rps: build/tests/weigh_moves' episode
 * halves in one weighing). Before, in the first tick with any failure.
 */
static void burst_still_counts_at_once(void **st)
{
	int on1 = 0, on3 = 0, off1 = 0;

	for (int k = 0; k < SEEDS; k++) {
		struct outcome o1, o0;

		run(0.01, BURST, k, &o1);
		run(0, BURST, k, &o0);
		on1 += o1.half == 1;
		on3 += o1.half >= 1 && o1.half <= 5;
		off1 += o0.half == 1;
	}
	print_message("30 %% burst on backend 3, %d seeds: share halved in 1 tick %d times, in 1-5 "
		      "%d times (success_alpha 0.01); in 1 tick %d times (0)\n", SEEDS, on1, on3,
		      off1);
	assert_true(off1 >= SEEDS * 6 / 10);
	assert_true(on1 >= SEEDS * 4 / 10);
	assert_true(on3 == SEEDS);
}

/* A backend that keeps failing 9 %: it loses its share within a few ticks, as before. */
static void steady_failer_loses_share(void **st)
{
	for (int k = 0; k < SEEDS; k++) {
		struct outcome on, off;

		run(0.01, NINE, k, &on);
		run(0, NINE, k, &off);
		print_message("backend 3 failing 9 %%: mean share %.3f (success_alpha 0.01) against "
			      "%.3f (0); halved after %d / %d ticks\n", on.share3, off.share3,
			      on.half, off.half);
		assert_true(off.share3 < 0.05);
		assert_true(on.share3 < 0.05);
	}
}

/*
 * All others fail 30 %, backend 3 1 %: the best one keeps most of the
 * traffic (0.1 is its fair share; the other nine's floors hold 0.45).
 */
static void better_backend_keeps_advantage(void **st)
{
	for (int k = 0; k < SEEDS; k++) {
		struct outcome on, off;

		run(0.01, OTHERS_FAIL, k, &on);
		run(0, OTHERS_FAIL, k, &off);
		print_message("others failing 30 %%: backend 3's mean share %.3f (success_alpha 0.01) "
			      "against %.3f (0)\n", on.share3, off.share3);
		assert_true(off.share3 > 0.4);
		assert_true(on.share3 > 0.4);
	}
}

/*
 * A backend whose window is significant (3 of 10 in each of 4 ticks) and
 * whose next ticks show no failure: its estimate is capped at the window's
 * success, not taken back toward 1 by the clean ticks (0: it recovers).
 */
static void window_caps_clean_ticks(void **st)
{
	double after[2];

	for (int on = 0; on < 2; on++) {
		struct xm_weight_params p;
		struct xm_wservice s;
		struct xm_wsample x[NB];
		char err[200];

		assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), NULL, &p, err,
							sizeof(err)), 0);
		p.success_alpha = on ? 0.01 : 0;
		assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), &p, NB), 0);
		for (int t = 0; t < 60; t++) {
			for (int i = 0; i < NB; i++)
				x[i] = (struct xm_wsample){ .requests = PER_TICK, .started = PER_TICK,
							    .failures = i == 3 && t >= 40 && t < 44 ? 3 : 0,
							    .p99 = 0.030, .p50 = 0.010, .p99_2nd = -1,
							    .alive = true };
			xm_wservice_tick(&s, x, TICK);
		}
		after[on] = s.b[3].success.value;
		/* At most the window's success (12 failures, 16 ticks decayed), which it follows. */
		if (on)
			assert_true(after[on] <= 1 - s.b[3].fail_win / s.b[3].req_win + 1e-9);
		xm_wservice_free(&s);
	}
	print_message("success 16 clean ticks after a burst: %.3f (success_alpha 0.01), %.3f (0)\n",
		      after[1], after[0]);
	assert_true(after[1] < after[0] - 0.02);
}

/*
 * One failed request of one is no burst: the others fail 1 in 120 (0.83 %),
 * where one of one passes the bound at 0.01 (P = 0.0083); its backend gets
 * the chance rate like all the others.
 */
static void one_of_one_is_chance(void **st)
{
	struct xm_weight_params p;
	struct xm_wservice s;
	struct xm_wsample x[NB];
	char err[200];

	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), NULL, &p, err,
						sizeof(err)), 0);
	p.success_alpha = 0.01;
	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), &p, NB), 0);
	for (int t = 0; t < 41; t++) {
		for (int i = 0; i < NB; i++)
			x[i] = (struct xm_wsample){ .requests = 120, .started = 120, .failures = 1,
						    .p99 = 0.030, .p50 = 0.010, .p99_2nd = -1,
						    .alive = true };
		if (t == 40)
			x[3].requests = x[3].started = 1;
		xm_wservice_tick(&s, x, TICK);
	}
	print_message("one 5xx of one request: success %.4f, the others' %.4f\n",
		      s.b[3].success.value, s.b[0].success.value);
	assert_true(fabs(s.b[3].success.value - s.b[0].success.value) < 0.001);
	xm_wservice_free(&s);
}

/* No failures: the same weights, to the bit. */
static void no_failures_no_change(void **st)
{
	struct outcome on, off;

	run(0.01, CLEAN, 0, &on);
	run(0, CLEAN, 0, &off);
	assert_memory_equal(on.w, off.w, sizeof(on.w));
	assert_int_equal(on.writes, off.writes);
}

/* On for l3x (since session 19), off elsewhere; a service param. */
static void param(void **st)
{
	struct xm_weight_params p;
	json_t *j = json_pack("{s:f}", "success_alpha", 0.05);
	char err[200];

	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), NULL, &p, err,
						sizeof(err)), 0);
	assert_true(p.success_alpha == 0.01);
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3"), NULL, &p, err,
						sizeof(err)), 0);
	assert_true(p.success_alpha == 0);
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), j, &p, err,
						sizeof(err)), 0);
	assert_true(p.success_alpha == 0.05);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counts_differ),
		cmocka_unit_test(chance_failures_keep_the_table),
		cmocka_unit_test(burst_still_counts_at_once),
		cmocka_unit_test(steady_failer_loses_share),
		cmocka_unit_test(better_backend_keeps_advantage),
		cmocka_unit_test(window_caps_clean_ticks),
		cmocka_unit_test(one_of_one_is_chance),
		cmocka_unit_test(no_failures_no_change),
		cmocka_unit_test(param),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
