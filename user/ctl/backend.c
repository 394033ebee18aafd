// SPDX-License-Identifier: MIT
/*
 * xmeshctl backend: each backend's weight and share and what the kernel
 * measured for it. Latency quantiles, success rate and counters are since
 * the backend was added; rps is over a short sampling window (two reads of
 * the per-CPU counters, `interval MS`, default 500 ms). Where the agent's
 * weighting loop runs, each row also carries its filtered view ("filtered":
 * algorithm, filtered p99, L_est, success rate, rps, in-flight, computed
 * weight; wstate.c), shown in the plain table as ALGO, FP99, FSUCC, FRPS,
 * and, where the agent counts connections, "rebalance" (connections held,
 * idle, retired in all and per second; rstate.c), shown as CONNS and RET/S.
 * Rows are typed (struct be_row); the JSON and the plain table are both
 * printed from them. Latencies are in ms everywhere (p50_ms, p99_ms).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "addr.h"
#include "ctl.h"
#include "lbconfig.h"
#include "lbtable.h"
#include "numparse.h"
#include "monoclock.h"

/* One row of `backend list`, in display units; both printers are fed from it. */
struct be_row {
	struct xm_lb_backend_info bi;
	struct xm_lb_probe_snap a, b;
	char endpoint[XM_ADDR_STRLEN + 10];
	double p50_ms, p99_ms; /* < 0: no request measured */
	double success_rate, rps;
	bool has_w;            /* the weighting loop has written this backend */
	struct ctl_wview w;
	bool has_r;            /* the agent counted its connections */
	struct ctl_rview rb;
};

struct collect {
	struct be_row *rows;
	size_t n, cap;
};

static int collect(const struct xm_lb_backend_info *bi, void *arg)
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		struct be_row *r = realloc(c->rows, (c->cap = c->cap * 2 + 16) * sizeof(*r));

		if (!r)
			return -ENOMEM;
		c->rows = r;
	}
	memset(&c->rows[c->n], 0, sizeof(c->rows[0]));
	c->rows[c->n++].bi = *bi;
	return 0;
}

/* The display values of a row, once its two probe reads are in. */
static void row_fill(struct be_row *r, double dt, int wfd)
{
	const struct xm_lb_probe *c = &r->b.c;
	char a[XM_ADDR_STRLEN];
	double q;

	xm_addr_str(r->bi.be.family, &r->bi.be.addr, a, sizeof(a));
	snprintf(r->endpoint, sizeof(r->endpoint),
		 r->bi.be.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, r->bi.be.port);
	q = xm_lb_hist_quantile(r->b.hist, 0.5);
	r->p50_ms = q < 0 ? -1 : q / 1e6;
	q = xm_lb_hist_quantile(r->b.hist, 0.99);
	r->p99_ms = q < 0 ? -1 : q / 1e6;
	r->success_rate = xm_lb_success_rate(c);
	r->rps = dt > 0 ? (double)(c->req_completed - r->a.c.req_completed) / dt : 0.0;
	r->has_w = ctl_wview_read(wfd, r->bi.id, &r->w);
}

static json_t *row_json(const struct be_row *r)
{
	const struct xm_lb_probe *c = &r->b.c;
	char svc[96];
	json_t *o;

	o = json_pack("{s:s, s:s, s:i, s:s, s:f, s:f, s:o, s:o, s:f, s:f, s:I, s:I, s:I, s:I, "
		      "s:I, s:I, s:I, s:I, s:I}",
		      "service", xm_lb_svc_key_str(&r->bi.svc, svc, sizeof(svc)), "backend",
		      r->endpoint, "id", (int)r->bi.id, "cluster", r->bi.cluster, "weight",
		      r->bi.weight, "share", (double)r->bi.slots / XM_LB_SLOTS,
		      "p50_ms", r->p50_ms < 0 ? json_null() : json_real(r->p50_ms), "p99_ms",
		      r->p99_ms < 0 ? json_null() : json_real(r->p99_ms), "success_rate",
		      r->success_rate, "rps", r->rps, "in_flight", (json_int_t)xm_lb_in_flight(c),
		      "requests", (json_int_t)c->req_completed, "http_5xx", (json_int_t)c->http_5xx,
		      "aborted", (json_int_t)c->req_aborted, "connect_refused",
		      (json_int_t)c->conn_refused, "connect_timeout", (json_int_t)c->conn_timeout,
		      "resets", (json_int_t)c->resets, "connections", (json_int_t)c->conns,
		      "udp_sends", (json_int_t)c->udp_sends);
	if (o && r->has_w)
		json_object_set_new(o, "filtered", ctl_wview_json(&r->w));
	if (o && r->has_r)
		json_object_set_new(o, "rebalance", ctl_rview_json(&r->rb));
	return o;
}

