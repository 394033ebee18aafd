// SPDX-License-Identifier: MIT
/*
 * xm-serve scenario: a backend replica whose per-request delay and outcome follow a scenario
 * file (tests/lib/scenario.h). Single thread, epoll, a timer heap: a
 * request's response is written when its delay is over, so thousands of
 * requests can be in service at once without a thread each.
 *
 *   xm-serve scenario --listen ADDR --replica N --scenario FILE
 *                     [--start EPOCH] [--label NAME]   (NAME: default N)
 *   xm-serve scenario --scenario FILE --dump     print the timeline as CSV
 *
 * Protocols, told apart by each request's first bytes:
 *   line:  "REQ <text>\n"  -> "OK <label>\n" | "ERR <label>\n"
 *          "REQC <text>\n" same, then the server closes the connection
 *   HTTP/1.1: "GET /... HTTP/1.1" -> 200 or 503 with "X-Backend: <label>"
 *          and the label as body; "Connection: close" is honoured.
 * A replica that is "down" resets its connections (RST) instead of answering.
 * --csv FILE: one line per request, when it is answered or its connection
 * has gone: arrival (s from --start), the client's port, the delay drawn,
 * and whether the answer was written; a bench matches a client's timeout
 * with it (scripts/bench/l3_report.py).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include "lib/loadopt.h"
#include "lib/opt.h"
#include "lib/scenario.h"
#include "serve.h"

#define BUF 4096
#define MAX_WORKERS 4096

struct conn {
	int fd;
	unsigned int gen;
	uint16_t peer_port; /* for --csv */
	size_t len;        /* bytes in in[] */
	bool busy;         /* a request is in service */
	bool close_after;
	char in[BUF];
};

struct timer {
	double at;
	double arrived; /* wall clock */
	struct conn *c;
	unsigned int gen;
	bool fail;
	bool http;
};

static struct scenario sc;
static unsigned int replica;
static double start_time;
static char id[64];
static unsigned long long rnd;
static struct timer *heap;
static size_t nheap, capheap;
static double worker_free[MAX_WORKERS];
static volatile sig_atomic_t stop;
static int epfd;
static FILE *req_log; /* --csv */

static void heap_push(struct timer t)
{
	size_t i;

	if (nheap == capheap) {
		capheap = capheap ? capheap * 2 : 1024;
		heap = realloc(heap, capheap * sizeof(*heap));
		if (!heap)
			exit(1);
	}
	i = nheap++;
	while (i && heap[(i - 1) / 2].at > t.at) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = t;
}

static struct timer heap_pop(void)
{
	struct timer top = heap[0], last = heap[--nheap];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < nheap && heap[l].at < last.at)
			m = l;
		if (l + 1 < nheap && heap[l + 1].at < (m == i ? last.at : heap[m].at))
			m = l + 1;
		if (m == i)
			break;
		heap[i] = heap[m];
		i = m;
	}
	if (nheap)
		heap[i] = last;
	return top;
}

static void conn_close(struct conn *c, bool reset)
{
	if (reset) {
		struct linger l = { 1, 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->gen++;
	/* Timers still point here; they check gen. Freed lazily below. */
}

/* Connections are never freed while a timer may point at them: keep a pool. */
static struct conn **pool;
static size_t npool, cappool;

static struct conn *conn_new(int fd)
{
	struct conn *c = NULL;
	size_t i;

	for (i = 0; i < npool; i++)
		if (pool[i]->fd < 0 && !pool[i]->busy) {
			c = pool[i];
			break;
		}
	if (!c) {
		if (npool == cappool) {
			cappool = cappool ? cappool * 2 : 256;
			pool = realloc(pool, cappool * sizeof(*pool));
			if (!pool)
				exit(1);
		}
		c = calloc(1, sizeof(*c));
		if (!c)
			exit(1);
		pool[npool++] = c;
	}
	c->fd = fd;
	c->len = 0;
	c->busy = false;
	c->close_after = false;
	return c;
}

static void write_all(int fd, const char *buf, size_t len)
{
	/* Responses are small: a blocking-ish retry loop is enough. */
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct timespec ts = { 0, 100000 };

			nanosleep(&ts, NULL);
			continue;
		}
		if (n <= 0)
			return;
		buf += n;
		len -= n;
	}
}

