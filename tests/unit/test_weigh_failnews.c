// SPDX-License-Identifier: MIT
/*
 * New failures weigh a service at once only when they are news for one
 * backend (user/lib/weighdue.c xm_weigh_failures_news(), the service's
 * due_fail_alpha): a burst on one backend is weighed in the tick it shows,
 * also when the service's sums dilute it ten-fold; a chance 5xx at the
 * service's steady rate waits for the samples weighing; a service with no
 * recent failures takes its first one as news.
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
#include "probe_counts.h"
#include "tablewrite.h"
#include "weighdue.h"
#include "weight.h"

#define N 10
#define TICK 0.5
#define LAT 0.040   /* s */
#define PER_TICK 10 /* requests per backend and tick: 20 rps */
#define ALPHA 0.01  /* the default due_fail_alpha */

/*
 * A reference after weighings of busy ticks in which every backend failed
 * fail of its PER_TICK requests every every-th tick (fail 0: none): the
 * service's recent rate. Backend counters in b[], their sum in *sum.
 */
static void history(struct xm_weigh_ref *ref, struct xm_lb_probe *b, struct xm_lb_probe *sum,
		    unsigned int fail, int every)
{
	struct xm_wservice s;

	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, N), 0);
	memset(ref, 0, sizeof(*ref));
	memset(b, 0, N * sizeof(*b));
	for (int t = 1; t <= 40; t++) {
		memset(sum, 0, sizeof(*sum));
		for (int i = 0; i < N; i++) {
			xt_probe_requests(&b[i], PER_TICK, LAT, t % every == 0 && i == t % N ? fail : 0);
			xm_lb_probe_add(sum, &b[i]);
		}
		xm_weigh_ref_update(ref, sum, &s);
	}
	xm_wservice_free(&s);
}

/* At a steady 1 %: one 5xx among a backend's ten requests is not news, it waits. */
static void chance_failure_waits(void **st)
{
	struct xm_lb_probe b[N], then[N], sum;
	struct xm_weigh_ref ref;
	bool quiet;

	/* One failure per tick over the service's 100 requests: 1 %. */
	history(&ref, b, &sum, 1, 1);
	assert_true(fabs(ref.failed / ref.ended - 0.01) < 1e-3);
	memcpy(then, b, sizeof(b));
	xt_probe_requests(&b[3], PER_TICK, LAT, 1);
	for (int i = 0; i < N; i++)
		if (i != 3)
			xt_probe_requests(&b[i], PER_TICK, LAT, 0);
	memset(&sum, 0, sizeof(sum));
	for (int i = 0; i < N; i++)
		xm_lb_probe_add(&sum, &b[i]);
	assert_true(xm_weigh_new_failures(&ref, &sum));
	for (int i = 0; i < N; i++)
		assert_false(xm_weigh_failures_news(&ref, &b[i], &then[i], ALPHA));
	/* Judged noise: the service waits for its samples (its busy wait is 0 here: due now). */
	ref.busy_wait = 3 * TICK;
	assert_int_equal(xm_weigh_service_due(&ref, &sum, N, TICK, &quiet, true), XM_WEIGH_WAIT);
	/* Not judged (due_fail_alpha 0): at once, as before. */
	assert_int_equal(xm_weigh_service_due(&ref, &sum, N, TICK, &quiet, false),
			 XM_WEIGH_FAILURE);
	/* Judged noise, the busy wait over: a samples weighing, which folds the failure in. */
	assert_int_equal(xm_weigh_service_due(&ref, &sum, N, 3 * TICK, &quiet, true),
			 XM_WEIGH_SAMPLES);
}

/*
 * A backend failing 3 of its 10 (a 30 % burst) is news at the same steady
 * 1 %, though the service's sums (3 of 100) are not significant: judged per
 * backend, a burst on one backend of ten is not diluted.
 */
