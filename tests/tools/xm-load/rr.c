// SPDX-License-Identifier: MIT
/*
 * xm-load rr: request/response load against xm-serve rr.
 *
 *   xm-load rr -a ADDR:PORT|unix:PATH [-P tcp|http|stream] [-s BYTES] [-r RATE]
 *              [-d SECONDS | -N REQUESTS] [-c CONNS] [-n] [-T TIMEOUT_S]
 *
 * Open loop (-r RATE > 0): request i is due at t0 + i/RATE whatever the
 * server does, and its latency is measured from that due time. A stall
 * therefore delays, and is charged to, every request due during it (no
 * coordinated omission). A due request waits for a free connection when all
 * -c connections are busy; that wait is part of its latency.
 * Closed loop (-r 0): each of the -c connections sends its next request as
 * soon as the previous answer is complete; this measures the maximum rate.
 * -N REQUESTS (closed loop): run until that many answers are measured after
 * a tenth as many unmeasured (warm-up), instead of for -d seconds.
 *
 * Protocols (xm-serve rr): "tcp", a request of BYTES bytes whose first 4
 * bytes hold BYTES (>= 4) in network order, answered with as many bytes;
 * "http", "GET /BYTES HTTP/1.1" with keep-alive, answered 200 with BYTES of
 * body; "stream", one connection writing for -d seconds, the result the rate
 * the server received (gbit_s=).
 * -n: a new connection per request (connect, request, answer, close); the
 * latency includes the connect.
 *
 * Prints one line of key=value pairs; latencies in microseconds, percentiles
 * by tests/lib/pctl.h.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/http1.h"
#include "lib/opt.h"
#include "lib/pctl.h"
#include "load.h"

#define MAX_SIZE (1 << 20)
#define HDR_MAX 512

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on unix: fine */
}

enum proto { P_TCP, P_HTTP, P_STREAM };

struct opts {
	struct sockaddr_storage to;
	socklen_t to_len;
	enum proto proto;
	uint32_t size;
	double rate;
	double duration;
	long count; /* -N: measure this many answers (closed loop), not -d */
	double timeout;
	int conns;
	bool newconn;
};

struct cconn {
	int fd;
	bool busy, connecting;
	uint64_t due; /* when the request in flight was due */
	uint32_t send_off;
	/* answer parsing */
	uint32_t resp_left; /* tcp: bytes still owed; http: body bytes once head seen */
	bool in_body;
	char head[HDR_MAX];
	unsigned int head_len;
};

static struct opts o;
static char *req;
static uint32_t req_len;
static int ep;
static struct xt_samples lat, lag; /* us */
static uint64_t n_sent, n_errors, n_answers, n_warm;
static uint64_t win_start, win_end;
static int n_busy;

static void record(uint64_t due, uint64_t done)
{
	/* -N: the first tenth of the answers warms up, the rest is measured */
	if (o.count && n_answers++ < n_warm)
		return;
	if (due >= win_start && due < win_end)
		xt_samples_add(&lat, (done - due) / 1e3);
}