static void try_parse(struct conn *c);

static void respond(struct timer *t)
{
	struct conn *c = t->c;
	char out[512];
	int n;

	c->busy = false;
	if (req_log)
		fprintf(req_log, "%.6f,%u,%.3f,%s\n", t->arrived - start_time, c->peer_port,
			(t->at - t->arrived) * 1e3,
			c->fd < 0 || c->gen != t->gen ? "gone" : t->fail ? "failed" : "answered");
	if (c->fd < 0 || c->gen != t->gen)
		return;
	if (t->http)
		n = snprintf(out, sizeof(out),
			     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			     "X-Backend: %s\r\n%s\r\n%s\n",
			     t->fail ? "503 Service Unavailable" : "200 OK", strlen(id) + 1, id,
			     c->close_after ? "Connection: close\r\n" : "", id);
	else
		n = snprintf(out, sizeof(out), "%s %s\n", t->fail ? "ERR" : "OK", id);
	write_all(c->fd, out, n);
	if (c->close_after) {
		conn_close(c, false);
		return;
	}
	try_parse(c);
}

/* Start serving the first complete request in c->in, if any. */
static void try_parse(struct conn *c)
{
	struct scn_params p;
	struct timer t = { 0 };
	double now, rel, delay, begin;
	char *end;
	size_t used;
	int i, best;

	if (c->busy || c->fd < 0 || !c->len)
		return;
	if (c->len >= 4 && !memcmp(c->in, "GET ", 4)) {
		struct xt_http_req req;

		used = xt_http_head_len(c->in, c->len);
		if (!used)
			goto incomplete;
		if (xt_http_parse_request(c->in, used, &req)) {
			conn_close(c, true); /* garbage */
			return;
		}
		t.http = true;
		c->close_after = req.close;
	} else {
		end = memchr(c->in, '\n', c->len);
		if (!end)
			goto incomplete;
		c->close_after = c->len >= 4 && !memcmp(c->in, "REQC", 4);
		used = end + 1 - c->in;
	}
	memmove(c->in, c->in + used, c->len - used);
	c->len -= used;

	now = xt_wall();
	rel = now - start_time;
	p = scn_at(&sc, replica, rel);
	if (p.down) {
		conn_close(c, true);
		return;
	}
	delay = scn_delay(&p, &rnd);
	begin = now;
	if (p.workers > 0) {
		int w = p.workers < MAX_WORKERS ? p.workers : MAX_WORKERS;

		for (best = 0, i = 1; i < w; i++)
			if (worker_free[i] < worker_free[best])
				best = i;
		if (worker_free[best] > begin)
			begin = worker_free[best];
		worker_free[best] = begin + delay;
	}
	t.at = begin + delay;
	t.arrived = now;
	t.c = c;
	t.gen = c->gen;
	t.fail = scn_rand01(&rnd) >= p.success;
	c->busy = true;
	heap_push(t);
	return;
incomplete:
	if (c->len >= BUF - 1)
		conn_close(c, true); /* garbage */
}

static void on_readable(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->len, BUF - 1 - c->len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_close(c, false);
			return;
		}
		c->len += n;
		if (c->len >= BUF - 1)
			break;
	}
	try_parse(c);
}

static void on_signal(int sig)
{
	stop = 1;
}

static const struct xt_load_mode scenario_mode = {
	.tool = "xm-serve", .name = "scenario",
	.accepts = XO(XO_LISTEN) | XO(XO_REPLICA) | XO(XO_SCENARIO) | XO(XO_START) | XO(XO_LABEL) |
		   XO(XO_DUMP) | XO(XO_CSV),
	.summary = "a replica whose latency, failures and outages follow a scenario file\n"
		   "(line protocol \"REQ ID\" -> \"OK LABEL\", or HTTP/1 with X-Backend: LABEL);\n"
		   "--scenario FILE --dump: the timeline as CSV",
	.addr_optional = true, /* --dump */
	.was = "--id NAME -> --label NAME",
};

