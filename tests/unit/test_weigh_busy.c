// SPDX-License-Identifier: MIT
/*
 * A busy service whose weighings leave its table as it was banks its samples
 * longer (user/lib/weighdue.c, xm_weigh_busy_next()): 1, 2, 4 ticks up to
 * XM_WEIGH_BUSY_MAX_S, back to one tick with a table rewrite; what weights
 * react to at once still is weighed at once, a slow tick also when the wait
 * is long, and the weights reached are those of weighing every tick.
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
#define LAT 0.040  /* s */
#define PER_TICK 10 /* requests per backend and tick: 20 rps */

/* A primed l3x service weighed after a busy tick at LAT: its reference and counters. */
static void weighed_service(struct xm_wservice *s, struct xm_weigh_ref *ref,
			    struct xm_lb_probe *now)
{
	struct xm_wsample x[N];

	assert_int_equal(xm_wservice_init(s, xm_weight_algo_find("l3x"), NULL, N), 0);
	for (int t = 0; t < 8; t++) {
		for (int i = 0; i < N; i++)
			x[i] = (struct xm_wsample){ .requests = PER_TICK, .started = PER_TICK,
						    .p99 = LAT, .p50 = LAT, .alive = true };
		xm_wservice_tick(s, x, TICK);
	}
	memset(ref, 0, sizeof(*ref));
	memset(now, 0, sizeof(*now));
	xt_probe_requests(now, PER_TICK * N, LAT, 0);
	xm_weigh_ref_update(ref, now, s);
}

/*
 * Ticks of healthy busy traffic until the service is due, as the loop looks
 * at it (xm_weigh_tick_seen() every tick): how many, and why it was due.
 */
static int ticks_to_due(struct xm_weigh_ref *ref, struct xm_lb_probe *now,
			enum xm_weigh_why *why)
{
	bool quiet;

	for (int t = 1; t <= 64; t++) {
		xt_probe_requests(now, PER_TICK * N, LAT, 0);
		*why = xm_weigh_service_due(ref, now, N, t * TICK, &quiet, false);
		xm_weigh_tick_seen(ref, now);
		if (*why != XM_WEIGH_WAIT)
			return t;
	}
	return -1;
}

/* Weighed as the loop does after ticks_to_due(): the reference, then the wait. */
static int weigh_unchanged(struct xm_wservice *s, struct xm_weigh_ref *ref,
			   struct xm_lb_probe *now, bool rewritten)
{
	enum xm_weigh_why why;
	int t = ticks_to_due(ref, now, &why);

	xm_weigh_ref_update(ref, now, s);
	xm_weigh_busy_next(ref, why, t * TICK, false, rewritten);
	return t;
}

static void busy_still_waits_longer(void **st)
{
	struct xm_wservice s;
	struct xm_weigh_ref ref, kept;
	struct xm_lb_probe now, then;
	enum xm_weigh_why why;
	bool quiet;

	weighed_service(&s, &ref, &now);
	/* Every tick while the table moves (the cadence before). */
	assert_int_equal(weigh_unchanged(&s, &ref, &now, true), 1);
	assert_int_equal(weigh_unchanged(&s, &ref, &now, true), 1);
	/* It holds still: 1, 2, 4 ticks, then every XM_WEIGH_BUSY_MAX_S. */
	assert_int_equal(weigh_unchanged(&s, &ref, &now, false), 1);
	assert_int_equal(weigh_unchanged(&s, &ref, &now, false), 2);
	assert_int_equal(weigh_unchanged(&s, &ref, &now, false), 4);
	assert_true(ref.busy_wait == XM_WEIGH_BUSY_MAX_S);
	assert_int_equal(weigh_unchanged(&s, &ref, &now, false), 4);
	assert_true(ref.busy_wait == XM_WEIGH_BUSY_MAX_S);
	/* A rewrite: one tick again. */
	assert_int_equal(weigh_unchanged(&s, &ref, &now, true), 4);
	assert_int_equal(weigh_unchanged(&s, &ref, &now, false), 1);
	assert_int_equal(weigh_unchanged(&s, &ref, &now, false), 2);

	/* A failure mid-wait is weighed at once, and the wait stays as long. */
	kept = ref;
	then = now;
	xt_probe_requests(&now, PER_TICK * N, LAT, 1);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, TICK, &quiet, false), XM_WEIGH_FAILURE);
	xm_weigh_ref_update(&ref, &now, &s);
	xm_weigh_busy_next(&ref, XM_WEIGH_FAILURE, TICK, false, false);
	assert_true(ref.busy_wait == kept.busy_wait);
	assert_int_equal(ticks_to_due(&ref, &now, &why), 4);
	assert_int_equal(why, XM_WEIGH_MAX_WAIT); /* the busy wait's cap is the max wait */
	/* Stall, age, slower: the same. */
	for (enum xm_weigh_why w = XM_WEIGH_SLOWER; w <= XM_WEIGH_AGE; w++) {
		xm_weigh_busy_next(&ref, w, TICK, false, false);
		assert_true(ref.busy_wait == kept.busy_wait);
	}
	/* A first weighing, rebalancing, or a quiet weighing: one tick again. */
	xm_weigh_busy_next(&ref, XM_WEIGH_FIRST, TICK, false, false);
	assert_true(ref.busy_wait == 0);
	ref.busy_wait = XM_WEIGH_BUSY_MAX_S;
	xm_weigh_busy_next(&ref, XM_WEIGH_REBALANCE, TICK, false, false);
	assert_true(ref.busy_wait == 0);
	ref.busy_wait = XM_WEIGH_BUSY_MAX_S;
	xm_weigh_busy_next(&ref, XM_WEIGH_MAX_WAIT, XM_WEIGH_MAX_WAIT_S, true, false);
	assert_true(ref.busy_wait == 0);
	(void)then;
	xm_wservice_free(&s);
}

