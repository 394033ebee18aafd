// SPDX-License-Identifier: MIT
/*
 * xmeshctl top [SERVICE] [interval MS] [count N]: a live view of every
 * service's backends, redrawn every second. Per backend: a bar of its share
 * of new connections (selection table) with an arrow when it moved since
 * the last frame, the connections and requests it actually got per second,
 * the weighting loop's filtered p99 / L_est / success rate, and in-flight
 * requests, and the pooled client connections it holds and retires per
 * second (connection-level rebalancing, rstate.c). A traffic shift shows as
 * bars shrinking and growing, arrows, and conn/s following. In JSON mode (-j)
 * each frame is one JSON object per line.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xmesh/weight.h>
#include "addr.h"
#include "ctl.h"
#include "lbtable.h"
#include "numparse.h"
#include "monoclock.h"

#define BAR 20

/* One backend of a frame, in display units; both printers are fed from it. */
struct top_row {
	struct xm_lb_backend_info bi;
	struct xm_lb_probe c;
	char endpoint[XM_ADDR_STRLEN + 10];
	double share, share_change, conn_per_s, req_per_s;
	bool has_w, has_r;
	struct ctl_wview w;
	struct ctl_rview rb;
};

struct top_rows {
	struct top_row *r;
	size_t n, cap;
};

static volatile sig_atomic_t top_stop;

static void on_sigint(int sig)
{
	top_stop = 1;
}

static int top_collect(const struct xm_lb_backend_info *bi, void *arg)
{
	struct top_rows *t = arg;

	if (t->n == t->cap) {
		struct top_row *n = realloc(t->r, (t->cap = t->cap * 2 + 16) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->r = n;
	}
	memset(&t->r[t->n], 0, sizeof(t->r[0]));
	t->r[t->n++].bi = *bi;
	return 0;
}

/* Previous frame's rows, to compute rates and share changes by backend id. */
static const struct top_row *find_prev(const struct top_rows *p, __u32 id)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].bi.id == id)
			return &p->r[i];
	return NULL;
}

/* The display values of this frame's rows, against the previous frame. */
static void frame_fill(struct top_rows *cur, const struct top_rows *prev, double dt, int wfd,
		       int rfd)
{
	char a[XM_ADDR_STRLEN];

	for (size_t i = 0; i < cur->n; i++) {
		struct top_row *r = &cur->r[i];
		const struct top_row *p = find_prev(prev, r->bi.id);

		xm_addr_str(r->bi.be.family, &r->bi.be.addr, a, sizeof(a));
		snprintf(r->endpoint, sizeof(r->endpoint),
			 r->bi.be.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, r->bi.be.port);
		r->share = (double)r->bi.slots / XM_LB_SLOTS;
		r->share_change = p ? r->share - p->share : 0.0;
		r->conn_per_s = p && dt > 0 ? (r->c.conns - p->c.conns) / dt : 0.0;
		r->req_per_s = p && dt > 0 ? (r->c.req_completed - p->c.req_completed) / dt : 0.0;
		r->has_w = ctl_wview_read(wfd, r->bi.id, &r->w);
		r->has_r = ctl_rview_read(rfd, r->bi.id, &r->rb);
	}
}