int serve_scenario(int argc, char **argv)
{
	struct xt_load_opts o = { .start = xt_wall() };
	const char *scn_path;
	struct epoll_event ev, evs[256];
	struct rlimit rl = { 65536, 65536 };
	int lfd, one = 1, i;

	xt_load_opts_or_die(&o, &scenario_mode, argc, argv);
	scn_path = o.scenario;
	start_time = o.start;
	if (o.replica >= SCN_MAX_REPLICAS)
		xt_die(2, "--replica wants 0 to %d, not %ld", SCN_MAX_REPLICAS - 1, o.replica);
	replica = o.replica;
	if (o.label)
		snprintf(id, sizeof(id), "%s", o.label);
	if (!scn_path)
		xt_die(2, "xm-serve scenario wants --scenario FILE; xm-serve scenario --help");
	if (o.dump) {
		/* Print the timeline (for plots and for checking a scenario file). */
		if (scn_load(scn_path, &sc))
			return 1;
		printf("t,replica,median_ms,p99_ms,success,workers,down,rate\n");
		for (double t = 0; t < sc.duration; t += 0.5)
			for (unsigned int r = 0; r < 9; r++) {
				struct scn_params p = scn_at(&sc, r, t);

				printf("%.1f,%u,%.1f,%.1f,%.3f,%d,%d,%.1f\n", t, r, p.median * 1000,
				       p.p99 * 1000, p.success, p.workers, p.down, scn_rate(&sc, t));
			}
		return 0;
	}
	if (!o.listen)
		xt_die(2, "xm-serve scenario wants --listen ADDR (or --dump); xm-serve scenario --help");
	if (scn_load(scn_path, &sc))
		return 1;
	if (!id[0])
		snprintf(id, sizeof(id), "%u", replica);
	rnd = 0x2545f4914f6cdd1dULL * (replica + 1) ^ (unsigned long long)(start_time * 1e6);
	setrlimit(RLIMIT_NOFILE, &rl);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	if (o.csv) {
		req_log = fopen(o.csv, "w");
		if (!req_log)
			xt_die(1, "--csv %s: %s", o.csv, strerror(errno));
		fprintf(req_log, "t,peer_port,delay_ms,outcome\n");
	}
	lfd = xt_listen(&o.at, o.at_len, SOCK_STREAM | SOCK_NONBLOCK);
	epfd = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);

	while (!stop) {
		double now = xt_wall();
		int timeout = -1, n;

		while (nheap && heap[0].at <= now) {
			struct timer t = heap_pop();

			respond(&t);
		}
		if (nheap)
			timeout = (int)((heap[0].at - now) * 1000) + 1;
		if (timeout < 0 || timeout > 200)
			timeout = 200;
		n = epoll_wait(epfd, evs, 256, timeout);
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c) {
				int fd;

				struct sockaddr_storage peer;
				socklen_t pl = sizeof(peer);

				while ((fd = accept4(lfd, (struct sockaddr *)&peer, &pl,
						     SOCK_NONBLOCK)) >= 0) {
					struct scn_params p = scn_at(&sc, replica, xt_wall() - start_time);

					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					if (p.down) {
						struct linger l = { 1, 0 };

						setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
						close(fd);
						continue;
					}
					c = conn_new(fd);
					c->peer_port = xt_port(&peer);
					pl = sizeof(peer);
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (c->fd >= 0)
				on_readable(c);
		}
	}
	/* requests still in service when stopped: their connection outlives the log */
	while (nheap) {
		struct timer t = heap_pop();

		if (req_log)
			fprintf(req_log, "%.6f,%u,%.3f,stopped\n", t.arrived - start_time,
				t.c->peer_port, (t.at - t.arrived) * 1e3);
	}
	if (req_log)
		fclose(req_log);
	return 0;
}
