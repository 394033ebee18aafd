// SPDX-License-Identifier: MIT
/*
 * Prometheus text format (version 0.0.4) of what the datapath counts: every
 * counter of xm_stat_descs as xmesh_<name>_total, and per backend its
 * probes, labelled service="VIP:PORT/proto", backend="ADDR:PORT", cluster.
 * Read from the pinned maps only, so it can run in any thread.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "lbtable.h"
#include "pin.h"
#include "progstats.h"
#include "stats.h"
#include <unistd.h>
#include <bpf/bpf.h>
#include <xmesh/rebalance.h>
#include <xmesh/weight.h>

/* Histogram bounds exported: the internal bucket edges nearest to a 1-2.5-5 series. */
static const double le_wanted_s[] = { 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
				      10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10 };
#define N_LE (sizeof(le_wanted_s) / sizeof(le_wanted_s[0]))

struct render {
	FILE *f;
	struct xm_lb_maps *m;
	int wfd; /* xm_lb_wstate (weighting loop), -1 if absent */
	int rfd; /* xm_lb_rstate (connection counts, rebalancing), -1 if absent */
	int pass; /* one metric family per pass, as the format wants them grouped */
};

/*
 * A label value as the text format wants it: backslash, double quote and
 * newline escaped, so that no value (a cluster name comes from the config)
 * can end its label and write a series of its own.
 */
static const char *label_escape(const char *v, char *buf, size_t len)
{
	size_t o = 0;

	for (; *v && o + 2 < len; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			buf[o++] = '\\';
			buf[o++] = *v == '\n' ? 'n' : *v;
		} else {
			buf[o++] = *v;
		}
	}
	buf[o] = '\0';
	return buf;
}

static void labels(const struct xm_lb_backend_info *bi, char *buf, size_t len)
{
	char svc[96], a[XM_ADDR_STRLEN], cluster[2 * XM_LB_CLUSTER_NAME_LEN + 1];

	xm_addr_str(bi->be.family, &bi->be.addr, a, sizeof(a));
	snprintf(buf, len, "service=\"%s\",backend=\"%s%s%s:%u\",cluster=\"%s\"",
		 xm_lb_svc_key_str(&bi->svc, svc, sizeof(svc)), bi->be.family == AF_INET6 ? "[" : "",
		 a, bi->be.family == AF_INET6 ? "]" : "", bi->be.port,
		 label_escape(bi->cluster, cluster, sizeof(cluster)));
}

/* Index of the first bucket above le (ns): buckets [0, i) are all <= le. */
static __u32 bucket_edge(double le_ns)
{
	__u32 i = 0;

	while (i < XM_LB_HIST_BUCKETS && (double)(xm_lb_hist_lower(i) + xm_lb_hist_width(i)) <= le_ns)
		i++;
	return i;
}

/* Passes 8..12: the weighting loop's view (include/xmesh/weight.h). */
static void render_weighting(struct render *r, const struct xm_lb_backend_info *bi, const char *l)
{
	struct xm_lb_wstate w;
	char algo[2 * sizeof(w.algo) + 1];
	__u32 id = bi->id;

	if (r->wfd < 0 || bpf_map_lookup_elem(r->wfd, &id, &w) || !w.updated_ns)
		return;
	w.algo[sizeof(w.algo) - 1] = 0;
	label_escape(w.algo, algo, sizeof(algo));
	switch (r->pass) {
	case 8: fprintf(r->f, "xmesh_backend_filtered_p99_seconds{%s,algorithm=\"%s\"} %.6f\n", l, algo, w.p99_us / 1e6); break;
	case 9: fprintf(r->f, "xmesh_backend_latency_estimate_seconds{%s,algorithm=\"%s\"} %.6f\n", l, algo, w.l_est_us / 1e6); break;
	case 10: fprintf(r->f, "xmesh_backend_filtered_success_ratio{%s,algorithm=\"%s\"} %.6f\n", l, algo, w.success_ppm / 1e6); break;
	case 11: fprintf(r->f, "xmesh_backend_filtered_rps{%s,algorithm=\"%s\"} %.3f\n", l, algo, w.rps_milli / 1e3); break;
	case 12:
		if (w.weight_ppm != XM_WEIGHT_UNSET)
			fprintf(r->f, "xmesh_backend_computed_weight{%s,algorithm=\"%s\"} %.6f\n", l, algo, w.weight_ppm / 1e6);
		break;
	}
}

/* Passes 13..15: connections held and retired (include/xmesh/rebalance.h). */
static void render_rebalance(struct render *r, const struct xm_lb_backend_info *bi, const char *l)
{
	struct xm_lb_rstate s;
	__u32 id = bi->id;

	if (r->rfd < 0 || bpf_map_lookup_elem(r->rfd, &id, &s) || !s.updated_ns)
		return;
	switch (r->pass) {
	case 13: fprintf(r->f, "xmesh_backend_connections_held{%s} %u\n", l, s.held); break;
	case 14: fprintf(r->f, "xmesh_backend_connections_idle{%s} %u\n", l, s.idle); break;
	case 15: fprintf(r->f, "xmesh_backend_connections_retired_total{%s} %llu\n", l, (unsigned long long)s.retired_total); break;
	}
}