/*
 * Three healthy ticks banked, then a tick where one backend of ten is 20x
 * slower: over the four ticks the mean is 1.5x the recent one (under the 2x
 * of "slower"), over the last tick alone 2.9x: weighed in that tick.
 */
static void busy_wait_slow_tick_not_diluted(void **st)
{
	struct xm_wservice s;
	struct xm_weigh_ref ref;
	struct xm_lb_probe now, window;
	bool quiet;

	weighed_service(&s, &ref, &now);
	ref.busy_wait = XM_WEIGH_BUSY_MAX_S;
	for (int t = 1; t <= 3; t++) {
		xt_probe_requests(&now, PER_TICK * N, LAT, 0);
		assert_int_equal(xm_weigh_service_due(&ref, &now, N, t * TICK, &quiet, false),
				 XM_WEIGH_WAIT);
		xm_weigh_tick_seen(&ref, &now);
	}
	xt_probe_requests(&now, PER_TICK * (N - 1), LAT, 0);
	xt_probe_requests(&now, PER_TICK, 20 * LAT, 0);
	/* The whole window alone would not say "slower". */
	window = now;
	assert_true((double)(window.latency_sum_ns - ref.then.latency_sum_ns) /
			    (window.req_completed - ref.then.req_completed) <
		    XM_WEIGH_SLOWER_FACTOR * ref.lat_ns / ref.done);
	assert_int_equal(xm_weigh_service_due(&ref, &now, N, 4 * TICK, &quiet, false), XM_WEIGH_SLOWER);
	xm_wservice_free(&s);
}

/*
 * The loop in small at 20 rps per backend, latencies by backend 30..57 ms,
 * backend 2 turning 3x slower at tick STEP (not "slower": 1.2x the service's
 * mean), no failures. Weighed every tick, or with the busy waits and the
 * table rewritten as the loop rewrites it (service deadband). The table in
 * force at every tick, and the weights at the end, are compared.
 */
