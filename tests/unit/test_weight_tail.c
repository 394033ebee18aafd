// SPDX-License-Identifier: MIT
/*
 * The tail memory (user/lib/weight.c: hl_tail, tail_discount): a backend
 * whose p99 alone spiked a few seconds ago gets a smaller target share of
 * held connections than its (recovered) weight, while its weight and
 * estimate recover exactly as without the memory.
 */
#include <errno.h>
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

#define N 3

static void init_l3x(struct xm_wservice *s, double hl_tail)
{
	struct xm_weight_params p;
	char err[200];
	json_t *o = hl_tail < 0 ? NULL : json_pack("{s:f}", "hl_tail_s", hl_tail);

	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), o, &p, err, sizeof(err)), 0);
	json_decref(o);
	assert_int_equal(xm_wservice_init(s, xm_weight_algo_find("l3x"), &p, N), 0);
}

/* secs of 0.5 s ticks at these p99s (p50 half of it), conns[i] held. */
static void run(struct xm_wservice *s, double secs, const double *p99, const double *conns)
{
	struct xm_wsample x[N];

	for (double t = 0; t < secs; t += 0.5) {
		for (unsigned int i = 0; i < N; i++) {
			memset(&x[i], 0, sizeof(x[i]));
			x[i].requests = 20;
			x[i].p99 = p99[i];
			x[i].p50 = p99[i] / 2;
			x[i].inflight = 1;
			x[i].conns = conns ? conns[i] : 0;
			x[i].alive = true;
		}
		xm_wservice_tick(s, x, 0.5);
	}
}

/*
 * Backend 0 is the fastest (p99 50 ms against 80 ms) but its tail spiked
 * to 400 ms for 2 s; 8 s after the spike its estimate is back near its own
 * and it has the biggest weight again. Its target of held connections is
 * below its weight (and below a steady backend's target) with the memory,
 * equal to its weight without.
 */
static void spike(struct xm_wservice *s)
{
	double calm[N] = { 0.05, 0.08, 0.08 }, spiking[N] = { 0.4, 0.08, 0.08 };

	run(s, 20, calm, NULL);
	run(s, 2, spiking, NULL);
	run(s, 8, calm, NULL);
}

static void recent_spike_lowers_connection_target(void **st)
{
	struct xm_wservice with, without;

	init_l3x(&with, 10);
	init_l3x(&without, -1); /* l3x's default: off */
	assert_true(without.p.hl_tail == 0);
	spike(&with);
	spike(&without);
	print_message("backend 0: weight %.3f, conn_target %.3f with the memory, %.3f without\n",
		      with.b[0].weight, with.b[0].conn_target, without.b[0].conn_target);
	/* The estimate and the weight recover as without the memory. */
	assert_true(fabs(with.b[0].l_est - without.b[0].l_est) < 1e-12);
	assert_true(fabs(with.b[0].weight - without.b[0].weight) < 1e-12);
	assert_true(with.b[0].weight > with.b[1].weight);
	/* Without it the target is the weight; with it, below a steady backend's. */
	assert_true(fabs(without.b[0].conn_target - without.b[0].weight) < 1e-12);
	assert_true(with.b[0].conn_target < with.b[0].weight / 2);
	assert_true(with.b[0].conn_target < with.b[1].conn_target);
	assert_true(fabs(with.b[0].conn_target + with.b[1].conn_target + with.b[2].conn_target - 1) <
		    1e-9);
	xm_wservice_free(&with);
	xm_wservice_free(&without);
}

/* With a pool held, the spiking backend gets fewer new connections too (place). */
static void recent_spike_lowers_new_connections(void **st)
{
	double calm[N] = { 0.05, 0.08, 0.08 }, spiking[N] = { 0.4, 0.08, 0.08 };
	double conns[N] = { 10, 5, 5 };
	struct xm_wservice with, without;

	init_l3x(&with, 10);
	init_l3x(&without, 0);
	run(&with, 20, calm, conns);
	run(&without, 20, calm, conns);
	run(&with, 2, spiking, conns);
	run(&without, 2, spiking, conns);
	run(&with, 8, calm, conns);
	run(&without, 8, calm, conns);
	print_message("backend 0 holding 10 of 20: place %.3f with the memory, %.3f without\n",
		      with.b[0].place, without.b[0].place);
	assert_true(with.b[0].place < without.b[0].place / 2);
	xm_wservice_free(&with);
	xm_wservice_free(&without);
}