static void frame_print_json(const struct top_rows *cur, const struct xm_lb_wloop *wl)
{
	json_t *frame = json_object(), *arr = json_array();
	char svc[96];
	struct timespec now;

	/* Wall-clock time of the frame, to line frames up with other recordings. */
	clock_gettime(CLOCK_REALTIME, &now);
	json_object_set_new(frame, "time", json_real(now.tv_sec + now.tv_nsec / 1e9));

	if (wl)
		json_object_set_new(frame, "loop",
				    json_pack("{s:I, s:i, s:f, s:f, s:i, s:i, s:I, s:I}", "ticks",
					      (json_int_t)wl->ticks, "tick_ms", (int)wl->tick_ms,
					      "last_tick_cost_ms", wl->last_cost_ns / 1e6,
					      "total_cost_ms", wl->total_cost_ns / 1e6, "services",
					      (int)wl->services, "backends", (int)wl->backends,
					      "table_writes", (json_int_t)wl->table_writes,
					      "weighed_total", (json_int_t)wl->weighed_total));
	for (size_t i = 0; i < cur->n; i++) {
		const struct top_row *r = &cur->r[i];
		json_t *o;

		o = json_pack("{s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:I}", "service",
			      xm_lb_svc_key_str(&r->bi.svc, svc, sizeof(svc)), "backend", r->endpoint,
			      "cluster", r->bi.cluster, "share", r->share, "share_change",
			      r->share_change, "conn_per_s", r->conn_per_s, "req_per_s", r->req_per_s,
			      "in_flight", (json_int_t)xm_lb_in_flight(&r->c));
		if (o && r->has_w)
			json_object_set_new(o, "filtered", ctl_wview_json(&r->w));
		if (o && r->has_r)
			json_object_set_new(o, "rebalance", ctl_rview_json(&r->rb));
		json_array_append_new(arr, o);
	}
	json_object_set_new(frame, "backends", arr);
	/* One frame per line, whatever -p says: a stream of objects. */
	json_dumpf(frame, stdout, JSON_COMPACT);
	printf("\n");
	fflush(stdout);
	json_decref(frame);
}

static void frame_print_plain(const struct top_rows *cur, const struct xm_lb_wloop *wl)
{
	char svc[96], last_svc[96] = "", ts[32];
	time_t now = time(NULL);

	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
	printf("\033[H\033[2J");
	printf("xmesh top  %s", ts);
	if (wl)
		printf("   weighting: tick %u ms, %llu ticks, last tick %.2f ms CPU, %u services, "
		       "%u backends", wl->tick_ms, (unsigned long long)wl->ticks,
		       wl->last_cost_ns / 1e6, wl->services, wl->backends);
	else
		printf("   weighting: not running");
	printf("\n");
	for (size_t i = 0; i < cur->n; i++) {
		const struct top_row *r = &cur->r[i];
		char bar[BAR + 1], p99[16] = "-", lest[16] = "-", succ[16] = "-";
		char conns[16] = "-", ret[16] = "-";
		int fill = (int)(r->share * BAR + 0.5);

		if (fill > BAR)
			fill = BAR;
		xm_lb_svc_key_str(&r->bi.svc, svc, sizeof(svc));
		if (strcmp(svc, last_svc)) {
			printf("\n%s  algorithm %s\n", svc, r->has_w ? r->w.algorithm : "-");
			printf("  %-24s %-8s %-*s %6s %2s %8s %8s %8s %8s %7s %6s %6s %6s\n",
			       "BACKEND", "CLUSTER", BAR, "SHARE", "", "", "CONN/S", "REQ/S", "P99",
			       "L_EST", "SUCCESS", "INFL", "CONNS", "RET/S");
			snprintf(last_svc, sizeof(last_svc), "%s", svc);
		}
		memset(bar, '#', fill);
		memset(bar + fill, '.', BAR - fill);
		bar[BAR] = 0;
		if (r->has_w) {
			ctl_fmt_ms(p99, sizeof(p99), r->w.p99_ms);
			ctl_fmt_ms(lest, sizeof(lest), r->w.l_est_ms);
			snprintf(succ, sizeof(succ), "%.1f%%", 100 * r->w.success_rate);
		}
		/* Connections held are counted only while some service needs them. */
		if (r->has_r)
			ctl_rview_fmt(&r->rb, conns, ret, sizeof(conns));
		printf("  %-24s %-8s %s %5.1f%% %2s %8.1f %8.1f %8s %8s %7s %6lld %6s %6s\n",
		       r->endpoint, r->bi.cluster, bar, 100 * r->share,
		       r->share_change > 0.005 ? "^" : r->share_change < -0.005 ? "v" : "",
		       r->conn_per_s, r->req_per_s, p99, lest, succ,
		       (long long)xm_lb_in_flight(&r->c), conns, ret);
	}
	fflush(stdout);
}

