// SPDX-License-Identifier: MIT
/*
 * xmeshctl top [SERVICE] [interval MS] [count N]: a live view of every
 * service's backends, redrawn every second. Per backend: a bar of its share
 * of new connections (selection table) with an arrow when it moved since
 * the last frame, the connections and requests it actually got per second,
 * the weighting loop's filtered p99 / L_est / success rate, and in-flight
 * requests. A traffic shift shows as bars shrinking and growing, arrows, and
 * conn/s following. In JSON mode (-j) each frame is one JSON object per line.
 */
#include <errno.h>
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

#define BAR 20

struct top_row {
	struct xm_lb_backend_info bi;
	struct xm_lb_probe c;
	double prev_share;
	bool have_prev;
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

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Previous frame's rows, to compute rates and share changes by backend id. */
static const struct top_row *find_prev(const struct top_rows *p, __u32 id)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->r[i].bi.id == id)
			return &p->r[i];
	return NULL;
}

static json_t *frame_json(struct top_rows *cur, const struct top_rows *prev, double dt, int wfd)
{
	json_t *frame = json_object(), *arr = json_array();
	struct xm_lb_wloop wl;
	char svc[96], a[XM_ADDR_STRLEN], ep[XM_ADDR_STRLEN + 10];

	if (!ctl_wloop_read(&wl))
		json_object_set_new(frame, "loop",
				    json_pack("{s:I, s:i, s:f, s:i, s:i, s:I}", "ticks",
					      (json_int_t)wl.ticks, "tick_ms", (int)wl.tick_ms,
					      "last_tick_cost_ms", wl.last_cost_ns / 1e6, "services",
					      (int)wl.services, "backends", (int)wl.backends,
					      "table_writes", (json_int_t)wl.table_writes));
	for (size_t i = 0; i < cur->n; i++) {
		struct top_row *r = &cur->r[i];
		const struct top_row *p = find_prev(prev, r->bi.id);
		double share = (double)r->bi.be.slots / XM_LB_SLOTS;
		json_t *f = ctl_wstate_json(wfd, r->bi.id), *o;

		xm_addr_str(r->bi.be.family, &r->bi.be.addr, a, sizeof(a));
		snprintf(ep, sizeof(ep), r->bi.be.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a,
			 r->bi.be.port);
		o = json_pack("{s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:I}", "service",
			      xm_lb_svc_key_str(&r->bi.svc, svc, sizeof(svc)), "backend", ep,
			      "cluster", r->bi.cluster, "share", share, "share_change",
			      p ? share - (double)p->bi.be.slots / XM_LB_SLOTS : 0.0, "conn_per_s",
			      p && dt > 0 ? (r->c.conns - p->c.conns) / dt : 0.0, "req_per_s",
			      p && dt > 0 ? (r->c.req_completed - p->c.req_completed) / dt : 0.0,
			      "in_flight", (json_int_t)xm_lb_in_flight(&r->c));
		if (f)
			json_object_set_new(o, "filtered", f);
		json_array_append_new(arr, o);
	}
	json_object_set_new(frame, "backends", arr);
	return frame;
}

static void fmt_ms(char *buf, size_t len, json_t *v)
{
	double ms = json_number_value(v);

	if (!json_is_number(v))
		snprintf(buf, len, "-");
	else if (ms >= 1000)
		snprintf(buf, len, "%.2fs", ms / 1000);
	else if (ms >= 1)
		snprintf(buf, len, "%.1fms", ms);
	else
		snprintf(buf, len, "%.0fus", ms * 1000);
}

