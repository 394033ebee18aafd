// SPDX-License-Identifier: MIT
/*
 * The rebalancing plan's "slow right now" rule (user/lib/rebal.c,
 * now_factor): a backend whose p50 of this tick, or the age of its oldest
 * request in flight, is far above the service's typical p50 of this tick is
 * urgent in the first tick, before its latency estimate and its weight move.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rebal.h"

#define N 4

/*
 * 4 backends holding 20 connections each, equal target shares (the weights
 * have not moved yet), latency estimates alike (tail estimates that have
 * not seen the slow requests complete): only the latency now tells.
 */
struct now_plan {
	struct xm_rebal_conf c;
	struct xm_rebal_svc sv;
	uint32_t held[N], q[N];
	double w[N], l_est[N], p50[N], oldest[N];
	struct xm_rebal_track tr[N];
};

static void now_init(struct now_plan *p)
{
	memset(p, 0, sizeof(*p));
	xm_rebal_conf_default(&p->c);
	/* these tests count urgent quotas of the per-tick share (urgent_share 1: test_rebal_self.c) */
	p->c.urgent_share = 0.5;
	p->c.enabled = true;
	p->sv.tokens = 100;
	p->c.max_per_s = 100; /* the rate bound is tested below, on its own */
	for (int i = 0; i < N; i++) {
		p->held[i] = 20;
		p->w[i] = 1.0 / N;
		p->l_est[i] = 0.2;
		p->p50[i] = 0.05 + 0.01 * i; /* 50, 60, 70, 80 ms: median 65 ms */
		p->oldest[i] = 0.04;
	}
}

static unsigned int now_tick(struct now_plan *p)
{
	return xm_rebal_plan_now(&p->c, &p->sv, 0.5, 0, p->held, p->w, p->l_est, NULL, p->p50,
				 p->oldest, NULL, NULL, p->tr, p->q, N);
}

/* Its requests of this tick took 5x the typical p50: urgent in this tick, half its pool. */
static void slow_now_urgent_in_first_tick(void **st)
{
	struct now_plan p;

	now_init(&p);
	p.p50[3] = 0.35;
	assert_int_equal(now_tick(&p), 10); /* share_per_tick 0.5 x 20, not its excess 0 */
	assert_int_equal(p.q[3], 10);
	assert_true(p.tr[3].urgent);
	assert_true(p.tr[3].now);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(p.q[i], 0);
		assert_false(p.tr[i].urgent);
		assert_false(p.tr[i].now);
	}
	/* The rule off (main's behaviour): nothing, the estimates are alike. */
	now_init(&p);
	p.c.now_factor = 0;
	p.p50[3] = 0.35;
	for (int t = 0; t < 4; t++) {
		assert_int_equal(now_tick(&p), 0);
		assert_false(p.tr[3].urgent);
		assert_false(p.tr[3].now);
	}
}

/* No request of this tick completed, but one has been in flight for 300 ms. */
static void oldest_in_flight_counts(void **st)
{
	struct now_plan p;

	now_init(&p);
	p.p50[3] = -1;
	p.oldest[3] = 0.30; /* the median of the other three: 60 ms; 4x = 240 ms */
	assert_int_equal(now_tick(&p), 10);
	assert_true(p.tr[3].urgent);
	/* 200 ms in flight (3.3x): a calm replica's long request, not a spike. */
	now_init(&p);
	p.p50[3] = -1;
	p.oldest[3] = 0.20;
	assert_int_equal(now_tick(&p), 0);
	assert_false(p.tr[3].urgent);
}

/* Fewer than 3 backends with a p50 of this tick: no typical latency, no rule. */
static void needs_three_p50s(void **st)
{
	struct now_plan p;

	now_init(&p);
	p.p50[0] = p.p50[1] = -1;
	p.p50[3] = 0.5;
	assert_int_equal(now_tick(&p), 0);
	assert_false(p.tr[3].now);
	/* NULL inputs (xm_rebal_plan): the rule is off. */
	now_init(&p);
	p.p50[3] = 0.5;
	assert_int_equal(xm_rebal_plan(&p.c, &p.sv, 0.5, 0, p.held, p.w, p.l_est, p.tr, p.q, N), 0);
	assert_false(p.tr[3].now);
}

/*
 * A client's pool of 3, one connection on a backend slow now: by default
 * (min_conns 1) it is retired. With the old default of 4 nothing was, and
 * a poolidle client kept 1 of its 3 connections on bad-replica's 8x slower
 * replica for seconds (docs/benchmarks.md, session 17).
 */
