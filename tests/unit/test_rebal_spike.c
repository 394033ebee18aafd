// SPDX-License-Identifier: MIT
/*
 * The rebalancing plan's tail rule (user/lib/rebal.c, tail_factor): a
 * backend whose p99 alone spikes in a tick (its p50 as before, nothing in
 * flight for long at the tick) is slow right now and urgent in that tick;
 * a single slow request in an otherwise calm tick is not. The tick's p99 is
 * read from a real latency histogram (lbtable.c) at the quantile
 * xm_rebal_tail_q(), as the weighting loop reads it.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/bpf.h>

#include "lbtable.h"
#include "rebal.h"

#define N 4
#define MS 1000000ULL

/*
 * 4 backends holding 20 connections each, equal target shares, latency
 * estimates alike: the weights and the estimates have not moved yet. p50s
 * of this tick 50, 60, 70, 80 ms (typical: 60 ms), nothing in flight for
 * long: the p50 rule and the in-flight rule see nothing.
 */
struct spike_plan {
	struct xm_rebal_conf c;
	struct xm_rebal_svc sv;
	uint32_t held[N], q[N];
	double w[N], l_est[N], p50[N], oldest[N], p99[N];
	struct xm_rebal_track tr[N];
};

static void spike_init(struct spike_plan *p)
{
	memset(p, 0, sizeof(*p));
	xm_rebal_conf_default(&p->c);
	/* these tests count urgent quotas of the per-tick share (urgent_share 1: test_rebal_self.c) */
	p->c.urgent_share = 0.5;
	p->c.enabled = true;
	p->sv.tokens = 100;
	p->c.max_per_s = 100;
	for (int i = 0; i < N; i++) {
		p->held[i] = 20;
		p->w[i] = 1.0 / N;
		p->l_est[i] = 0.2;
		p->p50[i] = 0.05 + 0.01 * i;
		p->oldest[i] = 0.04;
		p->p99[i] = 1.8 * p->p50[i]; /* a calm tail: typical p99 108 ms, 2x < 4 x 60 */
	}
}

static unsigned int spike_tick(struct spike_plan *p)
{
	return xm_rebal_plan_now(&p->c, &p->sv, 0.5, 0, p->held, p->w, p->l_est, NULL, p->p50,
				 p->oldest, p->p99, NULL, p->tr, p->q, N);
}

/*
 * A tick's histogram of `fast` requests at fast_ms and `slow` at slow_ms;
 * its p50, plain p99 and the plan's p99 (xm_rebal_tail_q) in seconds.
 */
struct tick_q {
	double p50, p99, p99_2nd;
};

static struct tick_q tick_hist(unsigned int fast, unsigned int fast_ms, unsigned int slow,
			       unsigned int slow_ms)
{
	__u64 h[XM_LB_HIST_BUCKETS] = { 0 };
	struct tick_q r;

	h[xm_lb_hist_bucket(fast_ms * MS)] += fast;
	h[xm_lb_hist_bucket(slow_ms * MS)] += slow;
	r.p50 = xm_lb_hist_quantile(h, 0.5) / 1e9;
	r.p99 = xm_lb_hist_quantile(h, 0.99) / 1e9;
	r.p99_2nd = xm_lb_hist_quantile(h, xm_rebal_tail_q(fast + slow)) / 1e9;
	return r;
}

/* The quantile: 0.99, but at most the second slowest request's rank. */
static void tail_q_ranks(void **st)
{
	assert_true(xm_rebal_tail_q(0) < 0);
	assert_true(xm_rebal_tail_q(1) < 0);
	for (uint64_t n = 2; n <= 1000; n++) {
		double q = xm_rebal_tail_q(n);
		uint64_t rank = (uint64_t)ceil(q * (double)n), p99 = (uint64_t)ceil(0.99 * n);

		assert_int_equal(rank, p99 < n - 1 ? p99 : n - 1);
	}
}

/*
 * 20 requests in the tick, 4 of them at 600 ms (its p99 alone spiked: p50
 * 50 ms): urgent in this tick, half its pool, table share cut; off
 * (tail_factor 0, the ninth session's rule) nothing in four such ticks.
 */