static void burst_on_one_backend_is_news(void **st)
{
	struct xm_lb_probe b[N], then[N], sum;
	struct xm_weigh_ref ref;

	history(&ref, b, &sum, 1, 1);
	memcpy(then, b, sizeof(b));
	for (int i = 0; i < N; i++)
		xt_probe_requests(&b[i], PER_TICK, LAT, i == 7 ? 3 : 0);
	assert_false(xm_failures_significant(3, N * PER_TICK, ref.failed / ref.ended, ALPHA));
	assert_true(xm_weigh_failures_news(&ref, &b[7], &then[7], ALPHA));
	assert_false(xm_weigh_failures_news(&ref, &b[6], &then[6], ALPHA));
	/* A refused connect fails without a completed request: still counted, still news. */
	memcpy(then, b, sizeof(b));
	b[2].conn_refused += 4;
	assert_true(xm_weigh_failures_news(&ref, &b[2], &then[2], ALPHA));
}

/*
 * Banked: a burst too small for one tick becomes news as its failures add up
 * (2 of 10 at 1 % is not, by the conservative bound; 4 of 20 is), while a
 * chance failure banked with more samples grows less likely to be news.
 */
static void banked_burst_becomes_news(void **st)
{
	struct xm_lb_probe b[N], then[N], sum;
	struct xm_weigh_ref ref;

	history(&ref, b, &sum, 1, 1);
	memcpy(then, b, sizeof(b));
	xt_probe_requests(&b[5], PER_TICK, LAT, 2);
	xt_probe_requests(&b[4], PER_TICK, LAT, 1);
	assert_false(xm_weigh_failures_news(&ref, &b[5], &then[5], ALPHA));
	xt_probe_requests(&b[5], PER_TICK, LAT, 2);
	xt_probe_requests(&b[4], PER_TICK, LAT, 0);
	assert_true(xm_weigh_failures_news(&ref, &b[5], &then[5], ALPHA));
	assert_false(xm_weigh_failures_news(&ref, &b[4], &then[4], ALPHA));
}

/*
 * The reference is the service's recent rate: without failures for a while,
 * one 5xx in ten requests is news (weighed at once, as before); after a
 * while at 5 %, even two in ten are not.
 */
static void rate_is_the_services_recent_one(void **st)
{
	struct xm_lb_probe b[N], then[N], sum;
	struct xm_weigh_ref ref;

	history(&ref, b, &sum, 0, 1);
	assert_true(ref.ended > 0 && ref.failed == 0);
	memcpy(then, b, sizeof(b));
	xt_probe_requests(&b[0], PER_TICK, LAT, 1);
	assert_true(xm_weigh_failures_news(&ref, &b[0], &then[0], ALPHA));

	history(&ref, b, &sum, 5, 1);
	assert_true(fabs(ref.failed / ref.ended - 0.05) < 5e-3);
	memcpy(then, b, sizeof(b));
	xt_probe_requests(&b[0], PER_TICK, LAT, 2);
	assert_false(xm_weigh_failures_news(&ref, &b[0], &then[0], ALPHA));
}

/*
 * The loop's cadence around one l3x service at 20 rps per backend and a
 * steady 1 % of failures (drawn per request, fixed seed), backend 7 failing
 * 30 % from tick 300 for 12 ticks: with due_fail_alpha the failures no
 * longer weigh it at once in most ticks, and backend 7's share still halves
 * in the tick its burst shows, as with every failure at once.
 */
struct cadence {
	int weighings, at_once, ticks_to_half;
};

