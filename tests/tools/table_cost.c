// SPDX-License-Identifier: MIT
/*
 * table_cost: CPU per selection-table write, for scripts/bench/weight-cost.sh.
 *
 *   table_cost [--services N] [--backends B] [--reps R]
 *
 * On unpinned maps of the LB layout (N services of B backends each), writes
 * every service's table with new weights, R times, alternating two ways:
 * - single: xm_lb_table_write() per service (service lookup, table, flip,
 *   backend entries read and written: what the weighting loop did per write);
 * - batched: the weighting loop's way (user/agent/weighting.c, flips_flush()):
 *   tables of 32 services in one xm_lb_tables_write(), each service flipped
 *   with xm_lb_svc_flip() from a held copy of its entry, and the weights it
 *   was written from stored per backend (the loop stores them in its mmapped
 *   xm_lb_wstate: memory, no map write; the backend entries are not written).
 * Prints the median CPU (process clock) per table write of each, in µs:
 *   table_cost: services=N backends=B single_us=X batched_us=Y
 * Needs the right to create BPF maps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include "lbtable.h"

#define BATCH 32

struct world {
	struct xm_lb_maps m;
	unsigned int ns, nb;
	struct xm_lb_svc_key *keys;
	struct xm_lb_svc *svcs;          /* held copies, as the loop holds them */
	struct xm_lb_backend *be;        /* by backend id */
	__u32 *ids, *slots;              /* ns x nb */
	double *w;                       /* ns x nb */
};

static double cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int world_make(struct world *x)
{
	unsigned int nbe = x->ns * x->nb;

	x->m = (struct xm_lb_maps){ -1, -1, -1, -1, -1, -1, -1 };
	x->m.svc = bpf_map_create(BPF_MAP_TYPE_HASH, NULL, sizeof(*x->keys), sizeof(*x->svcs),
				  x->ns, NULL);
	x->m.tables = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, sizeof(__u32),
				     sizeof(struct xm_lb_table), x->ns * 2, NULL);
	x->m.be = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, sizeof(__u32), sizeof(*x->be),
				 nbe + 1, NULL);
	x->keys = calloc(x->ns, sizeof(*x->keys));
	x->svcs = calloc(x->ns, sizeof(*x->svcs));
	x->be = calloc(nbe + 1, sizeof(*x->be));
	x->ids = calloc(nbe, sizeof(*x->ids));
	x->slots = calloc(nbe, sizeof(*x->slots));
	x->w = calloc(nbe, sizeof(*x->w));
	if (x->m.svc < 0 || x->m.tables < 0 || x->m.be < 0)
		return -errno;
	if (!x->keys || !x->svcs || !x->be || !x->ids || !x->slots || !x->w)
		return -ENOMEM;
	for (unsigned int s = 0; s < x->ns; s++) {
		x->keys[s].vip.ip[0] = 0x0a640000 + s;
		x->keys[s].port = 80;
		x->keys[s].proto = IPPROTO_TCP;
		x->keys[s].family = 2; /* AF_INET */
		x->svcs[s].id = s;
		if (bpf_map_update_elem(x->m.svc, &x->keys[s], &x->svcs[s], BPF_ANY))
			return -errno;
		for (unsigned int b = 0; b < x->nb; b++) {
			__u32 id = s * x->nb + b + 1;

			x->ids[s * x->nb + b] = id;
			x->be[id].svc_id = s;
			x->be[id].flags = XM_LB_BE_F_USED;
			x->be[id].port = 8080;
			if (bpf_map_update_elem(x->m.be, &id, &x->be[id], BPF_ANY))
				return -errno;
		}
	}
	return 0;
}

static void write_single(struct world *x)
{
	for (unsigned int s = 0; s < x->ns; s++)
		xm_lb_table_write(&x->m, &x->keys[s], &x->ids[s * x->nb], &x->w[s * x->nb], x->nb);
}

static void write_batched(struct world *x, struct xm_lb_table *t, __u32 *shown_ppm)
{
	__u32 idx[BATCH], first = 0, n = 0;

	for (unsigned int s = 0; s < x->ns; s++) {
		__u32 *slots = &x->slots[s * x->nb], *ids = &x->ids[s * x->nb];

		xm_lb_slots_apportion(&x->w[s * x->nb], x->nb, slots);
		xm_lb_table_fill(&t[n], ids, slots, x->nb);
		idx[n++] = xm_lb_table_inactive(&x->svcs[s]);
		if (n < BATCH && s + 1 < x->ns)
			continue;
		xm_lb_tables_write(&x->m, idx, t, n);
		for (unsigned int v = first; v <= s; v++) {
			xm_lb_svc_flip(&x->m, &x->keys[v], &x->svcs[v],
				       xm_lb_slots_used(&x->slots[v * x->nb], x->nb));
			for (unsigned int b = 0; b < x->nb; b++)
				shown_ppm[x->ids[v * x->nb + b]] = (__u32)(x->w[v * x->nb + b] * 1e6);
		}
		first = s + 1;
		n = 0;
	}
}

int main(int argc, char **argv)
{
	struct world x = { .ns = 1000, .nb = 10 };
	unsigned int reps = 7;
	unsigned long long seed = 1;
	struct xm_lb_table *t;
	__u32 *shown_ppm;
	double *single, *batched;
	int err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--services") && i + 1 < argc)
			x.ns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--backends") && i + 1 < argc)
			x.nb = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: table_cost [--services N] [--backends B] [--reps R]\n");
			return 2;
		}
	}
	if (!x.ns || !x.nb || !reps) {
		fprintf(stderr, "table_cost: services, backends and reps must be at least 1\n");
		return 2;
	}
	err = world_make(&x);
	t = calloc(BATCH, sizeof(*t));
	shown_ppm = calloc(x.ns * x.nb + 1, sizeof(*shown_ppm));
	single = calloc(reps, sizeof(*single));
	batched = calloc(reps, sizeof(*batched));
	if (err || !t || !shown_ppm || !single || !batched) {
		fprintf(stderr, "table_cost: LB maps: %s (needs root)\n", strerror(err ? -err : ENOMEM));
		return 1;
	}
	for (unsigned int r = 0; r < reps; r++) {
		for (int way = 0; way < 2; way++) {
			double c0;

			for (unsigned int i = 0; i < x.ns * x.nb; i++) {
				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				x.w[i] = 0.5 + (double)(seed >> 40) / (1 << 24);
			}
			c0 = cpu_s();
			if (way)
				write_batched(&x, t, shown_ppm);
			else
				write_single(&x);
			(way ? batched : single)[r] = (cpu_s() - c0) / x.ns * 1e6;
			/* the held copies follow the flips made behind their back (not timed) */
			for (unsigned int s = 0; !way && s < x.ns; s++)
				bpf_map_lookup_elem(x.m.svc, &x.keys[s], &x.svcs[s]);
		}
	}
	qsort(single, reps, sizeof(*single), cmp_double);
	qsort(batched, reps, sizeof(*batched), cmp_double);
	printf("table_cost: services=%u backends=%u single_us=%.2f batched_us=%.2f\n", x.ns, x.nb,
	       single[reps / 2], batched[reps / 2]);
	return 0;
}
