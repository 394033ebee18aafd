// SPDX-License-Identifier: MIT
/*
 * xm-load open: the open-loop load generator. Send times are fixed in advance on a timeline
 * (rate from the scenario, or constant); a request's latency counts from its
 * scheduled time, so a slow answer never delays or hides later requests (no
 * coordinated omission). Every request is recorded: scheduled time, latency,
 * which backend answered, success.
 *
 *   xm-load open --target IP:PORT (--scenario FILE | --rate RPS --duration S)
 *           [--start EPOCH] [--mode new|pool] [--max-requests N] [--max-age S]
 *           [--idle-timeout S] [--retry] [--http] [--timeout S] [--warmup S]
 *           [--out FILE.csv]
 *
 * --warmup S starts sending S seconds before the start at the rate of t = 0;
 * those requests are in the CSV (negative t) but not in the summary.
 * Modes: "new" opens a connection per request (the server closes it after
 * the answer); "pool" keeps connections alive and reuses an idle one, opening
 * more when all are busy, and retires a connection after --max-requests
 * requests or --max-age seconds (like HTTP client pools, gRPC max-age), and
 * one left idle for --idle-timeout seconds (0: never).
 * --retry: a request whose pooled connection turns out closed (the send
 * fails, or the connection ends before any byte of the answer) is sent once
 * more on a new connection, as urllib3, curl and Go's net/http do for a
 * keep-alive connection the server closed while it was idle.
 *
 * stdout, last line: "xm-load open: requests=N ok=N success=F p50_ms=F p99_ms=F
 * p999_ms=F conns=N idle_closed=N retried=N" followed by "backend=<id>:<count>"
 * pairs (idle_closed: pooled connections found closed while idle). Percentiles
 * are of successful requests (tests/lib/pctl.h); failures count in the
 * success rate.
 * CSV columns: t,latency_ms,backend,ok,new_conn,err,retried
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/http1.h"
#include "lib/opt.h"
#include "lib/pctl.h"
#include "lib/scenario.h"
#include "load.h"

enum cstate { C_FREE, C_CONNECTING, C_WAIT, C_IDLE };
enum err { E_OK, E_CONNECT, E_RESET, E_TIMEOUT, E_STATUS };
static const char *err_names[] = { "", "connect", "reset", "timeout", "status" };

struct rec {
	double t, lat;
	int backend;
	unsigned char ok, new_conn, err, retried;
};

struct conn {
	int fd;
	enum cstate state;
	double opened;
	double used;    /* when its last request ended */
	unsigned int nreq;
	bool fresh;     /* opened for the current request */
	long req;       /* index into recs of the request on this connection, or -1 */
	size_t len;
	char buf[1024];
};

static struct sockaddr_storage target;
static socklen_t target_len;
static bool http, pool_mode, retry;
static double idle_timeout;
static unsigned long idle_closed, retried;
static unsigned int max_requests = 100;
static double max_age = 10, timeout_s = 5;
static struct rec *recs;
static size_t nrecs, caprecs;
static struct conn *conns;
static size_t nconns, capconns;
static unsigned long conns_opened;
static int epfd;
static volatile sig_atomic_t stop;

static double start_time;

static struct conn *conn_alloc(void)
{
	size_t i;

	for (i = 0; i < nconns; i++)
		if (conns[i].state == C_FREE)
			return &conns[i];
	if (nconns == capconns) {
		/* Grow; connections are referred to by index in epoll, so realloc is safe. */
		capconns = capconns ? capconns * 2 : 256;
		conns = realloc(conns, capconns * sizeof(*conns));
		if (!conns)
			exit(1);
	}
	memset(&conns[nconns], 0, sizeof(conns[0]));
	return &conns[nconns++];
}

static void conn_close(struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->state = C_FREE;
	c->req = -1;
}

static void dispatch(long req, bool fresh_only);

