// SPDX-License-Identifier: MIT
/*
 * The rebalancing plan with backends that have no samples yet (user/lib/
 * rebal.c, measured): such a backend's latency estimate is the prior
 * default_latency (5 s), which must neither lift the typical estimate that
 * slow_factor / fast_factor compare against nor make the backend itself
 * look far slower. CI saw test_lb_rebalance.sh fail on this twice: a
 * replica that got no pooled connection early kept 5 s, and the really
 * slow replica was never urgent.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rebal.h"

#define MAXB 4
#define PRIOR 5.0 /* default_latency */

struct mplan {
	struct xm_rebal_conf c;
	struct xm_rebal_svc sv;
	uint32_t held[MAXB], q[MAXB];
	double w[MAXB], l_est[MAXB];
	bool measured[MAXB];
	struct xm_rebal_track tr[MAXB];
	unsigned int n;
};

/*
 * n backends of 20 connections each, equal target shares, all measured at
 * 10 ms. The slow-now rule is left out (no p50s): this is about estimates.
 */
static void mplan_init(struct mplan *p, unsigned int n)
{
	memset(p, 0, sizeof(*p));
	xm_rebal_conf_default(&p->c);
	/* these tests count urgent quotas of the per-tick share (urgent_share 1: test_rebal_self.c) */
	p->c.urgent_share = 0.5;
	p->c.enabled = true;
	p->c.max_per_s = 100; /* the rate bound is not what this is about */
	p->sv.tokens = 100;
	p->n = n;
	for (unsigned int i = 0; i < n; i++) {
		p->held[i] = 20;
		p->w[i] = 1.0 / n;
		p->l_est[i] = 0.010;
		p->measured[i] = true;
	}
}

/* Backend i's weight fell to the floor (0.05), the others share the rest. */
static void mplan_slow_weight(struct mplan *p, unsigned int slow)
{
	for (unsigned int i = 0; i < p->n; i++)
		p->w[i] = i == slow ? 0.05 : 0.95 / (p->n - 1);
}

static unsigned int mtick(struct mplan *p, bool with_flags)
{
	return xm_rebal_plan_now(&p->c, &p->sv, 0.5, 0, p->held, p->w, p->l_est,
				 with_flags ? p->measured : NULL, NULL, NULL, NULL, NULL, p->tr, p->q,
				 p->n);
}

/*
 * Three replicas, one never measured (5 s), one slow (100 ms, 10x the
 * fast one): the slow one is urgent at the second tick (XM_REBAL_FAR_TICKS).
 * Without the flags the median is 100 ms and nothing is ever urgent.
 */
static void unmeasured_does_not_hide_slow_of_three(void **st)
{
	struct mplan p;

	mplan_init(&p, 3);
	p.l_est[1] = PRIOR;
	p.measured[1] = false;
	p.held[1] = 0; /* it got no connection early: that is why it has no samples */
	p.l_est[2] = 0.100;
	mplan_slow_weight(&p, 2);
	for (int t = 0; t < XM_REBAL_FAR_TICKS; t++)
		mtick(&p, true);
	assert_true(p.tr[2].urgent);
	assert_int_equal(p.q[2], 10); /* share_per_tick 0.5 x 20 */
	assert_false(p.tr[0].urgent);
	assert_false(p.tr[1].urgent);
	/* The prior counted as an estimate (main's behaviour): never urgent. */
	mplan_init(&p, 3);
	p.l_est[1] = PRIOR;
	p.held[1] = 0;
	p.l_est[2] = 0.100;
	mplan_slow_weight(&p, 2);
	for (int t = 0; t < 4; t++)
		assert_int_equal(mtick(&p, false), 0);
	assert_false(p.tr[2].urgent);
}

/*
 * Four replicas, two of them unmeasured: the typical estimate is that of
 * the two measured ones (10 ms), not one of the priors' lower median with
 * the slow one (100 ms; the mean of the middle two, 2.55 s, until now).
 */
static void unmeasured_does_not_hide_slow_of_four(void **st)
{
	struct mplan p;

	mplan_init(&p, 4);
	p.l_est[1] = p.l_est[3] = PRIOR;
	p.measured[1] = p.measured[3] = false;
	p.l_est[2] = 0.100;
	mplan_slow_weight(&p, 2);
	for (int t = 0; t < XM_REBAL_FAR_TICKS; t++)
		mtick(&p, true);
	assert_true(p.tr[2].urgent);
	assert_int_equal(p.q[2], 10);
	assert_int_equal(p.q[1] + p.q[3], 0);
	mplan_init(&p, 4);
	p.l_est[1] = p.l_est[3] = PRIOR;
	p.l_est[2] = 0.100;
	mplan_slow_weight(&p, 2);
	for (int t = 0; t < 4; t++)
		mtick(&p, false);
	assert_false(p.tr[2].urgent);
}

/*
 * An unmeasured backend holding connections (an idle pool that has not sent
 * a request on them yet) is not "far slower" by its prior: it keeps them.
 * Without the flags it was urgent and lost connections it never used.
 */
static void unmeasured_keeps_its_connections(void **st)
{
	struct mplan p;

	mplan_init(&p, 3);
	p.l_est[1] = PRIOR;
	p.measured[1] = false;
	p.w[0] = p.w[2] = 0.475;
	p.w[1] = 0.05; /* the floor: its weight came from the prior too */
	for (int t = 0; t < 6; t++) {
		assert_int_equal(mtick(&p, true), 0);
		assert_false(p.tr[1].urgent);
	}
	mplan_init(&p, 3);
	p.l_est[1] = PRIOR;
	p.w[0] = p.w[2] = 0.475;
	p.w[1] = 0.05;
	mtick(&p, false);
	assert_true(mtick(&p, false) > 0);
	assert_true(p.tr[1].urgent);
}