static int cconn_open(struct cconn *c, bool block)
{
	struct epoll_event ev;
	int fd = socket(o.to.ss_family, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	set_nodelay(fd);
	if (!block)
		set_nonblock(fd);
	if (connect(fd, (struct sockaddr *)&o.to, o.to_len) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	if (block)
		set_nonblock(fd);
	c->fd = fd;
	c->connecting = !block;
	ev.events = EPOLLIN | (block ? 0 : EPOLLOUT);
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static void cconn_close(struct cconn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
}

/* Send (the rest of) the request; sets EPOLLOUT interest while incomplete. */
static int cconn_send(struct cconn *c)
{
	struct epoll_event ev;

	while (c->send_off < req_len) {
		ssize_t w = write(c->fd, req + c->send_off, req_len - c->send_off);

		if (w < 0) {
			if (errno != EAGAIN)
				return -1;
			ev.events = EPOLLIN | EPOLLOUT;
			ev.data.ptr = c;
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			return 0;
		}
		c->send_off += w;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

static void cconn_start(struct cconn *c, uint64_t due)
{
	c->busy = true;
	n_busy++;
	c->due = due;
	/*
	 * How late the generator itself sends (timer wake-up, queueing for a
	 * free connection): part of the latency, reported apart to judge it.
	 */
	if (o.rate > 0)
		xt_samples_add(&lag, (xt_now_ns() - due) / 1e3);
	c->send_off = 0;
	c->in_body = false;
	c->head_len = 0;
	c->resp_left = o.proto == P_TCP ? o.size : 0;
	n_sent++;
	if (o.newconn) {
		if (cconn_open(c, false))
			goto fail;
		return; /* sent once connected */
	}
	if (c->fd < 0 && cconn_open(c, true))
		goto fail;
	if (cconn_send(c))
		goto fail;
	return;
fail:
	n_errors++;
	cconn_close(c);
	c->busy = false;
	n_busy--;
}

static void cconn_done(struct cconn *c, bool ok)
{
	if (ok)
		record(c->due, xt_now_ns());
	else
		n_errors++;
	c->busy = false;
	n_busy--;
	if (o.newconn || !ok)
		cconn_close(c);
}

/* Read answer bytes; returns 1 when the answer is complete, 0 if not yet, -1 on error. */
static int cconn_recv(struct cconn *c)
{
	static char buf[65536];

	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof(buf));
		size_t off = 0;

		if (r == 0)
			return -1;
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		if (!c->busy)
			return -1; /* bytes nobody asked for */
		if (o.proto == P_HTTP && !c->in_body) {
			size_t room = sizeof(c->head) - c->head_len;
			size_t take = (size_t)r < room ? (size_t)r : room, head;
			struct xt_http_resp resp;

			memcpy(c->head + c->head_len, buf, take);
			c->head_len += take;
			head = xt_http_head_len(c->head, c->head_len);
			if (!head) {
				if (c->head_len == sizeof(c->head))
					return -1;
				continue;
			}
			if (xt_http_parse_response(c->head, head, &resp) || resp.status != 200 ||
			    resp.content_length < 0)
				return -1;
			c->resp_left = resp.content_length;
			c->in_body = true;
			/* body bytes that came with the head */
			off = head - (c->head_len - take);
		}
		size_t got = r - off;

		if (got > c->resp_left)
			return -1; /* more than the answer: protocol error */
		c->resp_left -= got;
		if (c->resp_left == 0)
			return 1;
	}
}

static double pct(struct xt_samples *s, double q)
{
	return s->n ? xt_pctl(s, q) : 0;
}

static void usage(void)
{
	xt_die(2, "usage: xm-load rr -a ADDR:PORT|unix:PATH [-P tcp|http|stream] [-s BYTES] "
	       "[-r RATE] [-d SECONDS | -N REQUESTS] [-c CONNS] [-n] [-T DRAIN_TIMEOUT_S]");
}

static int run_client(void)
{
	struct epoll_event evs[256];
	struct cconn *cs;
	uint64_t t0, t_end, deadline, next_i = 0, disp_i = 0, interval = 0;
	bool open_loop = o.rate > 0;

	req_len = o.size;
	if (o.proto == P_HTTP) {
		req = malloc(HDR_MAX);
		req_len = snprintf(req, HDR_MAX, "GET /%u HTTP/1.1\r\nHost: xm-serve\r\n"
				   "User-Agent: xm-load\r\nAccept: */*\r\n\r\n", o.size);
	} else {
		uint32_t be = htonl(o.size);

		if (o.size < 4)
			xt_die(2, "-s: a tcp request holds its 4-byte size: at least 4 bytes");
		req = calloc(1, o.size);
		memcpy(req, &be, 4);
	}
	ep = epoll_create1(0);
	cs = calloc(o.conns, sizeof(*cs));
	for (int i = 0; i < o.conns; i++) {
		cs[i].fd = -1;
		if (!o.newconn && cconn_open(&cs[i], true)) {
			perror("xm-load rr: connect");
			return 1;
		}
	}
	if (open_loop)
		interval = (uint64_t)(1e9 / o.rate);
	t0 = xt_now_ns() + 10000000ull;
	t_end = o.count ? UINT64_MAX : t0 + (uint64_t)(o.duration * 1e9);
	n_warm = o.count / 10;
	win_start = t0;
	win_end = t_end;
	deadline = t_end + (uint64_t)(o.timeout * 1e9);

	if (!open_loop) {
		while (xt_now_ns() < t0)
			;
		for (int i = 0; i < o.conns; i++)
			cconn_start(&cs[i], xt_now_ns());
	}
	for (;;) {
		uint64_t now = xt_now_ns();
		struct timespec to;
		int64_t wait;
		int n;

		if (open_loop) {
			/* every request due by now joins the queue (disp_i..next_i) */
			while (now < t_end && t0 + next_i * interval <= now)
				next_i++;
			for (int i = 0; i < o.conns && disp_i < next_i; i++) {
				if (!cs[i].busy) {
					cconn_start(&cs[i], t0 + disp_i * interval);
					disp_i++;
				}
			}
			if (now >= t_end && disp_i == next_i && n_busy == 0)
				break;
			wait = now < t_end ? (int64_t)(t0 + next_i * interval - now) : 10000000;
		} else {
			if ((now >= t_end || o.count) && n_busy == 0)
				break;
			wait = 10000000;
		}
		if (!o.count && now >= deadline)
			break;
		if (wait < 0)
			wait = 0;
		to.tv_sec = wait / 1000000000;
		to.tv_nsec = wait % 1000000000;
		n = epoll_pwait2(ep, evs, 256, &to, NULL);
		for (int i = 0; i < n; i++) {
			struct cconn *c = evs[i].data.ptr;
			int r;

			if (c->fd < 0)
				continue;
			if (c->connecting && (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
				int err = 0;
				socklen_t l = sizeof(err);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
				c->connecting = false;
				if (err || cconn_send(c)) {
					cconn_done(c, false);
					continue;
				}
			} else if (evs[i].events & EPOLLOUT) {
				if (cconn_send(c)) {
					cconn_done(c, false);
					continue;
				}
			}
			if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				continue;
			r = cconn_recv(c);
			if (r == 0)
				continue;
			if (r < 0 && !c->busy) {
				cconn_close(c); /* idle connection closed by the peer */
				continue;
			}
			cconn_done(c, r > 0);
			if (!open_loop && xt_now_ns() < t_end && (!o.count || n_sent < o.count + n_warm))
				cconn_start(c, xt_now_ns());
		}
	}
	uint64_t lost = n_busy + (open_loop ? next_i - disp_i : 0);
	/* -N: the rate over the whole run, warm-up included */
	double secs = o.count ? (xt_now_ns() - t0) / 1e9 : o.duration;

	printf("proto=%s size=%u rate=%.0f conns=%d newconn=%d duration=%.2f sent=%llu "
	       "completed=%zu errors=%llu lost=%llu rps=%.0f p50_us=%.1f p90_us=%.1f "
	       "p99_us=%.1f p999_us=%.1f max_us=%.1f send_lag_p50_us=%.1f send_lag_p99_us=%.1f\n",
	       o.proto == P_HTTP ? "http" : "tcp", o.size, o.rate, o.conns, o.newconn,
	       secs, (unsigned long long)n_sent, lat.n, (unsigned long long)n_errors,
	       (unsigned long long)lost, (o.count ? n_answers : lat.n) / secs, pct(&lat, 0.5),
	       pct(&lat, 0.9), pct(&lat, 0.99), pct(&lat, 0.999), pct(&lat, 1), pct(&lag, 0.5),
	       pct(&lag, 0.99));
	return 0;
}

/*
 * -P stream: one connection writes 64 KiB blocks for -d seconds, then
 * half-closes; the server's receive rate is the result.
 */
static int run_stream(void)
{
	static char block[65536] = { 'S' };
	struct cconn c = { .fd = -1 };
	double end;
	char line[64] = "";
	ssize_t n;

	if (cconn_open(&c, true))
		xt_die(1, "connect: %s", strerror(errno));
	fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) & ~O_NONBLOCK);
	end = xt_now() + o.duration;
	for (size_t off = 0; xt_now() < end; off = 1)
		if (send(c.fd, block + off, sizeof(block) - off, MSG_NOSIGNAL) < 0)
			xt_die(1, "stream: send: %s", strerror(errno));
	shutdown(c.fd, SHUT_WR);
	/* a redirected socket's blocking recv can return EAGAIN (docs/redirect-compat.md) */
	do
		n = recv(c.fd, line, sizeof(line) - 1, MSG_WAITALL);
	while (n < 0 && (errno == EAGAIN || errno == EINTR));
	if (n <= 0 || strncmp(line, "gbit_s=", 7))
		xt_die(1, "stream: no rate from the server");
	line[strcspn(line, "\n")] = 0;
	printf("proto=stream duration=%.2f %s\n", o.duration, line);
	return 0;
}

int load_rr(int argc, char **argv)
{
	int c;
	bool have_to = false;

	/* wake-ups on the request timeline should not be batched by timer slack */
	prctl(PR_SET_TIMERSLACK, 1UL);
	o.proto = P_TCP;
	o.size = 64;
	o.duration = 5;
	o.timeout = 2;
	o.conns = 16;
	while ((c = getopt(argc, argv, "a:P:s:r:d:N:c:nT:")) != -1) {
		switch (c) {
		case 'a':
			if (xt_endpoint(&o.to, &o.to_len, optarg, false))
				xt_die(2, "-a wants ADDR:PORT, [IPv6]:PORT or unix:PATH, not '%s'", optarg);
			have_to = true;
			break;
		case 'P':
			if (!strcmp(optarg, "tcp"))
				o.proto = P_TCP;
			else if (!strcmp(optarg, "http"))
				o.proto = P_HTTP;
			else if (!strcmp(optarg, "stream"))
				o.proto = P_STREAM;
			else
				usage();
			break;
		case 's':
			o.size = xt_opt_size("-s", optarg, MAX_SIZE);
			break;
		case 'r':
			o.rate = xt_opt_num("-r", optarg, 0, 1e8);
			break;
		case 'd':
			o.duration = xt_opt_num("-d", optarg, 0.001, 1e6);
			break;
		case 'N':
			o.count = xt_opt_int("-N", optarg, 1, 1000000000);
			break;
		case 'c':
			o.conns = xt_opt_int("-c", optarg, 1, 100000);
			break;
		case 'n':
			o.newconn = true;
			break;
		case 'T':
			o.timeout = xt_opt_num("-T", optarg, 0, 1e6);
			break;
		default:
			usage();
		}
	}
	if (!have_to)
		usage();
	if (o.count && o.rate > 0)
		xt_die(2, "-N counts answers of a closed loop: not with -r RATE");
	if (o.proto == P_STREAM)
		return run_stream();
	return run_client();
}