static void finish(struct conn *c, enum err e, int backend)
{
	struct rec *r = &recs[c->req];

	if (e == E_RESET && retry && !c->fresh && !c->len && !r->retried) {
		long req = c->req;

		/* A pooled connection that was closed while idle: once more, on a new one. */
		r->retried = 1;
		retried++;
		conn_close(c);
		dispatch(req, true);
		return;
	}
	r->lat = xt_wall() - start_time - r->t;
	r->ok = e == E_OK;
	r->err = e;
	r->backend = backend;
	r->new_conn = c->fresh;
	c->req = -1;
	c->nreq++;
	if (e != E_OK && e != E_STATUS) {
		conn_close(c);
		return;
	}
	if (!pool_mode || c->nreq >= max_requests || xt_wall() - c->opened >= max_age) {
		conn_close(c);
		return;
	}
	c->state = C_IDLE;
	c->used = xt_wall();
	c->len = 0;
}

static void send_request(struct conn *c)
{
	char out[256];
	int n;
	ssize_t w;

	if (http)
		n = snprintf(out, sizeof(out), "GET /r/%ld HTTP/1.1\r\nHost: xm-bench\r\n%s\r\n",
			     c->req, pool_mode ? "" : "Connection: close\r\n");
	else
		n = snprintf(out, sizeof(out), "%s %ld\n", pool_mode ? "REQ" : "REQC", c->req);
	w = send(c->fd, out, n, MSG_NOSIGNAL);
	if (w != n) {
		finish(c, E_RESET, -1);
		return;
	}
	c->state = C_WAIT;
	c->len = 0;
}

static void issue(double sched)
{
	if (nrecs == caprecs) {
		caprecs = caprecs ? caprecs * 2 : 65536;
		recs = realloc(recs, caprecs * sizeof(*recs));
		if (!recs)
			exit(1);
	}
	memset(&recs[nrecs], 0, sizeof(recs[0]));
	recs[nrecs].t = sched;
	recs[nrecs].backend = -1;
	recs[nrecs].lat = -1;
	dispatch(nrecs++, false);
}

/* Send request req on an idle pooled connection, or on a new one. */
static void dispatch(long req, bool fresh_only)
{
	struct conn *c = NULL;
	struct epoll_event ev;
	double sched = recs[req].t;
	size_t i;
	int fd, one = 1;

	if (pool_mode && !fresh_only) {
		/* Most recently used idle connection first. */
		for (i = nconns; i-- > 0;) {
			if (conns[i].state != C_IDLE)
				continue;
			if (xt_wall() - conns[i].opened >= max_age ||
			    (idle_timeout > 0 && xt_wall() - conns[i].used >= idle_timeout)) {
				conn_close(&conns[i]);
				continue;
			}
			c = &conns[i];
			break;
		}
	}
	if (c) {
		c->req = req;
		c->fresh = false;
		send_request(c);
		return;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	c = conn_alloc();
	c->req = req;
	c->fresh = true;
	c->nreq = 0;
	c->opened = xt_wall();
	c->len = 0;
	c->fd = fd;
	conns_opened++;
	if (fd < 0) {
		c->state = C_CONNECTING;
		c->fd = -1;
		recs[c->req].lat = xt_wall() - start_time - sched;
		recs[c->req].err = E_CONNECT;
		c->state = C_FREE;
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = C_CONNECTING;
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
	ev.data.u64 = c - conns;
	epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	if (connect(fd, (struct sockaddr *)&target, target_len) && errno != EINPROGRESS)
		finish(c, E_CONNECT, -1);
}

/* 1: complete response parsed into ok/backend, 0: need more, -1: garbage. */
static int parse_response(struct conn *c, bool *ok, int *backend)
{
	struct xt_http_resp resp;
	size_t head;
	char *end;

	if (!http) {
		c->buf[c->len] = 0;
		end = memchr(c->buf, '\n', c->len);
		if (!end)
			return 0;
		if (!strncmp(c->buf, "OK ", 3))
			*ok = true;
		else if (!strncmp(c->buf, "ERR ", 4))
			*ok = false;
		else
			return -1;
		*backend = atoi(strchr(c->buf, ' ') + 1);
		return 1;
	}
	head = xt_http_head_len(c->buf, c->len);
	if (!head)
		return 0;
	if (xt_http_parse_response(c->buf, head, &resp))
		return -1;
	*ok = resp.status < 500;
	*backend = resp.backend[0] ? atoi(resp.backend) : -1;
	if (resp.content_length > 0 && head + resp.content_length > c->len)
		return 0;
	return 1;
}

static void on_event(struct conn *c, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->state == C_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			finish(c, E_CONNECT, -1);
			return;
		}
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = c - conns };

		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
		send_request(c);
		return;
	}
	if (c->state == C_IDLE) {
		/* The server closed or reset an idle connection. */
		idle_closed++;
		conn_close(c);
		return;
	}
	if (c->state != C_WAIT)
		return;
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
		bool ok = false;
		int backend = -1, r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			finish(c, E_RESET, -1);
			return;
		}
		c->len += n;
		r = parse_response(c, &ok, &backend);
		if (r < 0 || (r == 0 && c->len >= sizeof(c->buf) - 1)) {
			finish(c, E_RESET, -1);
			return;
		}
		if (r == 1) {
			finish(c, ok ? E_OK : E_STATUS, backend);
			return;
		}
	}
}