static void backend_list_plain(const struct be_row *rows, size_t n)
{
	char svc[96];

	printf("%-26s %-26s %-8s %8s %7s %9s %9s %8s %8s %8s %-11s %9s %8s %8s %6s %6s\n",
	       "SERVICE", "BACKEND", "CLUSTER", "WEIGHT", "SHARE", "P50", "P99", "SUCCESS", "RPS",
	       "INFLIGHT", "ALGO", "FP99", "FSUCC", "FRPS", "CONNS", "RET/S");
	for (size_t i = 0; i < n; i++) {
		const struct be_row *r = &rows[i];
		char p50[16], p99[16], fp99[16] = "-", fsucc[16] = "-", frps[16] = "-";
		char conns[16] = "-", ret[16] = "-";

		ctl_fmt_ms(p50, sizeof(p50), r->p50_ms);
		ctl_fmt_ms(p99, sizeof(p99), r->p99_ms);
		if (r->has_w) {
			ctl_fmt_ms(fp99, sizeof(fp99), r->w.p99_ms);
			snprintf(fsucc, sizeof(fsucc), "%.2f%%", 100 * r->w.success_rate);
			snprintf(frps, sizeof(frps), "%.1f", r->w.rps);
		}
		if (r->has_r)
			ctl_rview_fmt(&r->rb, conns, ret, sizeof(conns));
		printf("%-26s %-26s %-8s %8.3f %6.1f%% %9s %9s %7.2f%% %8.1f %8lld %-11s %9s %8s %8s "
		       "%6s %6s\n",
		       xm_lb_svc_key_str(&r->bi.svc, svc, sizeof(svc)), r->endpoint, r->bi.cluster,
		       r->bi.weight, 100.0 * r->bi.slots / XM_LB_SLOTS, p50, p99,
		       100 * r->success_rate, r->rps, (long long)xm_lb_in_flight(&r->b.c),
		       r->has_w ? r->w.algorithm : "-", fp99, fsucc, frps, conns, ret);
	}
}

static int backend_list(int argc, char **argv)
{
	struct xm_lb_svc_key key, *only = NULL;
	struct collect c = {};
	struct xm_lb_maps m;
	unsigned int interval_ms = 500;
	double t0, dt;
	int err, wfd;

	if (argc > 0 && strcmp(argv[0], "interval")) {
		if (ctl_svc_key_arg(argv[0], &key))
			return -1;
		only = &key;
		NEXT_ARG();
	}
	if (argc > 0 && !strcmp(argv[0], "interval")) {
		NEXT_ARG();
		REQ_ARGS(1);
		if (xm_uint_parse(argv[0], 0, 60000, &interval_ms)) {
			p_err("interval '%s': give a whole number of ms, 0 to 60000", argv[0]);
			return -1;
		}
		NEXT_ARG();
	}
	NO_MORE_ARGS();
	if (ctl_lb_open(&m))
		return -1;
	err = xm_lb_backend_foreach(&m, only, collect, &c);
	if (err) {
		p_err("read backends: %s", strerror(-err));
		goto out;
	}
	t0 = xm_mono_s();
	for (size_t i = 0; i < c.n; i++)
		xm_lb_probe_read(&m, c.rows[i].bi.id, &c.rows[i].a);
	if (interval_ms)
		usleep(interval_ms * 1000);
	dt = xm_mono_s() - t0;
	for (size_t i = 0; i < c.n; i++)
		xm_lb_probe_read(&m, c.rows[i].bi.id, &c.rows[i].b);
	wfd = ctl_wstate_open();
	for (size_t i = 0; i < c.n; i++)
		row_fill(&c.rows[i], interval_ms ? dt : 0, wfd);
	if (wfd >= 0)
		close(wfd);
	wfd = ctl_rstate_open();
	for (size_t i = 0; i < c.n; i++)
		c.rows[i].has_r = ctl_rview_read(wfd, c.rows[i].bi.id, &c.rows[i].rb);
	if (wfd >= 0)
		close(wfd);
	if (xm_out_json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < c.n; i++)
			json_array_append_new(arr, row_json(&c.rows[i]));
		xm_out_print_json(arr);
	} else {
		backend_list_plain(c.rows, c.n);
	}
out:
	free(c.rows);
	xm_lb_maps_close(&m);
	return err ? -1 : 0;
}

/* backend set SERVICE BACKEND weight W */
static int backend_set(int argc, char **argv)
{
	struct xm_lb_svc_key key;
	struct xm_addr a;
	const char *svc, *be;
	char *end;
	double w;
	__u16 port;
	__u8 fam;

	REQ_ARGS(4);
	svc = argv[0];
	be = argv[1];
	if (ctl_svc_key_arg(svc, &key))
		return -1;
	if (xm_addr_port_parse(be, &fam, &a, &port)) {
		p_err("'%s' is not a backend: give ADDR:PORT or [ADDR6]:PORT", be);
		return -1;
	}
	if (strcmp(argv[2], "weight")) {
		p_err("what is '%s'? expected 'weight W'", argv[2]);
		return -1;
	}
	w = strtod(argv[3], &end);
	if (end == argv[3] || *end || !xm_lb_weight_valid(w)) {
		p_err("weight '%s': " XM_LB_WEIGHT_RULE, argv[3]);
		return -1;
	}
	argc -= 4;
	argv += 4;
	NO_MORE_ARGS();
	return ctl_agent_request(json_pack("{s:s, s:s, s:s, s:f}", "cmd", "backend-weight",
					   "service", svc, "backend", be, "weight", w));
}

static int backend_help(int argc, char **argv)
{
	ctl_help(
		"Usage: xmeshctl backend { list [SERVICE] [interval MS] | set SERVICE BACKEND weight W }\n"
		"  SERVICE := VIP:PORT[/tcp|/udp]   BACKEND := ADDR:PORT\n"
		"  list   weight, share of new connections, latency p50/p99 and success rate\n"
		"         (since the backend was added), rps over the interval (0 to 60000 ms,\n"
		"         default 500),\n"
		"         requests in flight now; read from the pinned maps\n"
		"  set    change a weight through the agent (until the next config reload)\n");
	return 0;
}

int do_backend(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "list", backend_list },
		{ "set", backend_set },
		{ "help", backend_help },
		{}
	};

	return cmd_select(cmds, argc, argv, backend_help);
}