/* Fewer than XM_REBAL_MIN_MEASURED measured: no typical estimate, no one slow or far. */
static void one_measured_is_no_typical(void **st)
{
	struct mplan p;

	mplan_init(&p, 3);
	p.l_est[0] = p.l_est[1] = PRIOR;
	p.measured[0] = p.measured[1] = false;
	p.l_est[2] = 0.100;
	mplan_slow_weight(&p, 2);
	p.w[2] = 0.05; /* over its share by far */
	p.w[0] = p.w[1] = 0.475;
	for (int t = 0; t < 6; t++) {
		assert_int_equal(mtick(&p, true), 0);
		assert_false(p.tr[2].urgent);
	}
	/* slow_factor 0 still means any backend over its share, measured or not. */
	p.c.slow_factor = 0;
	p.c.fast_factor = 0;
	mtick(&p, true);
	assert_true(mtick(&p, true) > 0);
	assert_true(p.q[2] > 0);
}

/*
 * Two measured: the typical estimate is the faster one's (the lower
 * median). The mean of the two, which the median of two was, is never
 * exceeded 2x by the slower one: a service of two backends never shed.
 */
static void two_measured_compare_with_the_faster(void **st)
{
	struct mplan p;

	mplan_init(&p, 2);
	p.l_est[1] = 0.100;
	mplan_slow_weight(&p, 1);
	for (int t = 0; t < XM_REBAL_FAR_TICKS; t++)
		mtick(&p, true);
	assert_true(p.tr[1].urgent);
	assert_int_equal(p.q[1], 10);
	assert_false(p.tr[0].urgent);
	/* 1.8x the faster: neither urgent nor shed, however long (the weights wobble). */
	mplan_init(&p, 2);
	p.l_est[1] = 0.018;
	p.w[0] = 0.8;
	p.w[1] = 0.2;
	for (int t = 0; t < 6; t++)
		assert_int_equal(mtick(&p, true), 0);
}

/*
 * The spikes scenario between two spikes of its slow cluster (seventh
 * session's trace): 9 replicas, the three just out of their spike at the
 * floor with their peaks (700-800 ms, no request in this tick: no p50), one
 * more there with 560 ms; the five that answered at 130-240 ms, one of them
 * (a tail spike) at 450 ms. The typical estimate of this tick's answers is
 * 173 ms: the tail-spiking one is far (> 346 ms) and urgent at the second
 * tick. With the stale peaks in it (typical_of_tick 0: 450 ms) it never was.
 */
static void stale_estimates_do_not_lift_typical(void **st)
{
	double l_est[9] = { 0.558, 0.450, 0.128, 0.725, 0.755, 0.822, 0.197, 0.173, 0.173 };
	double p50[9] = { -1, 0.082, 0.053, -1, -1, -1, 0.078, 0.090, 0.099 };
	uint32_t held[9] = { 0, 3, 8, 0, 0, 0, 3, 2, 3 }, q[9];
	double w[9] = { 0.02, 0.06, 0.35, 0.013, 0.012, 0.01, 0.143, 0.201, 0.191 };
	struct xm_rebal_track tr[9];
	struct xm_rebal_svc sv = { .tokens = 100 };
	struct xm_rebal_conf c;

	for (int off = 0; off < 2; off++) {
		xm_rebal_conf_default(&c);
		c.urgent_share = 0.5; /* the per-tick share, as counted below */
		c.enabled = true;
		c.max_per_s = 100;
		c.typical_of_tick = !off;
		memset(tr, 0, sizeof(tr));
		for (int t = 0; t < XM_REBAL_FAR_TICKS; t++)
			xm_rebal_plan_now(&c, &sv, 0.5, 0, held, w, l_est, NULL, p50, NULL, NULL, NULL, tr, q,
					  9);
		if (off) {
			assert_false(tr[1].urgent);
			assert_int_equal(q[1], 0);
			continue;
		}
		assert_true(tr[1].urgent);
		assert_int_equal(q[1], 1); /* max(1, floor(0.5 x 3)) */
		for (int i = 0; i < 9; i++)
			if (i != 1)
				assert_false(tr[i].urgent);
	}
}

/*
 * now_factor's typical latency is the same lower median: of 4 p50s (50, 60,
 * 70 and the slow one's 250 ms) 60 ms, so 250 ms (4.2x) is slow now; the
 * mean of the middle two (65 ms: 3.8x) let it pass.
 */
static void now_rule_lower_median(void **st)
{
	double p50[4] = { 0.05, 0.06, 0.07, 0.25 };
	struct mplan p;

	mplan_init(&p, 4);
	xm_rebal_plan_now(&p.c, &p.sv, 0.5, 0, p.held, p.w, p.l_est, p.measured, p50, NULL, NULL, NULL,
			  p.tr, p.q, 4);
	assert_true(p.tr[3].now);
	assert_true(p.tr[3].urgent);
	assert_int_equal(p.q[3], 10);
	for (int i = 0; i < 3; i++)
		assert_false(p.tr[i].now);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unmeasured_does_not_hide_slow_of_three),
		cmocka_unit_test(unmeasured_does_not_hide_slow_of_four),
		cmocka_unit_test(unmeasured_keeps_its_connections),
		cmocka_unit_test(one_measured_is_no_typical),
		cmocka_unit_test(two_measured_compare_with_the_faster),
		cmocka_unit_test(stale_estimates_do_not_lift_typical),
		cmocka_unit_test(now_rule_lower_median),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