static void expire(double now)
{
	size_t i;

	for (i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];

		if ((c->state == C_CONNECTING || c->state == C_WAIT) && c->req >= 0 &&
		    now - start_time - recs[c->req].t > timeout_s)
			finish(c, E_TIMEOUT, -1);
	}
}

/* A percentile in ms, 0 without samples (as the CSV readers expect). */
static double ms(struct xt_samples *s, double q)
{
	return s->n ? xt_pctl(s, q) * 1000 : 0;
}

static void on_signal(int sig)
{
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: xm-load open --target IP:PORT (--scenario FILE | --rate RPS --duration S)\n"
			"               [--start EPOCH] [--mode new|pool] [--max-requests N]\n"
			"               [--max-age S] [--idle-timeout S] [--retry] [--http]\n"
			"               [--timeout S] [--warmup S] [--out FILE.csv]\n");
	exit(2);
}

int load_open(int argc, char **argv)
{
	static struct scenario sc;
	const char *target_s = NULL, *scn_path = NULL, *out_path = NULL;
	double rate = 0, duration = 0, warmup = 0, next;
	struct xt_samples lat = { 0 };
	struct rlimit rl = { 65536, 65536 };
	struct epoll_event evs[256];
	size_t i, ok = 0, total = 0;
	int backends[SCN_MAX_REPLICAS] = { 0 };
	bool have_start = false;
	FILE *out = NULL;

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--target") && a + 1 < argc)
			target_s = argv[++a];
		else if (!strcmp(argv[a], "--scenario") && a + 1 < argc)
			scn_path = argv[++a];
		else if (!strcmp(argv[a], "--rate") && a + 1 < argc)
			rate = xt_opt_num("--rate", argv[++a], 0, 1e7);
		else if (!strcmp(argv[a], "--duration") && a + 1 < argc)
			duration = xt_opt_num("--duration", argv[++a], 0, 1e6);
		else if (!strcmp(argv[a], "--start") && a + 1 < argc) {
			start_time = xt_opt_num("--start", argv[++a], 0, 1e12);
			have_start = true;
		} else if (!strcmp(argv[a], "--mode") && a + 1 < argc) {
			a++;
			if (!strcmp(argv[a], "pool"))
				pool_mode = true;
			else if (strcmp(argv[a], "new"))
				usage();
		} else if (!strcmp(argv[a], "--max-requests") && a + 1 < argc)
			max_requests = xt_opt_int("--max-requests", argv[++a], 1, 1000000000);
		else if (!strcmp(argv[a], "--max-age") && a + 1 < argc)
			max_age = xt_opt_num("--max-age", argv[++a], 0, 1e6);
		else if (!strcmp(argv[a], "--idle-timeout") && a + 1 < argc)
			idle_timeout = xt_opt_num("--idle-timeout", argv[++a], 0, 1e6);
		else if (!strcmp(argv[a], "--retry"))
			retry = true;
		else if (!strcmp(argv[a], "--timeout") && a + 1 < argc)
			timeout_s = xt_opt_num("--timeout", argv[++a], 0, 1e6);
		else if (!strcmp(argv[a], "--warmup") && a + 1 < argc)
			warmup = xt_opt_num("--warmup", argv[++a], 0, 1e6);
		else if (!strcmp(argv[a], "--http"))
			http = true;
		else if (!strcmp(argv[a], "--out") && a + 1 < argc)
			out_path = argv[++a];
		else
			usage();
	}
	if (!target_s)
		usage();
	if (xt_endpoint(&target, &target_len, target_s, false) || target.ss_family == AF_UNIX)
		xt_die(2, "--target wants IP:PORT or [IPv6]:PORT, not '%s'", target_s);
	if (scn_path) {
		if (scn_load(scn_path, &sc))
			return 1;
		if (!duration)
			duration = sc.duration;
	} else {
		if (rate <= 0 || duration <= 0)
			usage();
		sc.nrate = 1;
		sc.rate_v[0] = rate;
	}
	if (rate > 0 && scn_path) {
		/* --rate overrides the scenario's rate schedule. */
		sc.nrate = 1;
		sc.rate_t[0] = 0;
		sc.rate_v[0] = rate;
	}
	if (!have_start)
		start_time = xt_wall();
	setrlimit(RLIMIT_NOFILE, &rl);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	epfd = epoll_create1(0);

	/* Wait for the common start (less the warm-up). */
	while (xt_wall() < start_time - warmup && !stop) {
		double d = start_time - warmup - xt_wall();
		struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) };

		nanosleep(&ts, NULL);
	}

	next = -warmup;
	while (!stop) {
		double now = xt_wall() - start_time;
		bool active = false;
		int timeout, n;

		while (next <= now && next < duration) {
			double r = scn_rate(&sc, next);

			if (r > 0) {
				issue(next);
				next += 1 / r;
			} else {
				next += 0.01;
			}
		}
		for (i = 0; i < nconns; i++)
			if (conns[i].state == C_CONNECTING || conns[i].state == C_WAIT)
				active = true;
		if (next >= duration && !active)
			break;
		expire(now);
		timeout = next < duration ? (int)((next - now) * 1000) : 50;
		if (timeout > 50)
			timeout = 50;
		if (timeout < 0)
			timeout = 0;
		n = epoll_wait(epfd, evs, 256, timeout);
		for (int k = 0; k < n; k++) {
			struct conn *c = &conns[evs[k].data.u64];

			if (c->state != C_FREE)
				on_event(c, evs[k].events);
		}
	}

	if (out_path) {
		out = fopen(out_path, "w");
		if (!out) {
			perror(out_path);
			return 1;
		}
		fprintf(out, "t,latency_ms,backend,ok,new_conn,err,retried\n");
	}
	for (i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (r->lat < 0) /* never finished (stopped early) */
			continue;
		if (out)
			fprintf(out, "%.4f,%.3f,%d,%d,%d,%s,%d\n", r->t, r->lat * 1000, r->backend,
				r->ok, r->new_conn, err_names[r->err], r->retried);
		if (r->t < 0)
			continue;
		/* Latency percentiles are of successful requests (as in L3). */
		if (r->ok) {
			xt_samples_add(&lat, r->lat);
			ok++;
		}
		total++;
		if (r->backend >= 0 && r->backend < SCN_MAX_REPLICAS)
			backends[r->backend]++;
	}
	if (out)
		fclose(out);
	printf("xm-load open: requests=%zu ok=%zu success=%.4f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f "
	       "conns=%lu idle_closed=%lu retried=%lu",
	       total, ok, total ? (double)ok / total : 0, ms(&lat, 0.5), ms(&lat, 0.99),
	       ms(&lat, 0.999), conns_opened,
	       idle_closed, retried);
	for (i = 0; i < SCN_MAX_REPLICAS; i++)
		if (backends[i])
			printf(" backend=%zu:%d", i, backends[i]);
	printf("\n");
	return 0;
}
