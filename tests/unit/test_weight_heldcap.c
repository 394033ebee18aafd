// SPDX-License-Identifier: MIT
/*
 * held_cap (user/lib/weight.c held_full()): a backend that holds at least
 * ceil(conn_target x pooled) + held_cap pooled connections gets no new
 * connections; connections opened in the tick (a client that opens one per
 * request) are not counted, so such clients are never capped.
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

#define N 9
#define near(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))

static void init(struct xm_wservice *s, double held_cap)
{
	struct xm_weight_params p;
	char err[200];
	json_t *o = json_pack("{s:f}", "held_cap", held_cap);

	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), o, &p, err, sizeof(err)),
			 0);
	json_decref(o);
	assert_int_equal(xm_wservice_init(s, xm_weight_algo_find("l3x"), &p, N), 0);
}

/*
 * secs of 0.5 s ticks: all N backends equally fast, holding conns[i]
 * connections of which opened[i] reached ESTABLISHED in the tick.
 */
static void run(struct xm_wservice *s, double secs, const double *conns, const double *opened)
{
	struct xm_wsample x[N];

	for (double t = 0; t < secs; t += 0.5) {
		for (unsigned int i = 0; i < N; i++) {
			memset(&x[i], 0, sizeof(x[i]));
			x[i].requests = 20;
			x[i].p99 = x[i].p50 = 0.01;
			x[i].inflight = 1;
			x[i].conns = conns[i];
			x[i].opened = opened ? opened[i] : 0;
			x[i].alive = true;
		}
		xm_wservice_tick(s, x, 0.5);
	}
}

/*
 * A pool of 8 over 9 equal replicas, 3 of them on backend 0: its target is
 * 8/9, so ceil(8/9) + 1 = 2 and it is full. With held_cap it gets no new
 * connections; without, stickiness only lowers its share (the floor and
 * r >= 1/8 keep it above 0), which is what let a small pool pile up on the
 * two replicas that were fastest when it reconnected.
 */
static void full_backend_gets_no_new_connections(void **st)
{
	double conns[N] = { 3, 2, 1, 1, 1, 0, 0, 0, 0 };
	struct xm_wservice s;

	init(&s, 1);
	run(&s, 10, conns, NULL);
	near(s.b[0].pooled, 3, 0);
	assert_true(s.b[0].place == 0);
	assert_true(s.b[1].place == 0); /* 2 >= ceil(8/9) + 1 */
	assert_true(s.b[2].place > 0);  /* 1 < 2 */
	assert_true(s.b[8].place > s.b[2].place); /* holds none: sticky, more */
	double sum = 0;
	for (unsigned int i = 0; i < N; i++)
		sum += s.b[i].place;
	near(sum, 1, 1e-9);
	xm_wservice_free(&s);

	init(&s, 0); /* off, the default: placement as before */
	run(&s, 10, conns, NULL);
	assert_true(s.b[0].place > 0);
	assert_true(s.b[1].place > 0);
	xm_wservice_free(&s);
}

/*
 * A client that opens a connection per request: every connection held at
 * the tick was opened in it, nothing is pooled, nothing capped, the same
 * placement as with held_cap off.
 */
static void new_connection_per_request_is_not_capped(void **st)
{
	double conns[N] = { 3, 2, 1, 1, 1, 0, 0, 0, 0 };
	double opened[N] = { 40, 40, 40, 40, 40, 40, 40, 40, 40 };
	struct xm_wservice on, off;

	init(&on, 1);
	init(&off, 0);
	run(&on, 10, conns, opened);
	run(&off, 10, conns, opened);
	for (unsigned int i = 0; i < N; i++) {
		near(on.b[i].pooled, 0, 0);
		assert_true(on.b[i].place > 0);
		near(on.b[i].place, off.b[i].place, 1e-12);
	}
	xm_wservice_free(&on);
	xm_wservice_free(&off);
}

/* A larger slack lets a backend hold more before it is full. */
static void slack_is_the_parameter(void **st)
{
	double conns[N] = { 3, 2, 1, 1, 1, 0, 0, 0, 0 };
	struct xm_wservice s;

	init(&s, 2); /* full at ceil(8/9) + 2 = 3 */
	run(&s, 10, conns, NULL);
	assert_true(s.b[0].place == 0);
	assert_true(s.b[1].place > 0);
	xm_wservice_free(&s);
}

/* Out of range: a clear error naming the parameter. */
static void bad_value_is_refused(void **st)
{
	struct xm_weight_params p;
	char err[200] = "";
	json_t *o = json_pack("{s:f}", "held_cap", -1.0);

	assert_int_not_equal(
		xm_weight_params_parse(xm_weight_algo_find("l3x"), o, &p, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "held_cap"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_backend_gets_no_new_connections),
		cmocka_unit_test(new_connection_per_request_is_not_capped),
		cmocka_unit_test(slack_is_the_parameter),
		cmocka_unit_test(bad_value_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