#define BT 120
#define STEP 60
static void busy_run(bool waits, double table_at[BT][N], double *end, int *weighings)
{
	struct xm_lb_probe now[N] = { 0 }, sum;
	struct xm_weigh_ref ref = { 0 };
	struct xm_wsample x[N];
	struct xm_wservice s;
	__u32 table[N] = { 0 }, want[N];
	bool written = false;
	double waited = 0, worst[N] = { 0 }, w[N];
	__u64 acc[N] = { 0 }, written_ns = 0;

	assert_int_equal(xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, N), 0);
	*weighings = 0;
	for (int t = 0; t < BT; t++) {
		enum xm_weigh_why why = XM_WEIGH_FIRST;
		__u64 t_ns = (__u64)(t * TICK * 1e9);
		bool quiet = false, rewritten = false;

		for (int i = 0; i < N; i++) {
			double lat = (0.030 + 0.003 * i) * (i == 2 && t >= STEP ? 3 : 1);

			xt_probe_requests(&now[i], PER_TICK, lat, 0);
			acc[i] += PER_TICK;
			worst[i] = fmax(worst[i], lat);
		}
		waited += TICK;
		memset(&sum, 0, sizeof(sum));
		for (int i = 0; i < N; i++)
			xm_lb_probe_add(&sum, &now[i]);
		if (s.ticks) {
			why = xm_weigh_service_due(&ref, &sum, N, waited, &quiet, false);
			xm_weigh_tick_seen(&ref, &sum);
			if (!waits)
				why = XM_WEIGH_SAMPLES;
		}
		if (why != XM_WEIGH_WAIT) {
			for (int i = 0; i < N; i++) {
				x[i] = (struct xm_wsample){ .requests = acc[i], .started = acc[i],
							    .p99 = 1.5 * worst[i], .p50 = worst[i],
							    .alive = true };
				acc[i] = 0;
				worst[i] = 0;
			}
			xm_wservice_tick(&s, x, waited);
			xm_weigh_ref_update(&ref, &sum, &s);
			for (int i = 0; i < N; i++)
				w[i] = s.b[i].place;
			xm_lb_slots_apportion(w, N, want);
			if (!written ||
			    xm_table_write_due(table, want, N, s.p.table_deadband, t_ns - written_ns)) {
				memcpy(table, want, sizeof(table));
				written = rewritten = true;
				written_ns = t_ns;
			}
			xm_weigh_busy_next(&ref, why, waited, quiet, rewritten);
			waited = 0;
			++*weighings;
		}
		for (int i = 0; i < N; i++)
			table_at[t][i] = (double)table[i] / XM_LB_SLOTS;
	}
	for (int i = 0; i < N; i++)
		end[i] = s.b[i].place;
	xm_wservice_free(&s);
}

static void busy_waits_same_weights(void **st)
{
	static double every[BT][N], busy[BT][N];
	double end_every[N], end_busy[N], tv_max = 0, tv_step = 0, tv_sum = 0, end_max = 0;
	int n_every, n_busy, slow_every = -1, slow_busy = -1;

	busy_run(false, every, end_every, &n_every);
	busy_run(true, busy, end_busy, &n_busy);
	for (int t = 20; t < BT; t++) {
		double tv = 0;

		for (int i = 0; i < N; i++)
			tv += fabs(every[t][i] - busy[t][i]) / 2;
		/* The step is followed up to XM_WEIGH_BUSY_MAX_S later: apart. */
		if (t >= STEP && t < STEP + XM_WEIGH_BUSY_MAX_S / TICK)
			tv_step = fmax(tv_step, tv);
		else
			tv_max = fmax(tv_max, tv);
		tv_sum += tv;
		if (t >= STEP && slow_every < 0 && every[t][2] < every[STEP - 1][2] * 0.75)
			slow_every = t;
		if (t >= STEP && slow_busy < 0 && busy[t][2] < busy[STEP - 1][2] * 0.75)
			slow_busy = t;
	}
	for (int i = 0; i < N; i++)
		end_max = fmax(end_max, fabs(end_every[i] - end_busy[i]));
	print_message("weighings in %d ticks: every tick %d, busy waits %d; tables in force: "
		      "largest distance %.4f (%.4f in the 2 s after the step), mean %.4f; weights "
		      "at the end: largest difference %.4f; slow backend's table under 3/4 at "
		      "tick %d / %d (step %d)\n",
		      BT, n_every, n_busy, tv_max, tv_step, tv_sum / (BT - 20), end_max, slow_every,
		      slow_busy, STEP);
	/* Far fewer weighings... */
	assert_true(n_busy * 2 <= n_every);
	/*
	 * ...the tables in force within the deadband of every tick's but for the
	 * step's first 2 s, the weights near the same.
	 */
	assert_true(tv_max <= 0.05);
	assert_true(tv_sum / (BT - 20) <= 0.01);
	assert_true(end_max < 0.01);
	/* A backend turning 3x slower leaves its share within 2 s of the same moment. */
	assert_true(slow_every > 0 && slow_busy > 0 && slow_busy - slow_every <= 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(busy_still_waits_longer),
		cmocka_unit_test(busy_wait_slow_tick_not_diluted),
		cmocka_unit_test(busy_waits_same_weights),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
