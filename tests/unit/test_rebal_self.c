// SPDX-License-Identifier: MIT
/*
 * The rebalancing plan (user/lib/rebal.c) against a backend's own usual
 * latency (tail_self) and the urgent backends' share per tick
 * (urgent_share), the eleventh session's changes for pools on a loaded
 * machine (docs/weighting.md, docs/benchmarks.md).
 *
 * The shape is make bench-l3's spikes with urllib3's pool of 8 connections:
 * it sits on 3 of 9 replicas, replica 1 (usual p50 55 ms, p99 of a tick 110
 * ms) and replicas 6 and 7 (90 and 85 ms, 200 and 190 ms). The service's
 * typical values are those of the 3: 4 x the typical p50 is 340 ms and 2 x
 * the typical p99 400 ms, so replica 1's tail spike (p99 of a tick 260 ms,
 * p50 60 ms) passes neither; against its own usual p99 it is 2.4x while the
 * others are at theirs.
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

#define N 9
#define A 1 /* the replica whose tail spikes */

struct self_plan {
	struct xm_rebal_conf c;
	struct xm_rebal_svc sv;
	uint32_t held[N], q[N];
	double w[N], l_est[N], p50[N], oldest[N], p99[N];
	struct xm_rebal_track tr[N];
};

/* A calm tick of the pool: 5 connections on replica 1, 2 on 6, 1 on 7. */
static void self_calm(struct self_plan *p)
{
	for (int i = 0; i < N; i++) {
		p->held[i] = 0;
		p->w[i] = 0.02;
		p->l_est[i] = 0.2;
		p->p50[i] = -1;
		p->p99[i] = -1;
		p->oldest[i] = 0;
	}
	p->held[1] = 5, p->held[6] = 2, p->held[7] = 1;
	p->w[1] = 0.3, p->w[6] = 0.3, p->w[7] = 0.26;
	p->p50[1] = 0.055, p->p50[6] = 0.090, p->p50[7] = 0.085;
	p->p99[1] = 0.110, p->p99[6] = 0.200, p->p99[7] = 0.190;
}

static unsigned int self_tick(struct self_plan *p)
{
	return xm_rebal_plan_now(&p->c, &p->sv, 0.5, 0, p->held, p->w, p->l_est, NULL, p->p50,
				 p->oldest, p->p99, NULL, p->tr, p->q, N);
}

/* Defaults, rebalancing and tail_self on, 20 calm ticks (10 s) so that the usual values are known. */
static void self_init(struct self_plan *p)
{
	memset(p, 0, sizeof(*p));
	xm_rebal_conf_default(&p->c);
	p->c.enabled = true;
	p->c.tail_self = 1; /* off by default */
	p->sv.tokens = 20;
	self_calm(p);
	for (int k = 0; k < 20; k++)
		assert_int_equal(self_tick(p), 0);
}

/* Replica 1's tail spikes: slow now in this tick, all its connections to retire. */
static void own_spike_on_slow_pool(void **st)
{
	struct self_plan p;

	self_init(&p);
	assert_true(fabs(p.tr[A].u99 - 0.110) < 1e-9);
	p.p50[A] = 0.060;
	p.p99[A] = 0.260;
	assert_int_equal(self_tick(&p), 5);
	assert_true(p.tr[A].now);
	assert_true(p.tr[A].urgent);
	assert_int_equal(p.q[A], 5);
	assert_false(p.tr[6].now);
	assert_false(p.tr[7].now);
	/* The service's values alone (the tenth session's rule): nothing in this tick. */
	self_init(&p);
	p.c.tail_self = 0;
	p.p50[A] = 0.060;
	p.p99[A] = 0.260;
	assert_int_equal(self_tick(&p), 0);
	assert_false(p.tr[A].now);
	/* Below 2x its usual p99: its tail's noise, not a spike. */
	self_init(&p);
	p.p99[A] = 0.210;
	assert_int_equal(self_tick(&p), 0);
	assert_false(p.tr[A].now);
}

/* A slowdown all three share (p99s 2.4x their usual) marks none of them. */
static void shared_rise_marks_none(void **st)
{
	struct self_plan p;

	self_init(&p);
	p.p99[1] = 0.264, p.p99[6] = 0.480, p.p99[7] = 0.456;
	assert_int_equal(self_tick(&p), 0);
	for (int i = 0; i < N; i++)
		assert_false(p.tr[i].now);
	/* ... and its last tick, when replica 1's tail is still up, neither (now_last_tick). */
	p.p99[6] = 0.200, p.p99[7] = 0.190;
	assert_int_equal(self_tick(&p), 0);
	assert_false(p.tr[A].now);
	/* Then replica 1 alone, well past its usual tail: it is. */
	p.p99[A] = 0.300;
	self_tick(&p);
	self_tick(&p);
	assert_true(p.tr[A].now);
}

/*
 * The others' rise is of the others: with one of them 1.5x its usual p99
 * (a loaded machine's noise) and one at its usual, the lower median of all
 * three ratios (the spike's included) would be 1.5 and replica 1's 2.4x
 * would not pass 2 x 1.5; without itself the others' rise is 1.
 */
static void rise_without_self(void **st)
{
	struct self_plan p;

	self_init(&p);
	p.p99[A] = 0.260;
	p.p99[6] = 0.300;
	assert_int_equal(self_tick(&p), 5);
	assert_true(p.tr[A].now);
	assert_false(p.tr[6].now); /* 1.5x its own, the others' rise 1: not 2x */
	assert_false(p.tr[7].now);
}

