// SPDX-License-Identifier: MIT
/*
 * What a steady failure rate moves in l3x's tables (docs/benchmarks.md,
 * "Weighting loop, session 14"): one service of 10 backends in user space,
 * the loop's cadence (weighdue.h) and table rule (tablewrite.h) around the
 * library's weights, fed as fake_probes feeds the agent (latency median
 * 5 + i ms, p99 3x, log-normal; failures at a steady rate per request, drawn
 * from their own stream so that the latencies are the same with and
 * without). From tick 2000 backend 7 fails 30 % for 6 s (a failure episode,
 * as scenarios/fail91.json). Per variant: weighings and table rewrites per
 * tick, the rewrites at a failure weighing and the rule that made them, how
 * a failure moves the failing backend's slots, how often the next rewrite
 * moves them back, the distance (total variation) of the tables in force to
 * those of the same run without failures (all backends fail alike: the
 * failure-free tables are the right ones), and backend 7's share in the
 * episode.
 *
 *   weigh_moves [TICKS]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbtable.h"
#include "tablewrite.h"
#include "weighdue.h"
#include "weight.h"

#define N 10
#define TICK 0.5
#define MAXT 20000
#define EP 2000    /* the episode's first tick */
#define EP_LEN 12  /* 6 s */
#define SKIP 100   /* ticks before counting */