/*
 * test_lb_rebalance.sh's shape: a slowdown all backends shared (p99 150 ms
 * against 5 ms for 1.5 s), 2.5 s of calm, then backend 2 alone 80x slower
 * for 5 s (an outlier: the floor weight). The memory of what all shared
 * makes no difference, so backend 2's target of held connections is its
 * weight, the smallest. With the plain ratio latency / tail (the rule before
 * the median) it was the largest, 0.36 against 0.32: the recovered backends
 * were cut by the square of their memory of the shared slowdown, backend 2
 * (ratio 1: its memory is its present) not at all.
 */
static void shared_slowdown_then_one_stays_slow(void **st)
{
	double calm[N] = { 0.005, 0.005, 0.005 }, all_slow[N] = { 0.15, 0.15, 0.15 };
	double one_slow[N] = { 0.005, 0.005, 0.4 };
	struct xm_wservice with, without;
	unsigned int i;

	init_l3x(&with, 10);
	init_l3x(&without, 0);
	for (i = 0; i < 2; i++) {
		struct xm_wservice *s = i ? &without : &with;

		run(s, 20, calm, NULL);
		run(s, 1.5, all_slow, NULL);
		run(s, 2.5, calm, NULL);
		run(s, 5, one_slow, NULL);
	}
	print_message("targets with the memory %.3f %.3f %.3f, without %.3f %.3f %.3f (weights %.3f %.3f %.3f)\n",
		      with.b[0].conn_target, with.b[1].conn_target, with.b[2].conn_target,
		      without.b[0].conn_target, without.b[1].conn_target, without.b[2].conn_target,
		      with.b[0].weight, with.b[1].weight, with.b[2].weight);
	assert_true(with.b[2].weight < with.b[0].weight);
	assert_true(with.b[2].conn_target < with.b[0].conn_target);
	assert_true(with.b[2].conn_target < with.b[1].conn_target);
	for (i = 0; i < N; i++)
		assert_true(fabs(with.b[i].conn_target - without.b[i].conn_target) < 1e-9);
	xm_wservice_free(&with);
	xm_wservice_free(&without);
}

/* The memory fades: two minutes of calm after the spike, the target is the weight again. */
static void memory_fades(void **st)
{
	double calm[N] = { 0.05, 0.08, 0.08 };
	struct xm_wservice s;

	init_l3x(&s, 10);
	spike(&s);
	run(&s, 120, calm, NULL);
	assert_true(fabs(s.b[0].conn_target - s.b[0].weight) < 0.02 * s.b[0].weight);
	xm_wservice_free(&s);
}

/* Steady backends, different but never spiking: the memory changes nothing. */
static void steady_backends_untouched(void **st)
{
	double p99[N] = { 0.02, 0.05, 0.2 };
	struct xm_wservice s;

	init_l3x(&s, 10);
	run(&s, 30, p99, NULL);
	for (unsigned int i = 0; i < N; i++)
		assert_true(fabs(s.b[i].conn_target - s.b[i].weight) < 1e-9);
	xm_wservice_free(&s);
}

static void hl_tail_validated(void **st)
{
	struct xm_weight_params p;
	char err[200] = "";
	json_t *o = json_pack("{s:f}", "hl_tail_s", -1.0);

	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), o, &p, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "params.hl_tail_s: must be a number from 0 to 3600"));
	json_decref(o);
	o = json_pack("{s:s}", "hl_tail_s", "long");
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), o, &p, err, sizeof(err)),
			 -EINVAL);
	json_decref(o);
	/* Off for the others unless asked for. */
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3"), NULL, &p, err, sizeof(err)),
			 0);
	assert_true(p.hl_tail == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(recent_spike_lowers_connection_target),
		cmocka_unit_test(recent_spike_lowers_new_connections),
		cmocka_unit_test(shared_slowdown_then_one_stays_slow),
		cmocka_unit_test(memory_fades),
		cmocka_unit_test(steady_backends_untouched),
		cmocka_unit_test(hl_tail_validated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