static void p99_spike_retired_in_one_tick(void **st)
{
	struct tick_q t = tick_hist(16, 50, 4, 600);
	struct spike_plan p;

	assert_true(t.p50 < 0.06);
	assert_true(t.p99_2nd > 0.5);
	spike_init(&p);
	p.p50[3] = t.p50;
	p.p99[3] = t.p99_2nd;
	assert_int_equal(spike_tick(&p), 10); /* share_per_tick 0.5 x 20 */
	assert_int_equal(p.q[3], 10);
	assert_true(p.tr[3].urgent);
	assert_true(p.tr[3].now);
	assert_true(xm_rebal_table_share(&p.tr[3], 0.25, 0.05 / N) < 0.02);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(p.q[i], 0);
		assert_false(p.tr[i].now);
	}
	spike_init(&p);
	p.c.tail_factor = 0;
	for (int k = 0; k < 4; k++) {
		p.p50[3] = t.p50;
		p.p99[3] = t.p99_2nd;
		assert_int_equal(spike_tick(&p), 0);
		assert_false(p.tr[3].urgent);
		assert_false(p.tr[3].now);
	}
}

/*
 * One request of 11 at 900 ms in a quiet tick (the plain p99 is that one
 * request): not slow now, nothing retired in four such ticks. The plain p99
 * would have made it urgent: that is what the quantile is for.
 */
static void single_outlier_is_not_a_spike(void **st)
{
	struct tick_q t = tick_hist(10, 50, 1, 900);
	struct spike_plan p;

	assert_true(t.p99 > 0.8);
	assert_true(t.p99_2nd < 0.06);
	spike_init(&p);
	for (int k = 0; k < 4; k++) {
		p.p50[3] = t.p50;
		p.p99[3] = t.p99_2nd;
		assert_int_equal(spike_tick(&p), 0);
		assert_false(p.tr[3].urgent);
		assert_false(p.tr[3].now);
	}
	spike_init(&p);
	p.p50[3] = t.p50;
	p.p99[3] = t.p99;
	assert_int_equal(spike_tick(&p), 10);
	/* Two such requests are: the second slowest is 900 ms too. */
	t = tick_hist(10, 50, 2, 900);
	spike_init(&p);
	p.p50[3] = t.p50;
	p.p99[3] = t.p99_2nd;
	assert_int_equal(spike_tick(&p), 10);
	assert_true(p.tr[3].urgent);
}

/*
 * Below tail_factor x the typical p50 (3.5x: 210 ms against 60 ms), a tail
 * as a slower calm replica's: nothing. No p99 (fewer than 2 requests): no
 * rule. And the bounds of the urgent path hold (bucket, min_conns).
 */
static void threshold_and_bounds(void **st)
{
	struct spike_plan p;

	spike_init(&p);
	p.p99[3] = 0.21;
	assert_int_equal(spike_tick(&p), 0);
	assert_false(p.tr[3].now);
	spike_init(&p);
	p.p99[3] = 0.25; /* 4.2x */
	assert_int_equal(spike_tick(&p), 10);
	spike_init(&p);
	p.p99[3] = -1;
	assert_int_equal(spike_tick(&p), 0);
	spike_init(&p);
	p.p99[3] = 0.6;
	p.sv.tokens = 3;
	p.c.max_per_s = 3;
	assert_int_equal(spike_tick(&p), 3);
	spike_init(&p);
	p.p99[3] = 0.6;
	for (int i = 0; i < N; i++)
		p.held[i] = 0;
	p.c.min_conns = 4;
	p.held[3] = 3; /* below min_conns */
	assert_int_equal(spike_tick(&p), 0);
}

/* The next tick with a calm p50 and a calm tail releases the mark: no churn after it. */
static void calm_tick_releases(void **st)
{
	struct spike_plan p;

	spike_init(&p);
	p.p99[3] = 0.6;
	assert_int_equal(spike_tick(&p), 10);
	assert_true(p.tr[3].now);
	p.p99[3] = 0.11;
	assert_int_equal(spike_tick(&p), 0);
	assert_false(p.tr[3].now);
	assert_false(p.tr[3].urgent);
}