/*
 * A spike moves the usual values little (2 s: under 15 %), so the next
 * spike 10 s later is measured against the calm tail; a lasting rise moves
 * them (after 20 s at 2x, the usual p99 is past 1.7x), so a backend that
 * stays slower stops being slow now by its own history.
 */
static void usual_values_move_slowly(void **st)
{
	struct self_plan p;

	self_init(&p);
	p.p99[A] = 0.7;
	for (int k = 0; k < 4; k++)
		self_tick(&p);
	assert_true(p.tr[A].u99 < 0.110 * 1.15);
	assert_true(p.tr[A].u99 > 0.110);
	self_init(&p);
	p.p99[A] = 0.220;
	for (int k = 0; k < 40; k++)
		self_tick(&p);
	assert_true(p.tr[A].u99 > 0.110 * 1.7);
	p.p99[A] = 0.230;
	self_tick(&p);
	assert_false(p.tr[A].now);
}

/*
 * The usual values outlive the rest of the plan's state: below min_conns
 * the plan resets its tracks, and a pool that shrank for a moment still has
 * its replicas' usual values when it grows back.
 */
static void usual_values_survive_reset(void **st)
{
	struct self_plan p;

	self_init(&p);
	for (int i = 0; i < N; i++)
		p.held[i] = 0;
	p.c.min_conns = 4;
	p.held[A] = 3; /* below min_conns */
	assert_int_equal(self_tick(&p), 0);
	assert_true(fabs(p.tr[A].u99 - 0.110) < 1e-9);
	self_calm(&p);
	p.p99[A] = 0.260;
	p.p50[A] = 0.060;
	assert_int_equal(self_tick(&p), 5);
}

/*
 * No other backend with a p99 this tick to know the others' rise: the last
 * one for XM_REBAL_KEPT_TICKS ticks, then the rule is off (a slowdown all
 * share could not be told apart). One other is enough: urllib3's pool of 8
 * often sat on two replicas.
 */
static void rise_kept_then_off(void **st)
{
	struct self_plan p;

	self_init(&p);
	p.p99[6] = p.p99[7] = -1;
	p.p99[A] = 0.260;
	assert_int_equal(self_tick(&p), 5);
	self_init(&p);
	p.p99[6] = p.p99[7] = -1;
	for (int k = 0; k < XM_REBAL_KEPT_TICKS; k++)
		self_tick(&p);
	p.p99[A] = 0.260;
	assert_int_equal(self_tick(&p), 0);
	assert_false(p.tr[A].now);
	self_init(&p);
	p.p99[7] = -1;
	for (int k = 0; k < XM_REBAL_KEPT_TICKS + 1; k++)
		self_tick(&p);
	p.p99[A] = 0.260;
	assert_int_equal(self_tick(&p), 5);
}

/*
 * urgent_share: an urgent backend gives up all its excess in one tick (1,
 * the default); 0.5, the per-tick share before, took 2-3 ticks for a pool's
 * 5 connections. The service's bucket (max_per_s) still bounds it.
 */
static void urgent_share_all_at_once(void **st)
{
	struct self_plan p;

	self_init(&p);
	p.c.urgent_share = 0.5;
	p.p99[A] = 0.260;
	assert_int_equal(self_tick(&p), 2);
	self_init(&p);
	p.sv.tokens = 3;
	p.c.max_per_s = 3;
	p.p99[A] = 0.260;
	assert_int_equal(self_tick(&p), 3);
}

/*
 * Urgent by its estimate alone (fast_factor, two ticks: replica 6's L_est
 * 3x the typical one, which with a pool on few replicas is the fastest's):
 * share_per_tick, not urgent_share. Moving all of a calm replica's
 * connections at once put 7 of urllib3's 8 on the fastest replica just
 * before its tail spiked.
 */
static void far_by_estimate_keeps_share_per_tick(void **st)
{
	struct self_plan p;

	self_init(&p);
	p.held[6] = 6;
	p.w[6] = 0.05;
	p.l_est[6] = 0.6;
	self_tick(&p);
	assert_int_equal(self_tick(&p), 3); /* max(1, 0.5 x 6) */
	assert_true(p.tr[6].urgent);
	assert_false(p.tr[6].now);
}

static void conf_fields(void **st)
{
	struct xm_rebal_conf c;
	char err[200];
	json_t *o;

	xm_rebal_conf_default(&c);
	assert_int_equal(c.tail_self, 0);
	assert_true(c.urgent_share == 1);
	o = json_loads("{\"tail_self\": 1, \"urgent_share\": 0.5}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &c, err, sizeof(err)), 0);
	assert_int_equal(c.tail_self, 1);
	assert_true(c.urgent_share == 0.5);
	json_decref(o);
	o = json_loads("{\"tail_self\": 2}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rebalance.tail_self"));
	json_decref(o);
	o = json_loads("{\"urgent_share\": 1.5}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rebalance.urgent_share"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(own_spike_on_slow_pool),
		cmocka_unit_test(shared_rise_marks_none),
		cmocka_unit_test(rise_without_self),
		cmocka_unit_test(usual_values_move_slowly),
		cmocka_unit_test(usual_values_survive_reset),
		cmocka_unit_test(rise_kept_then_off),
		cmocka_unit_test(urgent_share_all_at_once),
		cmocka_unit_test(far_by_estimate_keeps_share_per_tick),
		cmocka_unit_test(conf_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