static int render_backend(const struct xm_lb_backend_info *bi, void *arg)
{
	struct render *r = arg;
	struct xm_lb_probe_snap *s;
	char l[256];
	FILE *f = r->f;

	if (r->pass >= 8) {
		labels(bi, l, sizeof(l));
		if (r->pass >= 13)
			render_rebalance(r, bi, l);
		else
			render_weighting(r, bi, l);
		return 0;
	}

	s = malloc(sizeof(*s));
	if (!s)
		return -1;
	if (xm_lb_probe_read(r->m, bi->id, s)) {
		free(s);
		return 0;
	}
	labels(bi, l, sizeof(l));
	switch (r->pass) {
	case 0: fprintf(f, "xmesh_backend_requests_total{%s} %llu\n", l, (unsigned long long)s->c.req_completed); break;
	case 1:
		fprintf(f, "xmesh_backend_failures_total{%s,reason=\"http_5xx\"} %llu\n", l, (unsigned long long)s->c.http_5xx);
		fprintf(f, "xmesh_backend_failures_total{%s,reason=\"aborted\"} %llu\n", l, (unsigned long long)s->c.req_aborted);
		fprintf(f, "xmesh_backend_failures_total{%s,reason=\"connect_refused\"} %llu\n", l, (unsigned long long)s->c.conn_refused);
		fprintf(f, "xmesh_backend_failures_total{%s,reason=\"connect_timeout\"} %llu\n", l, (unsigned long long)s->c.conn_timeout);
		break;
	case 2: fprintf(f, "xmesh_backend_resets_total{%s} %llu\n", l, (unsigned long long)s->c.resets); break;
	case 3: fprintf(f, "xmesh_backend_connections_total{%s} %llu\n", l, (unsigned long long)s->c.conns); break;
	case 4: fprintf(f, "xmesh_backend_in_flight{%s} %lld\n", l, (long long)xm_lb_in_flight(&s->c)); break;
	case 5: fprintf(f, "xmesh_backend_weight{%s} %.3f\n", l, bi->weight); break;
	case 6: fprintf(f, "xmesh_backend_share{%s} %.6f\n", l, (double)bi->slots / XM_LB_SLOTS); break;
	case 7: {
		__u64 cum = 0;
		__u32 from = 0;

		for (size_t k = 0; k < N_LE; k++) {
			__u32 edge = bucket_edge(le_wanted_s[k] * 1e9);

			for (; from < edge; from++)
				cum += s->hist[from];
			fprintf(f, "xmesh_backend_latency_seconds_bucket{%s,le=\"%.9g\"} %llu\n", l,
				edge ? (xm_lb_hist_lower(edge - 1) + xm_lb_hist_width(edge - 1)) / 1e9 : 0.0,
				(unsigned long long)cum);
		}
		for (; from < XM_LB_HIST_BUCKETS; from++)
			cum += s->hist[from];
		fprintf(f, "xmesh_backend_latency_seconds_bucket{%s,le=\"+Inf\"} %llu\n", l, (unsigned long long)cum);
		fprintf(f, "xmesh_backend_latency_seconds_sum{%s} %.9f\n", l, s->c.latency_sum_ns / 1e9);
		fprintf(f, "xmesh_backend_latency_seconds_count{%s} %llu\n", l, (unsigned long long)cum);
		break;
	}
	}
	free(s);
	return 0;
}

/*
 * Per program: runs and run time (the kernel counts them only while BPF
 * run-time statistics are on; see 'xmeshctl prog profile'), and whether they are.
 */
