// SPDX-License-Identifier: MIT
/*
 * Synthetic traffic for measuring the weighting loop's cost at scale
 * (scripts/bench/weight-cost.sh): every period, for every backend of the pin
 * root, add requests to its probe counters and log-normal latencies to its
 * histogram, as if the datapath had seen them. Nothing goes over a socket;
 * the agent reads these maps exactly as it reads real probes.
 *
 *   fake_probes --pin-root DIR --rps R [--period-ms 500] [--duration S] [--fixed-us US]
 *               [--fail-pct P]
 *
 * Backend i gets R requests/s (Poisson-free: R x the time since the previous
 * round, so the rate holds however long a round takes) with a median of
 * 5 + (i % 10) ms, p99 3x the median, and P % failures (5xx, default 1). With
 * --fixed-us, every request of backend i takes exactly
 * xm_fake_fixed_ns(US, i) and none fails: tests know each backend's quantiles.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xmesh/lb.h>
#include "pin.h"

/* Backend id's latency with --fixed-us: US x 1, 1.25, ... 4 by id (steps of one bucket or more). */
static __u64 xm_fake_fixed_ns(double us, __u32 id)
{
	return (__u64)(us * 1000 * (4 + id % 13) / 4);
}

static double rnd01(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * Add this round's requests of backend id to its counters p and its histogram
 * (written here); 1 when the backend exists. *moved counts updated backends.
 */
static int fake_requests(int be_fd, int hist_fd, __u32 id, double per_round, double fixed_us,
			 double fail, double *carry, struct xm_lb_probe *p, struct xm_lb_hist *hist,
			 unsigned long long *seed, unsigned long *moved)
{
	struct xm_lb_backend be;
	double med, sigma;
	unsigned int n;

	if (bpf_map_lookup_elem(be_fd, &id, &be) || !(be.flags & XM_LB_BE_F_USED))
		return 0;
	*carry += per_round;
	n = (unsigned int)*carry;
	*carry -= n;
	if (!n || bpf_map_lookup_elem(hist_fd, &id, hist))
		return 1;
	med = (5 + id % 10) * 1e6;
	sigma = log(3) / 2.326;
	for (unsigned int k = 0; k < n; k++) {
		double u1 = rnd01(seed), u2 = rnd01(seed);
		double z = sqrt(-2 * log(u1 > 1e-12 ? u1 : 1e-12)) * cos(2 * M_PI * u2);
		__u64 ns = fixed_us > 0 ? xm_fake_fixed_ns(fixed_us, id) :
					  (__u64)(med * exp(sigma * z));

		hist->bucket[xm_lb_hist_bucket(ns)]++;
		p->latency_sum_ns += ns;
		if (fixed_us <= 0 && rnd01(seed) < fail)
			p->http_5xx++;
	}
	p->req_started += n;
	p->req_completed += n;
	p->conns += n;
	bpf_map_update_elem(hist_fd, &id, hist, BPF_ANY);
	(*moved)++;
	return 1;
}

int main(int argc, char **argv)
{
	const char *root = NULL;
	double rps = 2, period_ms = 500, duration = 60, fixed_us = 0, fail_pct = 1;
	int be_fd, probe_fd, hist_fd, gen_fd, ncpu = libbpf_num_possible_cpus();
	unsigned long long seed = 0x1234567, rounds = 0;
	struct xm_lb_probe_page *pc; /* one page of backends, every CPU's (CPU 0's is added to) */
	struct xm_lb_hist hist;
	__u64 *gen;
	__u32 zero = 0;
	double carry[XM_LB_MAX_BACKENDS] = { 0 };
	struct timespec t0, t, prev;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--pin-root") && i + 1 < argc)
			root = argv[++i];
		else if (!strcmp(argv[i], "--rps") && i + 1 < argc)
			rps = atof(argv[++i]);
		else if (!strcmp(argv[i], "--period-ms") && i + 1 < argc)
			period_ms = atof(argv[++i]);
		else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
			duration = atof(argv[++i]);
		else if (!strcmp(argv[i], "--fixed-us") && i + 1 < argc)
			fixed_us = atof(argv[++i]);
		else if (!strcmp(argv[i], "--fail-pct") && i + 1 < argc)
			fail_pct = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: fake_probes --pin-root DIR --rps R [--period-ms MS] "
					"[--duration S] [--fixed-us US] [--fail-pct P]\n");
			return 2;
		}
	}
	if (!root || ncpu <= 0)
		return 2;
	be_fd = xm_map_open(root, "xm_lb_be");
	probe_fd = xm_map_open(root, "xm_lb_probe");
	hist_fd = xm_map_open(root, "xm_lb_hist");
	gen_fd = xm_map_open(root, "xm_lb_probe_gen");
	if (be_fd < 0 || probe_fd < 0 || hist_fd < 0 || gen_fd < 0) {
		fprintf(stderr, "fake_probes: LB maps under %s: %s\n", root, strerror(errno));
		return 1;
	}
	pc = calloc(ncpu, sizeof(*pc));
	gen = calloc(ncpu, sizeof(*gen));
	if (!pc || !gen)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	prev = t0;
	for (;;) {
		unsigned long backends = 0, updates = 0;
		double since;

		clock_gettime(CLOCK_MONOTONIC, &t);
		since = rounds ? t.tv_sec - prev.tv_sec + (t.tv_nsec - prev.tv_nsec) / 1e9 :
				 period_ms / 1000;
		prev = t;

		for (__u32 page = 0; page < XM_LB_PROBE_PAGES; page++) {
			unsigned long moved = 0;

			/* A page of probes is read once and written once (xm_lb_probe_page). */
			if (bpf_map_lookup_elem(probe_fd, &page, pc))
				continue;
			for (__u32 k = 0; k < XM_LB_PROBE_PAGE; k++) {
				__u32 id = page * XM_LB_PROBE_PAGE + k;

				if (!id || id >= XM_LB_MAX_BACKENDS)
					continue;
				backends += fake_requests(be_fd, hist_fd, id, rps * since, fixed_us,
							  fail_pct / 100, &carry[id], &pc[0].b[k], &hist, &seed,
							  &moved);
			}
			if (moved)
				bpf_map_update_elem(probe_fd, &page, pc, BPF_ANY);
			updates += moved;
		}
		/* as lb_probe_of() does: the loop reads probes only when this moved */
		if (updates && !bpf_map_lookup_elem(gen_fd, &zero, gen)) {
			gen[0] += updates;
			bpf_map_update_elem(gen_fd, &zero, gen, BPF_ANY);
		}
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec + (t.tv_nsec - t0.tv_nsec) / 1e9 >= duration) {
			printf("fake_probes: %llu rounds, %lu backends, %.1f rps each\n", rounds,
			       backends, rps);
			return 0;
		}
		usleep((useconds_t)(period_ms * 1000));
	}
}
