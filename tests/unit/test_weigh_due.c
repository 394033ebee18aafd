// SPDX-License-Identifier: MIT
/*
 * When the weighting loop weighs a service (user/lib/weighdue.c): a lightly
 * loaded service waits for news, a failure or a far slower backend is weighed
 * in the tick it shows, and waiting loses no time from the filters.
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
#include "weighdue.h"
#include "weight.h"

#define N 10
#define TICK 0.5
#define LAT 0.040 /* s, every backend's latency while healthy */

/* An l3x service of N backends that has seen a few healthy ticks at 2 rps each. */
static void primed(struct xm_wservice *s, const char *algo)
{
	struct xm_wsample x[N];

	assert_int_equal(xm_wservice_init(s, xm_weight_algo_find(algo), NULL, N), 0);
	for (int t = 0; t < 8; t++) {
		for (int i = 0; i < N; i++)
			x[i] = (struct xm_wsample){ .requests = 1, .started = 1, .p99 = LAT,
						    .p50 = LAT, .alive = true };
		xm_wservice_tick(s, x, TICK);
	}
}

/* A primed l3x service weighed after 4 healthy requests per backend: its reference. */
static void weighed_service(struct xm_wservice *s, struct xm_weigh_ref *ref,
			    struct xm_lb_probe *now)
{
	primed(s, "l3x");
	memset(ref, 0, sizeof(*ref));
	memset(now, 0, sizeof(*now));
	xt_probe_requests(now, 4 * N, LAT, 0);
	xm_weigh_ref_update(ref, now, s);
}

/* One healthy request per backend: waits; twice that is a busy service's tick. */
static void trickle_waits_until_samples(void **st)
{
	struct xm_wservice s;
	struct xm_weigh_ref ref;
	struct xm_lb_probe now;
	bool quiet;

	weighed_service(&s, &ref, &now);
	assert_int_equal(xm_weigh_service_due(NULL, &now, N, TICK, &quiet, false), XM_WEIGH_FIRST);
	/* Nothing at all: waits, quietly, up to the maximum wait (a late tick's sum counts). */
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_WAIT);
	assert_true(quiet);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, XM_WEIGH_MAX_WAIT_S - 0.005, &quiet, false),
			 XM_WEIGH_MAX_WAIT);
	xt_probe_requests(&now, N, LAT, 0);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_WAIT);
	assert_false(quiet);
	xt_probe_requests(&now, N, LAT, 0);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, 2 * TICK, &quiet, false), XM_WEIGH_SAMPLES);
	xm_wservice_free(&s);
}

/* One failure in one request is what l3x's success filter reacts to at once. */
static void failure_at_once(void **st)
{
	struct xm_wservice s;
	struct xm_weigh_ref ref;
	struct xm_lb_probe now, then;
	bool quiet;

	weighed_service(&s, &ref, &now);
	then = now;
	xt_probe_requests(&now, 1, LAT, 1);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_FAILURE);
	/* A refused connection is a failure too. */
	now = then;
	now.conn_refused++;
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_FAILURE);
	xm_wservice_free(&s);
}

/* New completions far slower than the recent ones, a stall, an old request. */
static void slower_stall_and_age_at_once(void **st)
{
	struct xm_wservice s, l3;
	struct xm_weigh_ref ref;
	struct xm_lb_probe now, then;
	bool quiet;

	weighed_service(&s, &ref, &now);
	then = now;
	/* One backend 20x slower among N: the service's new mean is 2.9x its recent one. */
	xt_probe_requests(&now, N - 1, LAT, 0);
	xt_probe_requests(&now, 1, 20 * LAT, 0);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_SLOWER);
	/* Slower within the usual spread: news, not urgent. */
	now = then;
	xt_probe_requests(&now, N, 1.5 * LAT, 0);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_WAIT);

	/* Three requests waiting at 2 rps and 40 ms per backend: more than the rates explain. */
	now = then;
	now.req_started += 3;
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_STALL);
	/* One in flight is what they explain. */
	now.req_started -= 2;
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_WAIT);
	assert_false(quiet);
	/* As many as at the last weighing: nothing new. */
	now.req_started += 2;
	xm_weigh_ref_update(&ref, &now, &s);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_WAIT);

	/* A request in flight for 200 ms, five times the latency: l3x's age bound binds. */
	assert_true(xm_weigh_backend_aged(&s, &s.b[0], 0.2));
	assert_false(xm_weigh_backend_aged(&s, &s.b[0], 0.02));
	/* l3 has no age bound: the age alone changes nothing there. */
	primed(&l3, "l3");
	assert_false(xm_weigh_backend_aged(&l3, &l3.b[0], 0.2));
	/* not even with the parameter set, which its estimate never reads */
	l3.p.age_bound = 1;
	assert_false(xm_weigh_backend_aged(&l3, &l3.b[0], 0.2));
	xm_wservice_free(&l3);
	xm_wservice_free(&s);
}