static void small_pool_retires_by_default(void **st)
{
	struct now_plan p;

	now_init(&p);
	p.p50[3] = 0.5;
	p.held[0] = p.held[1] = 1;
	p.held[2] = 0;
	p.held[3] = 1;
	assert_int_equal(now_tick(&p), 1);
	assert_int_equal(p.q[3], 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(p.q[i], 0);
}

/*
 * The bounds still hold: min_conns, the token bucket, and a backend holding
 * nothing retires nothing (but keeps the mark, so its table share is cut).
 */
static void bounds_hold(void **st)
{
	struct now_plan p;

	now_init(&p);
	p.p50[3] = 0.5;
	p.sv.tokens = 3;
	p.c.max_per_s = 3; /* burst 3 */
	assert_int_equal(now_tick(&p), 3);
	now_init(&p);
	p.p50[3] = 0.5;
	for (int i = 0; i < N; i++)
		p.held[i] = 0;
	p.c.min_conns = 4;
	p.held[3] = 3; /* below min_conns (4) */
	assert_int_equal(now_tick(&p), 0);
	assert_false(p.tr[3].urgent);
	now_init(&p);
	p.p50[3] = 0.5;
	p.held[3] = 0;
	assert_int_equal(now_tick(&p), 0);
	assert_false(p.tr[3].urgent);
	assert_true(p.tr[3].now);
	/* A backend of 2 (of 14): one at a time (max(1, 0.5 x 2)). */
	now_init(&p);
	p.p50[3] = 0.5;
	p.held[0] = p.held[1] = p.held[2] = 4;
	p.held[3] = 2;
	assert_int_equal(now_tick(&p), 1);
	/* Over: the mark goes with it. */
	p.p50[3] = 0.07;
	assert_int_equal(now_tick(&p), 0);
	assert_false(p.tr[3].now);
	assert_false(p.tr[3].urgent);
}

/* While it is slow right now its table share is the floor; when it is over, its weight's. */
static void table_share_cut_while_slow_now(void **st)
{
	struct now_plan p;

	now_init(&p);
	p.p50[3] = 0.5;
	now_tick(&p);
	assert_true(fabs(xm_rebal_table_share(&p.tr[3], 0.25, 0.0125) - 0.0125) < 1e-12);
	assert_true(fabs(xm_rebal_table_share(&p.tr[0], 0.25, 0.0125) - 0.25) < 1e-12);
	/* Already below the floor: not raised. */
	assert_true(fabs(xm_rebal_table_share(&p.tr[3], 0.01, 0.0125) - 0.01) < 1e-12);
	p.p50[3] = 0.07;
	now_tick(&p);
	assert_true(fabs(xm_rebal_table_share(&p.tr[3], 0.25, 0.0125) - 0.25) < 1e-12);
	/* The rule off: never cut. */
	now_init(&p);
	p.c.now_factor = 0;
	p.p50[3] = 0.5;
	now_tick(&p);
	assert_true(fabs(xm_rebal_table_share(&p.tr[3], 0.25, 0.0125) - 0.25) < 1e-12);
}

/*
 * At the floor the backend gets almost no requests: a tick without a sample
 * of it keeps the mark (up to XM_REBAL_NOW_HOLD_TICKS), a calm p50 of its
 * own ends it at once.
 */
static void mark_holds_until_measured_calm(void **st)
{
	struct now_plan p;

	now_init(&p);
	p.p50[3] = 0.5;
	now_tick(&p);
	p.p50[3] = -1;
	p.oldest[3] = 0;
	for (int t = 0; t < XM_REBAL_NOW_HOLD_TICKS; t++) {
		assert_int_equal(now_tick(&p), 0); /* held, not urgent: nothing new to retire on */
		assert_true(p.tr[3].now);
		assert_false(p.tr[3].urgent);
	}
	now_tick(&p);
	assert_false(p.tr[3].now); /* the hold is bounded */
	/* Evidence again restarts it; a calm p50 ends it. */
	p.p50[3] = 0.5;
	now_tick(&p);
	p.p50[3] = -1;
	now_tick(&p);
	assert_true(p.tr[3].now);
	p.p50[3] = 0.06;
	now_tick(&p);
	assert_false(p.tr[3].now);
}

/*
 * All four were slow (100 ms) until a moment inside this tick: backend 2's
 * p50 of the tick happens to be of its slow requests, the others' of their
 * fast ones. It was as slow as all of them, not slow now (the holdread run
 * of test_lb_rebalance.sh marked a fast replica so). If it stays slow in
 * the next tick while the others are fast, it is.
 */
static void shared_slow_start_is_not_slow_now(void **st)
{
	struct now_plan p;

	now_init(&p);
	for (int i = 0; i < N; i++)
		p.p50[i] = p.oldest[i] = 0.1;
	assert_int_equal(now_tick(&p), 0);
	for (int i = 0; i < N; i++) {
		p.p50[i] = 0.005 + 0.001 * i;
		p.oldest[i] = 0.004;
	}
	p.p50[2] = 0.1; /* 100 ms: 16x the typical 6 ms of this tick */
	p.oldest[2] = 0.09;
	assert_int_equal(now_tick(&p), 0);
	assert_false(p.tr[2].now);
	assert_false(p.tr[2].urgent);
	/* Still 100 ms a tick later, the others fast: slow now. */
	assert_int_equal(now_tick(&p), 10);
	assert_true(p.tr[2].now);
	assert_true(p.tr[2].urgent);
	/* now_last_tick 0 (the rule before): marked in the tick the slowdown ended. */
	now_init(&p);
	p.c.now_last_tick = 0;
	for (int i = 0; i < N; i++)
		p.p50[i] = p.oldest[i] = 0.1;
	now_tick(&p);
	for (int i = 0; i < N; i++) {
		p.p50[i] = 0.005 + 0.001 * i;
		p.oldest[i] = 0.004;
	}
	p.p50[2] = 0.1;
	now_tick(&p);
	assert_true(p.tr[2].now);
	assert_false(p.tr[1].now);
}

static void conf_now_factor(void **st)
{
	struct xm_rebal_conf c;
	char err[200];
	json_t *o;

	xm_rebal_conf_default(&c);
	assert_true(fabs(c.now_factor - 4) < 1e-12);
	o = json_loads("{\"now_factor\": 0}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &c, err, sizeof(err)), 0);
	assert_true(c.now_factor == 0);
	json_decref(o);
	o = json_loads("{\"now_factor\": -1}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rebalance.now_factor"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(slow_now_urgent_in_first_tick),
		cmocka_unit_test(oldest_in_flight_counts),
		cmocka_unit_test(needs_three_p50s),
		cmocka_unit_test(bounds_hold),
		cmocka_unit_test(small_pool_retires_by_default),
		cmocka_unit_test(table_share_cut_while_slow_now),
		cmocka_unit_test(mark_holds_until_measured_calm),
		cmocka_unit_test(shared_slow_start_is_not_slow_now),
		cmocka_unit_test(conf_now_factor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