static void render_progs(FILE *f, const char *pin_root)
{
	struct xm_prog_stat s[64];
	int n = xm_prog_stats_read(pin_root, s, 64);

	if (n <= 0)
		return;
	n = n < 64 ? n : 64;
	fprintf(f, "# HELP xmesh_bpf_stats_enabled kernel.bpf_stats_enabled (1: run counts and "
		"times below move)\n# TYPE xmesh_bpf_stats_enabled gauge\n"
		"xmesh_bpf_stats_enabled %d\n", xm_bpf_stats_sysctl() == 1);
	fprintf(f, "# HELP xmesh_bpf_prog_runs_total runs of an xmesh BPF program while "
		"statistics were on\n# TYPE xmesh_bpf_prog_runs_total counter\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "xmesh_bpf_prog_runs_total{prog=\"%s\",id=\"%u\"} %llu\n", s[i].name,
			s[i].id, (unsigned long long)s[i].run_cnt);
	fprintf(f, "# HELP xmesh_bpf_prog_run_seconds_total time spent in an xmesh BPF program "
		"while statistics were on\n# TYPE xmesh_bpf_prog_run_seconds_total counter\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "xmesh_bpf_prog_run_seconds_total{prog=\"%s\",id=\"%u\"} %.9f\n",
			s[i].name, s[i].id, s[i].run_time_ns / 1e9);
}

char *xm_metrics_render(const char *pin_root, size_t *len)
{
	static const char *const fam[][3] = {
		{ "xmesh_backend_requests_total", "counter", "requests whose response began" },
		{ "xmesh_backend_failures_total", "counter", "failed requests and connects, by reason" },
		{ "xmesh_backend_resets_total", "counter", "established connections reset" },
		{ "xmesh_backend_connections_total", "counter", "TCP connections established" },
		{ "xmesh_backend_in_flight", "gauge", "requests waiting for their response" },
		{ "xmesh_backend_weight", "gauge", "weight in the selection table" },
		{ "xmesh_backend_share", "gauge", "share of new connections (slots / 1024)" },
		{ "xmesh_backend_latency_seconds", "histogram", "time from request to first response byte" },
		{ "xmesh_backend_filtered_p99_seconds", "gauge", "weighting loop: filtered p99 latency (L_s)" },
		{ "xmesh_backend_latency_estimate_seconds", "gauge", "weighting loop: latency estimate L_est" },
		{ "xmesh_backend_filtered_success_ratio", "gauge", "weighting loop: filtered success rate" },
		{ "xmesh_backend_filtered_rps", "gauge", "weighting loop: filtered requests per second" },
		{ "xmesh_backend_computed_weight", "gauge", "weighting loop: computed share of new connections" },
		{ "xmesh_backend_connections_held", "gauge", "client connections held (agent's last count)" },
		{ "xmesh_backend_connections_idle", "gauge", "of those, idle (no request, nothing unread)" },
		{ "xmesh_backend_connections_retired_total", "counter", "idle connections retired by rebalancing" },
	};
	const int npass = sizeof(fam) / sizeof(fam[0]);
	struct xm_lb_wloop wl;
	__u32 zero = 0;
	int lfd;
	__u64 stats[XM_STAT_MAX];
	struct xm_lb_maps m;
	struct render r;
	char *buf = NULL;
	bool have_lb;

	r.f = open_memstream(&buf, len);
	if (!r.f)
		return NULL;
	if (!xm_stats_read(pin_root, stats)) {
		for (unsigned int i = 0; i < xm_stat_desc_count; i++) {
			const struct xm_stat_desc *d = &xm_stat_descs[i];

			fprintf(r.f, "# HELP xmesh_%s_total %s\n# TYPE xmesh_%s_total counter\n"
				"xmesh_%s_total %llu\n", d->name, d->help, d->name, d->name,
				(unsigned long long)stats[d->idx]);
		}
	}
	have_lb = xm_lb_maps_open(&m, pin_root) == 0;
	r.m = &m;
	r.wfd = xm_map_open(pin_root, "xm_lb_wstate");
	r.rfd = xm_map_open(pin_root, "xm_lb_rstate");
	for (r.pass = 0; have_lb && r.pass < npass; r.pass++) {
		fprintf(r.f, "# HELP %s %s\n# TYPE %s %s\n", fam[r.pass][0], fam[r.pass][2],
			fam[r.pass][0], fam[r.pass][1]);
		xm_lb_backend_foreach(&m, NULL, render_backend, &r);
	}
	if (have_lb)
		xm_lb_maps_close(&m);
	if (r.wfd >= 0)
		close(r.wfd);
	if (r.rfd >= 0)
		close(r.rfd);
	lfd = xm_map_open(pin_root, "xm_lb_wloop");
	if (lfd >= 0 && !bpf_map_lookup_elem(lfd, &zero, &wl) && wl.ticks) {
		fprintf(r.f, "# HELP xmesh_weighting_ticks_total weighting loop ticks\n"
			"# TYPE xmesh_weighting_ticks_total counter\nxmesh_weighting_ticks_total %llu\n",
			(unsigned long long)wl.ticks);
		fprintf(r.f, "# HELP xmesh_weighting_cpu_seconds_total CPU time of the weighting loop\n"
			"# TYPE xmesh_weighting_cpu_seconds_total counter\n"
			"xmesh_weighting_cpu_seconds_total %.6f\n", wl.total_cost_ns / 1e9);
		fprintf(r.f, "# HELP xmesh_weighting_table_writes_total selection tables rewritten\n"
			"# TYPE xmesh_weighting_table_writes_total counter\n"
			"xmesh_weighting_table_writes_total %llu\n", (unsigned long long)wl.table_writes);
	}
	if (lfd >= 0)
		close(lfd);
	render_progs(r.f, pin_root);
	fclose(r.f);
	return buf;
}