/*
 * A small pool sits on few backends: a tick where only 2 of them completed
 * requests with a quantile has no typical p50 of its own. The tail rule then
 * compares with the last one, for XM_REBAL_KEPT_TICKS ticks; the p50 rule
 * does not (as before).
 */
static void kept_typical_in_thin_ticks(void **st)
{
	struct spike_plan p;
	int k;

	spike_init(&p);
	assert_int_equal(spike_tick(&p), 0); /* a tick with a typical p50: 60 ms */
	p.p50[0] = p.p50[1] = -1;
	p.p99[0] = p.p99[1] = -1;
	p.p99[3] = 0.6;
	assert_int_equal(spike_tick(&p), 10);
	assert_true(p.tr[3].urgent);
	/* Without the rule: no typical p50 in this tick, nothing. */
	spike_init(&p);
	p.c.tail_factor = 0;
	assert_int_equal(spike_tick(&p), 0);
	p.p50[0] = p.p50[1] = -1;
	p.p99[3] = 0.6;
	assert_int_equal(spike_tick(&p), 0);
	/* The p50 rule keeps needing 3 p50s of the tick. */
	spike_init(&p);
	assert_int_equal(spike_tick(&p), 0);
	p.p50[0] = p.p50[1] = -1;
	p.p50[3] = 0.6;
	assert_int_equal(spike_tick(&p), 0);
	assert_false(p.tr[3].now);
	/*
	 * Kept for XM_REBAL_KEPT_TICKS thin ticks, not longer (tail_self off:
	 * against its own usual p99, 144 ms, backend 3 is slow now, as
	 * test_rebal_self.c tests).
	 */
	spike_init(&p);
	p.c.tail_self = 0;
	assert_int_equal(spike_tick(&p), 0);
	p.p50[0] = p.p50[1] = -1;
	for (k = 0; k < XM_REBAL_KEPT_TICKS; k++)
		assert_int_equal(spike_tick(&p), 0);
	p.p99[3] = 0.6;
	assert_int_equal(spike_tick(&p), 0);
	assert_false(p.tr[3].now);
}

/*
 * Replicas whose tails are long anyway (p99 5x their medians, 250-400 ms
 * against a typical p50 of 60 ms: all above 4x): none is slow now by its
 * tail, unless it is twice the typical p99 (300 ms) as well.
 */
static void long_tails_everywhere(void **st)
{
	struct spike_plan p;

	spike_init(&p);
	for (int i = 0; i < N; i++)
		p.p99[i] = 5 * p.p50[i];
	for (int k = 0; k < 4; k++) {
		assert_int_equal(spike_tick(&p), 0);
		for (int i = 0; i < N; i++)
			assert_false(p.tr[i].now);
	}
	p.p99[3] = 0.7;
	assert_int_equal(spike_tick(&p), 10);
	assert_true(p.tr[3].now);
	assert_false(p.tr[2].now);
}

static void conf_tail_factor(void **st)
{
	struct xm_rebal_conf c;
	char err[200];
	json_t *o;

	xm_rebal_conf_default(&c);
	assert_true(fabs(c.tail_factor - 4) < 1e-12);
	o = json_loads("{\"tail_factor\": 0}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &c, err, sizeof(err)), 0);
	assert_true(c.tail_factor == 0);
	json_decref(o);
	o = json_loads("{\"tail_factor\": \"4\"}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rebalance.tail_factor"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tail_q_ranks),
		cmocka_unit_test(p99_spike_retired_in_one_tick),
		cmocka_unit_test(single_outlier_is_not_a_spike),
		cmocka_unit_test(threshold_and_bounds),
		cmocka_unit_test(calm_tick_releases),
		cmocka_unit_test(kept_typical_in_thin_ticks),
		cmocka_unit_test(long_tails_everywhere),
		cmocka_unit_test(conf_tail_factor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
