// SPDX-License-Identifier: MIT
/*
 * The rebalancing plan with the tail memory (user/lib/rebal.c, tail_slow):
 * a backend whose estimate is back but whose tail memory is high is slow,
 * so that its excess over its connection target is retired, with the
 * hysteresis and the credit of any slow backend; without the option (or
 * without a tail history) it keeps its connections.
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

#define N 3

struct tail_plan {
	struct xm_rebal_conf c;
	struct xm_rebal_svc sv;
	uint32_t held[N], q[N];
	double w[N], l_est[N], p50[N], tail[N];
	struct xm_rebal_track tr[N];
};

/*
 * Backend 0 holds 12 of 20 connections against a target of 0.1 (its
 * connection target discounted by its tail memory); its estimate is back
 * at 60 ms like the others', its tail memory is at 400 ms.
 */
static void tail_init(struct tail_plan *p, unsigned int tail_slow)
{
	memset(p, 0, sizeof(*p));
	xm_rebal_conf_default(&p->c);
	p->c.enabled = true;
	p->c.tail_slow = tail_slow;
	p->sv.tokens = 100;
	p->c.max_per_s = 100;
	for (int i = 0; i < N; i++) {
		p->held[i] = 4;
		p->l_est[i] = 0.06;
		p->p50[i] = 0.03;
		p->tail[i] = 0.07;
	}
	p->held[0] = 12;
	p->w[0] = 0.1;
	p->w[1] = p->w[2] = 0.45;
	p->tail[0] = 0.4;
}

static unsigned int tick(struct tail_plan *p)
{
	return xm_rebal_plan_now(&p->c, &p->sv, 0.5, 0, p->held, p->w, p->l_est, NULL, p->p50, NULL,
				 NULL, p->tail, p->tr, p->q, N);
}

static void tail_history_is_slow(void **st)
{
	struct tail_plan p;

	tail_init(&p, 1);
	/* The hysteresis: nothing on the first tick. */
	assert_int_equal(tick(&p), 0);
	/* Then its share per tick (0.5 x 12), not urgent. */
	assert_int_equal(tick(&p), 6);
	assert_int_equal(p.q[0], 6);
	assert_false(p.tr[0].urgent);
	assert_int_equal(p.q[1] + p.q[2], 0);
}

static void off_or_no_history_keeps_connections(void **st)
{
	struct tail_plan p;

	tail_init(&p, 0);
	for (int t = 0; t < 4; t++)
		assert_int_equal(tick(&p), 0);
	/* On, but its tail memory like the others' (no spike): nothing either. */
	tail_init(&p, 1);
	p.tail[0] = 0.07;
	for (int t = 0; t < 4; t++)
		assert_int_equal(tick(&p), 0);
	/* No tail memory given (NULL): nothing. */
	tail_init(&p, 1);
	for (int t = 0; t < 4; t++)
		assert_int_equal(xm_rebal_plan_now(&p.c, &p.sv, 0.5, 0, p.held, p.w, p.l_est, NULL,
						   p.p50, NULL, NULL, NULL, p.tr, p.q, N),
				 0);
}

static void conf_tail_slow(void **st)
{
	struct xm_rebal_conf c;
	char err[200];
	json_t *o;

	xm_rebal_conf_default(&c);
	assert_int_equal(c.tail_slow, 0);
	o = json_loads("{\"tail_slow\": 1}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &c, err, sizeof(err)), 0);
	assert_int_equal(c.tail_slow, 1);
	json_decref(o);
	o = json_loads("{\"tail_slow\": 2}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rebalance.tail_slow: must be 0 or 1"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tail_history_is_slow),
		cmocka_unit_test(off_or_no_history_keeps_connections),
		cmocka_unit_test(conf_tail_slow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