static double rnd(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct variant {
	const char *name;
	double rps, fail;
	bool busy;        /* the busy wait (xm_weigh_busy_next()); else every tick with samples */
	double fail_alpha;
	double due_alpha; /* the service's due_fail_alpha (weighdue.h); 0: every failure at once */
	double succ_alpha; /* l3x's success_alpha (weight.h); 0: every failure moves the filter */
};

struct result {
	int weighings, rewrites, fail_weighings, fail_rewrites, fail_rel, fail_back, fail_small;
	double ratio_sum;
	int ratio_n;
	double ep_before, ep_mean;
	int ep_half;
};

static float tables[2][MAXT][N]; /* [0]: the run without failures */

static void run(const struct variant *v, int ticks, float (*tab)[N], struct result *r)
{
	unsigned long long seed_lat = 0x1234567, seed_fail = 0x7654321;
	struct xm_lb_probe now[N], then[N], sum;
	struct xm_weigh_ref ref;
	struct xm_wsample x[N];
	struct xm_wservice s;
	__u32 table[N] = { 0 }, want[N];
	double w[N], waited = 0, carry = 0, lat[N][256];
	unsigned int nl[N] = { 0 };
	__u64 acc[N] = { 0 }, accf[N] = { 0 }, written_ns = 0;
	bool written = false;
	int back_fb = -1, back_sign = 0;

	memset(r, 0, sizeof(*r));
	memset(now, 0, sizeof(now));
	memset(then, 0, sizeof(then));
	memset(&ref, 0, sizeof(ref));
	if (xm_wservice_init(&s, xm_weight_algo_find("l3x"), NULL, N))
		exit(1);
	s.p.fail_alpha = v->fail_alpha;
	s.p.success_alpha = v->succ_alpha;
	for (int t = 0; t < ticks; t++) {
		enum xm_weigh_why why = XM_WEIGH_FIRST;
		bool quiet = false, rewritten = false;
		int fb = -1, k;

		carry += v->rps * TICK;
		k = (int)carry;
		carry -= k;
		for (int i = 0; i < N; i++) {
			double med = (5 + i) * 1e-3, sigma = log(3) / 2.326;
			double fail = v->fail > 0 && i == 7 && t >= EP && t < EP + EP_LEN ? 0.3 : v->fail;

			for (int q = 0; q < k; q++) {
				double u1 = rnd(&seed_lat), u2 = rnd(&seed_lat);
				double z = sqrt(-2 * log(u1 > 1e-12 ? u1 : 1e-12)) * cos(2 * M_PI * u2);
				double l = med * exp(sigma * z);
				int f = rnd(&seed_fail) < fail;

				now[i].req_started++;
				now[i].req_completed++;
				now[i].latency_sum_ns += (__u64)(l * 1e9);
				now[i].http_5xx += f;
				if (nl[i] < 256)
					lat[i][nl[i]++] = l;
				acc[i]++;
				accf[i] += f;
				if (f)
					fb = i;
			}
		}
		waited += TICK;
		memset(&sum, 0, sizeof(sum));
		for (int i = 0; i < N; i++)
			xm_lb_probe_add(&sum, &now[i]);
		if (s.ticks) {
			bool noise = false;

			/* As the agent's weigh_due(): judged per backend when the sums show failures. */
			if (v->due_alpha > 0 && xm_weigh_new_failures(&ref, &sum)) {
				noise = true;
				for (int i = 0; i < N; i++)
					noise &= !xm_weigh_failures_news(&ref, &now[i], &then[i],
									 v->due_alpha);
			}
			why = xm_weigh_service_due(&ref, &sum, N, waited, &quiet, noise);
			xm_weigh_tick_seen(&ref, &sum);
			/* Every tick with samples: the cadence before the busy wait. */
			if (!v->busy && why == XM_WEIGH_WAIT &&
			    sum.req_completed - ref.then.req_completed >= 2 * N)
				why = XM_WEIGH_SAMPLES;
		}
		if (why != XM_WEIGH_WAIT) {
			double before = fb >= 0 ? table[fb] : 0;

			for (int i = 0; i < N; i++) {
				double p50 = -1, p99 = -1;

				/* The loop reads a histogram from 8 completions (XM_W_HIST_MIN). */
				if (nl[i] >= 8) {
					qsort(lat[i], nl[i], sizeof(double), cmp_d);
					p50 = lat[i][nl[i] / 2];
					p99 = lat[i][(int)ceil(0.99 * nl[i]) - 1];
					nl[i] = 0;
				}
				x[i] = (struct xm_wsample){ .requests = acc[i], .failures = accf[i],
							    .started = acc[i], .p50 = p50, .p99 = p99,
							    .p99_2nd = -1, .alive = true };
				acc[i] = accf[i] = 0;
			}
			xm_wservice_tick(&s, x, waited);
			xm_weigh_ref_update(&ref, &sum, &s);
			memcpy(then, now, sizeof(then));
			for (int i = 0; i < N; i++)
				w[i] = s.b[i].place;
			xm_lb_slots_apportion(w, N, want);
			if (!written || xm_table_write_due(table, want, N, s.p.table_deadband,
							   (__u64)(t * TICK * 1e9) - written_ns)) {
				bool rel = false;
				__u64 moved2 = 0;

				for (int i = 0; i < N; i++) {
					__u32 d = want[i] > table[i] ? want[i] - table[i] :
								       table[i] - want[i];

					moved2 += d;
					rel |= d >= XM_TW_SLOTS_NOW && d * 2 * N >= XM_LB_SLOTS &&
					       (2 * want[i] <= table[i] || want[i] >= 2 * table[i]);
				}
				if (t >= SKIP) {
					r->rewrites++;
					/* The previous failure's rewrite moved back by this one. */
					if (back_fb >= 0 &&
					    ((int)want[back_fb] - (int)table[back_fb]) * back_sign < 0)
						r->fail_back++;
				}
				back_fb = -1;
				if (t >= SKIP && written && why == XM_WEIGH_FAILURE && fb >= 0) {
					r->fail_rewrites++;
					r->fail_rel += rel;
					r->fail_small += moved2 < 2 * s.p.table_deadband * XM_LB_SLOTS;
					back_fb = fb;
					back_sign = want[fb] > table[fb] ? 1 : -1;
				}
				memcpy(table, want, sizeof(table));
				written = rewritten = true;
				written_ns = (__u64)(t * TICK * 1e9);
			}
			if (t >= SKIP && why == XM_WEIGH_FAILURE && fb >= 0) {
				r->fail_weighings++;
				if (before > 0) {
					r->ratio_sum += want[fb] / before;
					r->ratio_n++;
				}
			}
			xm_weigh_busy_next(&ref, why, waited, quiet, rewritten);
			waited = 0;
			r->weighings += t >= SKIP;
		}
		for (int i = 0; i < N; i++)
			tab[t][i] = (float)table[i] / XM_LB_SLOTS;
		if (t >= EP && t < EP + EP_LEN)
			r->ep_mean += tab[t][7] / EP_LEN;
		if (t >= EP && !r->ep_half && tab[t][7] < tab[EP - 1][7] / 2)
			r->ep_half = t - EP + 1;
	}
	r->ep_before = tab[EP - 1][7];
	xm_wservice_free(&s);
}

int main(int argc, char **argv)
{
	int ticks = argc > 1 ? atoi(argv[1]) : 4000;
	static const struct variant vs[] = {
		{ "every tick", 20, 0, false, 0, 0 },     { "every tick", 20, 0.01, false, 0, 0 },
		{ "every tick", 20, 0.01, false, 0.001, 0 }, { "busy wait", 20, 0, true, 0, 0 },
		{ "busy wait", 20, 0.01, true, 0, 0 },    { "busy wait", 20, 0.01, true, 0.001, 0 },
		{ "due 0.001", 20, 0.01, true, 0, 0.001 }, { "due 0.01", 20, 0.01, true, 0, 0.01 },
		{ "due 0.05", 20, 0.01, true, 0, 0.05 },  { "due 0.01", 20, 0, true, 0, 0.01 },
		{ "every tick", 2, 0, false, 0, 0 },      { "every tick", 2, 0.01, false, 0, 0 },
		{ "busy wait", 2, 0, true, 0, 0 },        { "busy wait", 2, 0.01, true, 0, 0 },
		{ "busy wait", 2, 0.01, true, 0.001, 0 }, { "due 0.01", 2, 0.01, true, 0, 0.01 },
		{ "due 0.05", 2, 0.01, true, 0, 0.05 },
		{ "succ .001", 20, 0.01, true, 0, 0.01, 0.001 },
		{ "succ 0.01", 20, 0.01, true, 0, 0.01, 0.01 },
		{ "succ 0.05", 20, 0.01, true, 0, 0.01, 0.05 },
		{ "succ 0.01", 20, 0, true, 0, 0.01, 0.01 },
		{ "succ .001", 2, 0.01, true, 0, 0.01, 0.001 },
		{ "succ 0.01", 2, 0.01, true, 0, 0.01, 0.01 },
		{ "succ 0.05", 2, 0.01, true, 0, 0.01, 0.05 },
	};

	if (ticks <= EP + EP_LEN || ticks > MAXT)
		return 2;
	printf("%-10s %3s %5s %6s %8s %8s %14s %9s %8s %6s %9s %8s %14s\n", "cadence", "rps",
	       "fail%", "alpha", "weighed", "rewrites", "fail_rewrites", "relative", "small",
	       "back", "fb_slots", "tv_mean", "episode_b7");
	for (size_t j = 0; j < sizeof(vs) / sizeof(vs[0]); j++) {
		const struct variant *v = &vs[j];
		struct variant clean = *v;
		struct result r, r0;
		double tv = 0;
		int n = ticks - SKIP;

		clean.fail = 0;
		run(&clean, ticks, tables[0], &r0);
		run(v, ticks, tables[1], &r);
		for (int t = SKIP; t < ticks; t++)
			for (int i = 0; i < N; i++)
				tv += fabs(tables[1][t][i] - tables[0][t][i]) / 2 / n;
		printf("%-10s %3.0f %5.1f %6.3f %8.3f %8.3f %6d of %5d %9d %8d %6d %8.2fx %8.3f %.3f->%.3f/%d\n",
		       v->name, v->rps, v->fail * 100, v->fail_alpha, (double)r.weighings / n,
		       (double)r.rewrites / n, r.fail_rewrites, r.fail_weighings, r.fail_rel,
		       r.fail_small, r.fail_back, r.ratio_n ? r.ratio_sum / r.ratio_n : 0, tv,
		       r.ep_before, r.ep_mean, r.ep_half);
	}
	return 0;
}