static void frame_plain(json_t *frame)
{
	json_t *loop = json_object_get(frame, "loop"), *arr = json_object_get(frame, "backends"), *r;
	const char *last_svc = "";
	time_t now = time(NULL);
	char ts[32];
	size_t i;

	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
	printf("\033[H\033[2J");
	printf("xmesh top  %s", ts);
	if (loop)
		printf("   weighting: tick %lld ms, %lld ticks, last tick %.2f ms CPU, %lld services, "
		       "%lld backends",
		       json_integer_value(json_object_get(loop, "tick_ms")),
		       json_integer_value(json_object_get(loop, "ticks")),
		       json_number_value(json_object_get(loop, "last_tick_cost_ms")),
		       json_integer_value(json_object_get(loop, "services")),
		       json_integer_value(json_object_get(loop, "backends")));
	else
		printf("   weighting: not running");
	printf("\n");
	json_array_foreach(arr, i, r) {
		const char *svc = json_string_value(json_object_get(r, "service"));
		json_t *f = json_object_get(r, "filtered");
		double share = json_number_value(json_object_get(r, "share"));
		double dsh = json_number_value(json_object_get(r, "share_change"));
		char bar[BAR + 1], p99[16] = "-", lest[16] = "-", succ[16] = "-";
		int fill = (int)(share * BAR + 0.5);

		if (strcmp(svc, last_svc)) {
			printf("\n%s  algorithm %s\n", svc,
			       f ? json_string_value(json_object_get(f, "algorithm")) : "-");
			printf("  %-24s %-8s %-*s %6s %2s %8s %8s %8s %8s %7s %6s\n", "BACKEND", "CLUSTER",
			       BAR, "SHARE", "", "", "CONN/S", "REQ/S", "P99", "L_EST", "SUCCESS",
			       "INFL");
			last_svc = svc;
		}
		memset(bar, '#', fill > BAR ? BAR : fill);
		memset(bar + (fill > BAR ? BAR : fill), '.', BAR - (fill > BAR ? BAR : fill));
		bar[BAR] = 0;
		if (f) {
			fmt_ms(p99, sizeof(p99), json_object_get(f, "p99_ms"));
			fmt_ms(lest, sizeof(lest), json_object_get(f, "l_est_ms"));
			snprintf(succ, sizeof(succ), "%.1f%%",
				 100 * json_number_value(json_object_get(f, "success_rate")));
		}
		printf("  %-24s %-8s %s %5.1f%% %2s %8.1f %8.1f %8s %8s %7s %6lld\n",
		       json_string_value(json_object_get(r, "backend")),
		       json_string_value(json_object_get(r, "cluster")), bar, 100 * share,
		       dsh > 0.005 ? "^" : dsh < -0.005 ? "v" : "",
		       json_number_value(json_object_get(r, "conn_per_s")),
		       json_number_value(json_object_get(r, "req_per_s")), p99, lest, succ,
		       json_integer_value(json_object_get(r, "in_flight")));
	}
	fflush(stdout);
}

static int top_help(int argc, char **argv)
{
	ctl_help(
		"Usage: xmeshctl top [SERVICE] [interval MS] [count N]\n"
		"  live view of every backend, redrawn every interval (default 1000 ms), until\n"
		"  Ctrl-C or N frames: share of new connections (bar, ^/v when it moved),\n"
		"  connections and requests per second, the weighting loop's filtered p99,\n"
		"  L_est and success rate, requests in flight. -j: one JSON object per frame.\n");
	return 0;
}

int do_top(int argc, char **argv)
{
	struct xm_lb_svc_key key, *only = NULL;
	struct top_rows cur = {}, prev = {};
	long interval_ms = 1000, count = 0, frames = 0;
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
		long *dst = !strcmp(argv[0], "interval") ? &interval_ms :
			    !strcmp(argv[0], "count")    ? &count :
							   NULL;

		if (!dst) {
			p_err("what is '%s'? see 'xmeshctl top help'", argv[0]);
			return -1;
		}
		NEXT_ARG();
		REQ_ARGS(1);
		*dst = strtol(argv[0], NULL, 10);
		NEXT_ARG();
	}
	if (interval_ms < 100 || interval_ms > 60000 || count < 0) {
		p_err("interval is 100 to 60000 ms, count >= 0");
		return -1;
	}
	if (ctl_lb_open(&m))
		return -1;
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	while (!top_stop && (!count || frames < count)) {
		double t = mono();
		json_t *frame;
		int wfd;

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
		frame = frame_json(&cur, &prev, t_prev ? t - t_prev : 0, wfd);
		if (wfd >= 0)
			close(wfd);
		if (xm_out_json) {
			json_dumpf(frame, stdout, JSON_COMPACT);
			printf("\n");
			fflush(stdout);
			json_decref(frame);
		} else {
			frame_plain(frame);
			json_decref(frame);
		}
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
