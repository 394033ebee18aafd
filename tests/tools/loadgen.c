// SPDX-License-Identifier: MIT
/*
 * Open-loop load generator. Send times are fixed in advance on a timeline
 * (rate from the scenario, or constant); a request's latency counts from its
 * scheduled time, so a slow answer never delays or hides later requests (no
 * coordinated omission). Every request is recorded: scheduled time, latency,
 * which backend answered, success.
 *
 *   loadgen --target IP:PORT (--scenario FILE | --rate RPS --duration S)
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
 * stdout, last line: "loadgen: requests=N ok=N success=F p50_ms=F p99_ms=F
 * p999_ms=F conns=N idle_closed=N retried=N" followed by "backend=<id>:<count>"
 * pairs (idle_closed: pooled connections found closed while idle). Percentiles
 * are of successful requests; failures count in the success rate.
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

#include "scenario.h"

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

static struct sockaddr_in target;
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

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

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
	r->lat = now_real() - start_time - r->t;
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
	if (!pool_mode || c->nreq >= max_requests || now_real() - c->opened >= max_age) {
		conn_close(c);
		return;
	}
	c->state = C_IDLE;
	c->used = now_real();
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
			if (now_real() - conns[i].opened >= max_age ||
			    (idle_timeout > 0 && now_real() - conns[i].used >= idle_timeout)) {
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
	c->opened = now_real();
	c->len = 0;
	c->fd = fd;
	conns_opened++;
	if (fd < 0) {
		c->state = C_CONNECTING;
		c->fd = -1;
		recs[c->req].lat = now_real() - start_time - sched;
		recs[c->req].err = E_CONNECT;
		c->state = C_FREE;
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = C_CONNECTING;
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
	ev.data.u64 = c - conns;
	epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) && errno != EINPROGRESS)
		finish(c, E_CONNECT, -1);
}

/* 1: complete response parsed into ok/backend, 0: need more, -1: garbage. */
static int parse_response(struct conn *c, bool *ok, int *backend)
{
	char *end, *h;

	c->buf[c->len] = 0;
	if (!http) {
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
	end = strstr(c->buf, "\r\n\r\n");
	if (!end)
		return 0;
	if (strncmp(c->buf, "HTTP/1.", 7) || strlen(c->buf) < 12)
		return -1;
	*ok = atoi(c->buf + 9) < 500;
	h = strcasestr(c->buf, "\r\nX-Backend: ");
	*backend = h && h < end ? atoi(h + 13) : -1;
	h = strcasestr(c->buf, "\r\nContent-Length: ");
	if (h && h < end && (size_t)(end + 4 - c->buf) + atoi(h + 18) > c->len)
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)ceil(q * n) - 1;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void on_signal(int sig)
{
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen --target IP:PORT (--scenario FILE | --rate RPS --duration S)\n"
			"               [--start EPOCH] [--mode new|pool] [--max-requests N]\n"
			"               [--max-age S] [--idle-timeout S] [--retry] [--http]\n"
			"               [--timeout S] [--warmup S] [--out FILE.csv]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static struct scenario sc;
	const char *target_s = NULL, *scn_path = NULL, *out_path = NULL;
	double rate = 0, duration = 0, warmup = 0, next, *lat;
	struct rlimit rl = { 65536, 65536 };
	struct epoll_event evs[256];
	size_t i, nlat = 0, ok = 0, total = 0;
	int backends[SCN_MAX_REPLICAS] = { 0 };
	bool have_start = false;
	FILE *out = NULL;

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--target") && a + 1 < argc)
			target_s = argv[++a];
		else if (!strcmp(argv[a], "--scenario") && a + 1 < argc)
			scn_path = argv[++a];
		else if (!strcmp(argv[a], "--rate") && a + 1 < argc)
			rate = atof(argv[++a]);
		else if (!strcmp(argv[a], "--duration") && a + 1 < argc)
			duration = atof(argv[++a]);
		else if (!strcmp(argv[a], "--start") && a + 1 < argc) {
			start_time = atof(argv[++a]);
			have_start = true;
		} else if (!strcmp(argv[a], "--mode") && a + 1 < argc) {
			a++;
			if (!strcmp(argv[a], "pool"))
				pool_mode = true;
			else if (strcmp(argv[a], "new"))
				usage();
		} else if (!strcmp(argv[a], "--max-requests") && a + 1 < argc)
			max_requests = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--max-age") && a + 1 < argc)
			max_age = atof(argv[++a]);
		else if (!strcmp(argv[a], "--idle-timeout") && a + 1 < argc)
			idle_timeout = atof(argv[++a]);
		else if (!strcmp(argv[a], "--retry"))
			retry = true;
		else if (!strcmp(argv[a], "--timeout") && a + 1 < argc)
			timeout_s = atof(argv[++a]);
		else if (!strcmp(argv[a], "--warmup") && a + 1 < argc)
			warmup = atof(argv[++a]);
		else if (!strcmp(argv[a], "--http"))
			http = true;
		else if (!strcmp(argv[a], "--out") && a + 1 < argc)
			out_path = argv[++a];
		else
			usage();
	}
	if (!target_s)
		usage();
	{
		char host[64];
		const char *colon = strrchr(target_s, ':');

		if (!colon || colon - target_s >= 64)
			usage();
		memcpy(host, target_s, colon - target_s);
		host[colon - target_s] = 0;
		target.sin_family = AF_INET;
		target.sin_port = htons(atoi(colon + 1));
		if (inet_pton(AF_INET, host, &target.sin_addr) != 1)
			usage();
	}
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
		start_time = now_real();
	setrlimit(RLIMIT_NOFILE, &rl);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	epfd = epoll_create1(0);

	/* Wait for the common start (less the warm-up). */
	while (now_real() < start_time - warmup && !stop) {
		double d = start_time - warmup - now_real();
		struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) };

		nanosleep(&ts, NULL);
	}

	next = -warmup;
	while (!stop) {
		double now = now_real() - start_time;
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
	lat = malloc((nrecs ? nrecs : 1) * sizeof(*lat));
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
			lat[nlat++] = r->lat;
			ok++;
		}
		total++;
		if (r->backend >= 0 && r->backend < SCN_MAX_REPLICAS)
			backends[r->backend]++;
	}
	if (out)
		fclose(out);
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	printf("loadgen: requests=%zu ok=%zu success=%.4f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f "
	       "conns=%lu idle_closed=%lu retried=%lu",
	       total, ok, total ? (double)ok / total : 0, pct(lat, nlat, 0.5) * 1000,
	       pct(lat, nlat, 0.99) * 1000, pct(lat, nlat, 0.999) * 1000, conns_opened,
	       idle_closed, retried);
	for (i = 0; i < SCN_MAX_REPLICAS; i++)
		if (backends[i])
			printf(" backend=%zu:%d", i, backends[i]);
	printf("\n");
	return 0;
}