/*
 * The loop in small: N backends at 2 rps; at tick SLOW + off backend 4 turns
 * 20x slower for 4 ticks, at tick FAIL backend 7 fails one request. Weighed
 * every tick, or as weighdue.h says with the deltas and the time since the
 * last weighing. A service at this rate is weighed every other tick: with
 * off 0 the slow backend, with off 1 the failure, shows in a tick that would
 * wait for samples.
 */
#define TICKS 44
#define SLOW 21
#define FAIL 33

struct run {
	int weighings;       /* before SLOW */
	int slow_out;        /* first tick backend 4 has under half a fair share, -1 never */
	int fail_down;       /* first tick from FAIL on backend 7 has under half a fair share */
	double max_abs_c;    /* largest rate-control change before SLOW */
	double w_min_before; /* smallest weight before SLOW, x N */
};

static void run_loop(bool cadence, int off, struct run *r)
{
	const int slow = SLOW + off, fail = FAIL;
	struct xm_lb_probe now[N] = { 0 }, sum;
	struct xm_weigh_ref ref = { 0 };
	struct xm_wsample x[N];
	double waited = 0, worst[N] = { 0 };
	__u64 acc_req[N] = { 0 }, acc_fail[N] = { 0 };
	struct xm_wservice s;

	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, N), 0);
	memset(r, 0, sizeof(*r));
	r->slow_out = r->fail_down = -1;
	r->w_min_before = 1e9;
	for (int t = 0; t < TICKS; t++) {
		enum xm_weigh_why why = XM_WEIGH_FIRST;
		bool quiet;

		for (int i = 0; i < N; i++) {
			double lat = i == 4 && t >= slow && t < slow + 4 ? 20 * LAT : LAT;
			unsigned int f = i == 7 && t == fail;

			xt_probe_requests(&now[i], 1, lat, f);
			acc_req[i]++;
			acc_fail[i] += f;
			worst[i] = fmax(worst[i], lat);
		}
		waited += TICK;
		memset(&sum, 0, sizeof(sum));
		for (int i = 0; i < N; i++)
			xm_lb_probe_add(&sum, &now[i]);
		if (cadence)
			why = xm_weigh_service_due(s.ticks ? &ref : NULL, &sum, N, waited, &quiet, false);
		if (why == XM_WEIGH_WAIT)
			continue;
		for (int i = 0; i < N; i++) {
			x[i] = (struct xm_wsample){ .requests = acc_req[i], .failures = acc_fail[i],
						    .started = acc_req[i], .p99 = worst[i],
						    .p50 = worst[i], .alive = true };
			acc_req[i] = acc_fail[i] = 0;
			worst[i] = 0;
		}
		xm_wservice_tick(&s, x, waited);
		xm_weigh_ref_update(&ref, &sum, &s);
		waited = 0;
		if (t < slow) {
			r->weighings++;
			if (t >= 8) { /* settled */
				r->max_abs_c = fmax(r->max_abs_c, fabs(s.rc_change));
				for (int i = 0; i < N; i++)
					r->w_min_before = fmin(r->w_min_before, s.b[i].weight * N);
			}
		}
		if (r->slow_out < 0 && t >= slow && s.b[4].weight * N < 0.5)
			r->slow_out = t - off;
		if (r->fail_down < 0 && t >= fail && s.b[7].weight * N < 0.5)
			r->fail_down = t;
	}
	xm_wservice_free(&s);
}