static int top_help(int argc, char **argv)
{
	ctl_help(
		"Usage: xmeshctl top [SERVICE] [interval MS] [count N]\n"
		"  live view of every backend, redrawn every interval (100 to 60000 ms, default\n"
		"  1000), until Ctrl-C or N frames (0, the default: until Ctrl-C): share of new\n"
		"  connections (bar, ^/v when it moved), connections and requests per second,\n"
		"  the weighting loop's filtered p99, L_est and success rate, requests in\n"
		"  flight, pooled client connections held (CONNS) and retired per second by\n"
		"  rebalancing (RET/S). -j: one JSON object per frame.\n");
	return 0;
}

int do_top(int argc, char **argv)
{
	struct xm_lb_svc_key key, *only = NULL;
	struct top_rows cur = {}, prev = {};
	unsigned int interval_ms = 1000, count = 0, frames = 0;
	struct xm_lb_maps m;
	double t_prev = 0;
	int err = 0;

	if (argc > 0 && (!strcmp(argv[0], "help") || !strcmp(argv[0], "-h")))
		return top_help(argc, argv);
	if (argc > 0 && strcmp(argv[0], "interval") && strcmp(argv[0], "count")) {
		if (ctl_svc_key_arg(argv[0], &key))
			return -1;
		only = &key;
		NEXT_ARG();
	}
	while (argc > 0) {
		bool is_interval = !strcmp(argv[0], "interval");

		if (!is_interval && strcmp(argv[0], "count")) {
			p_err("what is '%s'? see 'xmeshctl top help'", argv[0]);
			return -1;
		}
		NEXT_ARG();
		REQ_ARGS(1);
		/* count 0 means "until Ctrl-C": "count abc" must not be read as 0 */
		if (is_interval ? xm_uint_parse(argv[0], 100, 60000, &interval_ms)
				: xm_uint_parse(argv[0], 0, UINT_MAX, &count)) {
			p_err(is_interval ? "interval '%s': give a whole number of ms, 100 to 60000"
					  : "count '%s': give a whole number of frames (0: until Ctrl-C)",
			      argv[0]);
			return -1;
		}
		NEXT_ARG();
	}
	if (ctl_lb_open(&m))
		return -1;
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	while (!top_stop && (!count || frames < count)) {
		double t = xm_mono_s();
		struct xm_lb_wloop wl;
		bool have_wl;
		int wfd, rfd;

		cur.n = 0;
		err = xm_lb_backend_foreach(&m, only, top_collect, &cur);
		if (err) {
			p_err("read backends: %s", strerror(-err));
			break;
		}
		for (size_t i = 0; i < cur.n; i++) {
			struct xm_lb_probe_snap *s = malloc(sizeof(*s));

			if (s && !xm_lb_probe_read(&m, cur.r[i].bi.id, s))
				cur.r[i].c = s->c;
			free(s);
		}
		wfd = ctl_wstate_open();
		rfd = ctl_rstate_open();
		frame_fill(&cur, &prev, t_prev ? t - t_prev : 0, wfd, rfd);
		if (wfd >= 0)
			close(wfd);
		if (rfd >= 0)
			close(rfd);
		have_wl = ctl_wloop_read(&wl) == 0;
		if (xm_out_json)
			frame_print_json(&cur, have_wl ? &wl : NULL);
		else
			frame_print_plain(&cur, have_wl ? &wl : NULL);
		/* This frame becomes the previous one. */
		{
			struct top_rows tmp = prev;

			prev = cur;
			cur = tmp;
		}
		t_prev = t;
		frames++;
		if (!count || frames < count)
			usleep(interval_ms * 1000);
	}
	free(cur.r);
	free(prev.r);
	xm_lb_maps_close(&m);
	return err ? -1 : 0;
}