static double rnd(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

static void run_cadence(double alpha, struct cadence *c)
{
	unsigned long long seed = 0x5eed;
	struct xm_lb_probe b[N], then[N], sum;
	struct xm_weigh_ref ref;
	struct xm_wsample x[N];
	struct xm_wservice s;
	__u64 acc[N] = { 0 }, accf[N] = { 0 };
	double waited = 0, w[N], before = 0;
	__u32 table[N], want[N];
	__u64 written_ns = 0;
	bool written = false;

	memset(c, 0, sizeof(*c));
	memset(b, 0, sizeof(b));
	memset(then, 0, sizeof(then));
	memset(&ref, 0, sizeof(ref));
	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, N), 0);
	for (int t = 0; t < 400; t++) {
		enum xm_weigh_why why = XM_WEIGH_FIRST;
		bool quiet = false, noise = false, rewritten = false;

		memset(&sum, 0, sizeof(sum));
		for (int i = 0; i < N; i++) {
			double p = i == 7 && t >= 300 && t < 312 ? 0.3 : 0.01;
			unsigned int f = 0;

			for (int k = 0; k < PER_TICK; k++)
				f += rnd(&seed) < p;
			xt_probe_requests(&b[i], PER_TICK, LAT * (1 + 0.1 * i), f);
			acc[i] += PER_TICK;
			accf[i] += f;
			xm_lb_probe_add(&sum, &b[i]);
		}
		waited += TICK;
		if (s.ticks) {
			if (alpha > 0 && xm_weigh_new_failures(&ref, &sum)) {
				noise = true;
				for (int i = 0; i < N; i++)
					noise &= !xm_weigh_failures_news(&ref, &b[i], &then[i], alpha);
			}
			why = xm_weigh_service_due(&ref, &sum, N, waited, &quiet, noise);
			xm_weigh_tick_seen(&ref, &sum);
		}
		if (why != XM_WEIGH_WAIT) {
			for (int i = 0; i < N; i++) {
				x[i] = (struct xm_wsample){ .requests = acc[i], .failures = accf[i],
							    .started = acc[i],
							    .p50 = LAT * (1 + 0.1 * i),
							    .p99 = LAT * (1 + 0.1 * i), .p99_2nd = -1,
							    .alive = true };
				acc[i] = accf[i] = 0;
			}
			xm_wservice_tick(&s, x, waited);
			xm_weigh_ref_update(&ref, &sum, &s);
			memcpy(then, b, sizeof(b));
			for (int i = 0; i < N; i++)
				w[i] = s.b[i].place;
			xm_lb_slots_apportion(w, N, want);
			if (!written || xm_table_write_due(table, want, N, s.p.table_deadband,
							   (__u64)(t * TICK * 1e9) - written_ns)) {
				memcpy(table, want, sizeof(table));
				written = rewritten = true;
				written_ns = (__u64)(t * TICK * 1e9);
			}
			xm_weigh_busy_next(&ref, why, waited, quiet, rewritten);
			waited = 0;
			if (t >= 100 && t < 300) {
				c->weighings++;
				c->at_once += why == XM_WEIGH_FAILURE;
			}
		}
		if (t == 299)
			before = table[7];
		if (t >= 300 && !c->ticks_to_half && table[7] * 2 <= before)
			c->ticks_to_half = t - 299;
	}
	xm_wservice_free(&s);
}

static void cadence_fewer_weighings_same_burst(void **st)
{
	struct cadence on, off;

	run_cadence(ALPHA, &on);
	run_cadence(0, &off);
	print_message("weighings per tick %.3f (at once for failures %.3f) against %.3f (%.3f); "
		      "backend 7's share halved after %d ticks against %d\n",
		      on.weighings / 200.0, on.at_once / 200.0, off.weighings / 200.0,
		      off.at_once / 200.0, on.ticks_to_half, off.ticks_to_half);
	/* At 20 rps x 10 backends at 1 %, most ticks bring a failure: every one at once before. */
	assert_true(off.at_once >= 200 / 2);
	assert_true(on.at_once <= 200 / 20);
	assert_true(on.weighings < off.weighings * 0.85);
	assert_true(off.ticks_to_half >= 1 && off.ticks_to_half <= 2);
	assert_true(on.ticks_to_half >= 1 && on.ticks_to_half <= off.ticks_to_half);
}

/* The param: on by default for every algorithm, 0 turns it off. */
static void param_default_on(void **st)
{
	struct xm_weight_params p;

	xm_weight_params_default(&p);
	assert_true(p.due_fail_alpha == ALPHA);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chance_failure_waits),
		cmocka_unit_test(burst_on_one_backend_is_news),
		cmocka_unit_test(banked_burst_becomes_news),
		cmocka_unit_test(rate_is_the_services_recent_one),
		cmocka_unit_test(cadence_fewer_weighings_same_burst),
		cmocka_unit_test(param_default_on),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