static void cadence_reacts_as_fast_costs_less(void **st)
{
	for (int off = 0; off < 2; off++) {
		struct run every, cad;

		run_loop(false, off, &every);
		run_loop(true, off, &cad);
		print_message("offset %d: weighings before the change: every tick %d, cadence %d; "
			      "slow out at %d / %d; failure at %d / %d; |c| max %.3f / %.3f; "
			      "smallest weight x N %.2f / %.2f\n", off, every.weighings,
			      cad.weighings, every.slow_out, cad.slow_out, every.fail_down,
			      cad.fail_down, every.max_abs_c, cad.max_abs_c, every.w_min_before,
			      cad.w_min_before);
		/* About half the weighings at one request per backend and tick. */
		assert_true(cad.weighings * 2 <= every.weighings + 2);
		/* The far slower backend and the failing one: in the same tick as before. */
		assert_int_equal(every.slow_out, SLOW);
		assert_int_equal(cad.slow_out, SLOW);
		assert_int_equal(every.fail_down, FAIL);
		assert_int_equal(cad.fail_down, FAIL);
		/*
		 * Steady traffic stays steady for rate control: the deltas come with
		 * the time they took (a tick's time with two ticks' requests would read
		 * as the rate doubling, c = 1, and pull every weight to the mean).
		 */
		assert_true(cad.max_abs_c < 0.05);
		assert_true(cad.w_min_before > 0.9);
	}
}

/* A quiet service whose weighings stopped moving its weights waits longer, up to a bound. */
static void quiet_settled_waits_longer(void **st)
{
	struct xm_weigh_ref ref = { 0 };
	struct xm_lb_probe now = { 0 };
	bool quiet;

	assert_true(xm_weigh_waited_enough(&ref, XM_WEIGH_MAX_WAIT_S));
	xm_weigh_next_wait(&ref, true, 0, -1);
	assert_true(ref.max_wait == 2 * XM_WEIGH_MAX_WAIT_S);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, 1.5 * XM_WEIGH_MAX_WAIT_S, &quiet, false),
			 XM_WEIGH_WAIT);
	assert_true(quiet);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, 2 * XM_WEIGH_MAX_WAIT_S, &quiet, false),
			 XM_WEIGH_MAX_WAIT);
	for (int k = 0; k < 8; k++)
		xm_weigh_next_wait(&ref, true, XM_WEIGH_SETTLED_SHARE / 2, -1);
	assert_true(ref.max_wait == XM_WEIGH_QUIET_MAX_S);
	/* Not past the moment a backend starts to drift, nor below the usual bound. */
	xm_weigh_next_wait(&ref, true, 0, 5.0);
	assert_true(ref.max_wait == 5.0);
	xm_weigh_next_wait(&ref, true, 0, 0.5);
	assert_true(ref.max_wait == XM_WEIGH_MAX_WAIT_S);
	/* Weights still moving, or any news: the usual bound again. */
	xm_weigh_next_wait(&ref, true, 0, -1);
	xm_weigh_next_wait(&ref, true, 2 * XM_WEIGH_SETTLED_SHARE, -1);
	assert_true(ref.max_wait == XM_WEIGH_MAX_WAIT_S);
	xm_weigh_next_wait(&ref, true, 0, -1);
	xm_weigh_next_wait(&ref, false, 0, -1);
	assert_true(ref.max_wait == XM_WEIGH_MAX_WAIT_S);
	/* News end the longer wait at once, as before. */
	xm_weigh_next_wait(&ref, true, 0, -1);
	now.req_started = now.req_completed = 2 * N;
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_SAMPLES);
}

/*
 * An l3x service with a slow backend goes silent for 60 s; weighed every
 * XM_WEIGH_MAX_WAIT_S (the cadence before) or as the loop does now. The
 * longer waits reach the same weights at every weighing (no samples: each
 * filter takes the whole elapsed time in one step), weigh at the moment the
 * slow backend's estimate starts drifting back, follow the drift as before,
 * and weigh far fewer times once nothing moves.
 */
#define QUIET_S 60.0
static void quiet_run(bool backoff, double *w_at, int *weighings)
{
	struct xm_weigh_ref ref = { 0 };
	struct xm_lb_probe sum = { 0 };
	struct xm_wsample x[N];
	double before[N], waited = 0;
	struct xm_wservice s;
	int t;

	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, N), 0);
	for (t = 0; t < 20; t++) {
		for (int i = 0; i < N; i++) {
			double lat = i == 3 ? 4 * LAT : LAT;

			x[i] = (struct xm_wsample){ .requests = 10, .started = 10, .p99 = lat,
						    .p50 = lat, .alive = true };
			xt_probe_requests(&sum, 10, lat, 0);
		}
		xm_wservice_tick(&s, x, TICK);
		xm_weigh_ref_update(&ref, &sum, &s);
		xm_weigh_settle(&ref, &s, NULL);
	}
	*weighings = 0;
	for (t = 1; t <= (int)(QUIET_S / TICK); t++) {
		bool quiet;
		enum xm_weigh_why why;

		waited += TICK;
		why = xm_weigh_service_due(&ref, &sum, N, waited, &quiet, false);
		if (!backoff)
			why = xm_weigh_waited_enough(NULL, waited) ? XM_WEIGH_MAX_WAIT : XM_WEIGH_WAIT;
		if (why != XM_WEIGH_WAIT) {
			assert_true(quiet);
			for (int i = 0; i < N; i++) {
				x[i] = (struct xm_wsample){ .p99 = -1, .p50 = -1, .p99_2nd = -1,
							    .alive = true };
				before[i] = s.b[i].place;
			}
			xm_wservice_tick(&s, x, waited);
			xm_weigh_ref_update(&ref, &sum, &s);
			xm_weigh_settle(&ref, &s, before);
			waited = 0;
			++*weighings;
		}
		/* The share the table holds at t: from its last weighing. */
		w_at[t] = s.b[3].place;
	}
	xm_wservice_free(&s);
}

static void quiet_backoff_same_weights(void **st)
{
	double every[(int)(QUIET_S / TICK) + 1], back[(int)(QUIET_S / TICK) + 1], lag = 0;
	int n_every, n_back, first_move = -1, q = (int)(XM_WEIGH_MAX_WAIT_S / TICK);

	quiet_run(false, every, &n_every);
	quiet_run(true, back, &n_back);
	for (int t = 1; t <= (int)(QUIET_S / TICK); t++) {
		lag = fmax(lag, fabs(every[t] - back[t]));
		if (first_move < 0 && fabs(every[t] - every[q]) > 0.002)
			first_move = t;
	}
	print_message("slow backend's place from the first quiet weighing: %.4f -> %.4f (moves at %.1f s); weighings in %.0f s "
		      "quiet: every %.0f s %d, now %d; largest difference of the places %.5f\n",
		      every[q], every[(int)(QUIET_S / TICK)], first_move * TICK, QUIET_S,
		      XM_WEIGH_MAX_WAIT_S, n_every, n_back, lag);
	/* The drift back to the prior happens in this run and is followed as before. */
	assert_true(first_move > 0);
	assert_true(every[(int)(QUIET_S / TICK)] - every[q] > 0.003);
	assert_true(lag < 2 * XM_WEIGH_SETTLED_SHARE);
	/* And the quiet weighings are far fewer. */
	assert_true(n_back * 2 <= n_every);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(trickle_waits_until_samples),
		cmocka_unit_test(failure_at_once),
		cmocka_unit_test(slower_stall_and_age_at_once),
		cmocka_unit_test(cadence_reacts_as_fast_costs_less),
		cmocka_unit_test(quiet_settled_waits_longer),
		cmocka_unit_test(quiet_backoff_same_weights),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
