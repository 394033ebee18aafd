// SPDX-License-Identifier: MIT
/*
 * rrgen: request/response server and load generator for benchmarks.
 *
 *   rrgen server [-l [ADDR:]PORT]
 *   rrgen client -a IP:PORT [-P tcp|http] [-s BYTES] [-r RATE] [-d SECONDS]
 *                [-c CONNS] [-n] [-T TIMEOUT_S]
 *
 * Open loop (-r RATE > 0): request i is due at t0 + i/RATE whatever the
 * server does, and its latency is measured from that due time. A stall
 * therefore delays, and is charged to, every request due during it (no
 * coordinated omission). A due request waits for a free connection when all
 * -c connections are busy; that wait is part of its latency.
 * Closed loop (-r 0): each of the -c connections sends its next request as
 * soon as the previous answer is complete; this measures the maximum rate.
 *
 * Protocol "tcp": a request is BYTES bytes whose first 4 bytes hold BYTES in
 * network order; the server answers with as many bytes.
 * Protocol "http": "GET /BYTES HTTP/1.1" with keep-alive; the server answers
 * 200 with a body of BYTES bytes. The server tells the two apart by the first
 * byte of a connection, so one server port serves both.
 * -n: a new connection per request (connect, request, answer, close); the
 * latency includes the connect.
 *
 * The client prints one line of key=value pairs; latencies in microseconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE (1 << 20)
#define HDR_MAX 512

static char zeros[MAX_SIZE];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int parse_addr(const char *s, struct sockaddr_in *sa, bool need_ip)
{
	char buf[64], *colon;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	snprintf(buf, sizeof(buf), "%s", s);
	colon = strrchr(buf, ':');
	if (!colon) {
		if (need_ip)
			return -1;
		sa->sin_port = htons(atoi(buf));
		return 0;
	}
	*colon = 0;
	sa->sin_port = htons(atoi(colon + 1));
	if (!*buf && !need_ip)
		return 0;
	return inet_pton(AF_INET, buf, &sa->sin_addr) == 1 ? 0 : -1;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ------------------------------------------------------------------ server */

enum proto { P_UNKNOWN, P_TCP, P_HTTP };

struct sconn {
	int fd;
	enum proto proto;
	/* tcp: header bytes seen and bytes of the current request still to come */
	uint8_t hdr[4];
	unsigned int hdr_got;
	uint32_t req_left;
	/* http: request head seen so far */
	char head[HDR_MAX];
	unsigned int head_len;
	/* answers owed: count and size of each (a client uses one size) */
	unsigned int owed;
	uint32_t resp_size;
	/* the answer being written */
	char out_hdr[128];
	unsigned int out_hdr_len, out_hdr_off;
	uint32_t out_body_left;
	bool want_out;
};

static void sconn_close(int ep, struct sconn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Consume n request bytes; count complete requests in c->owed. */
static int sconn_parse(struct sconn *c, const char *p, size_t n)
{
	if (c->proto == P_UNKNOWN && n)
		c->proto = p[0] == 'G' ? P_HTTP : P_TCP;
	while (n) {
		if (c->proto == P_TCP) {
			if (c->hdr_got < 4) {
				c->hdr[c->hdr_got++] = *p++;
				n--;
				if (c->hdr_got == 4) {
					uint32_t sz;

					memcpy(&sz, c->hdr, 4);
					sz = ntohl(sz);
					if (sz < 4 || sz > MAX_SIZE)
						return -1;
					c->resp_size = sz;
					c->req_left = sz - 4;
				} else {
					continue;
				}
			}
			size_t take = n < c->req_left ? n : c->req_left;

			p += take;
			n -= take;
			c->req_left -= take;
			if (c->req_left == 0) {
				c->owed++;
				c->hdr_got = 0;
			}
		} else {
			size_t room = sizeof(c->head) - 1 - c->head_len;
			size_t take = n < room ? n : room;
			char *end;

			memcpy(c->head + c->head_len, p, take);
			c->head_len += take;
			c->head[c->head_len] = 0;
			p += take;
			n -= take;
			/* every complete head buffered is one request (pipelining allowed) */
			while ((end = strstr(c->head, "\r\n\r\n"))) {
				if (strncmp(c->head, "GET /", 5))
					return -1;
				c->resp_size = strtoul(c->head + 5, NULL, 10);
				if (c->resp_size > MAX_SIZE)
					return -1;
				c->owed++;
				end += 4;
				c->head_len -= end - c->head;
				memmove(c->head, end, c->head_len + 1);
			}
			if (c->head_len == sizeof(c->head) - 1)
				return -1;
		}
	}
	return 0;
}

/* Write owed answers; 1 when the socket is full, 0 when all written, -1 on error. */
static int sconn_flush(struct sconn *c)
{
	for (;;) {
		if (!c->out_hdr_len && !c->out_body_left) {
			if (!c->owed)
				return 0;
			c->owed--;
			if (c->proto == P_HTTP) {
				c->out_hdr_len = snprintf(c->out_hdr, sizeof(c->out_hdr),
							  "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n"
							  "Content-Type: application/octet-stream\r\n\r\n",
							  c->resp_size);
				c->out_hdr_off = 0;
			}
			c->out_body_left = c->resp_size;
		}
		struct iovec iov[2];
		int n = 0;
		ssize_t w;

		if (c->out_hdr_off < c->out_hdr_len) {
			iov[n].iov_base = c->out_hdr + c->out_hdr_off;
			iov[n++].iov_len = c->out_hdr_len - c->out_hdr_off;
		}
		if (c->out_body_left) {
			iov[n].iov_base = zeros;
			iov[n++].iov_len = c->out_body_left;
		}
		w = writev(c->fd, iov, n);
		if (w < 0)
			return errno == EAGAIN ? 1 : -1;
		if (c->out_hdr_off < c->out_hdr_len) {
			size_t h = c->out_hdr_len - c->out_hdr_off;

			if ((size_t)w < h) {
				c->out_hdr_off += w;
				continue;
			}
			w -= h;
			c->out_hdr_len = c->out_hdr_off = 0;
		}
		c->out_body_left -= w;
	}
}

static int run_server(const char *listen_at)
{
	struct sockaddr_in sa;
	struct epoll_event ev, evs[256];
	static char buf[65536];
	int lfd, ep, one = 1;

	if (parse_addr(listen_at, &sa, false)) {
		fprintf(stderr, "rrgen: bad listen address '%s'\n", listen_at);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096)) {
		perror("rrgen: bind/listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;

			if (!c) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof(*c));
					c->fd = fd;
					set_nodelay(fd);
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			bool dead = false;

			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
				for (;;) {
					ssize_t r = read(c->fd, buf, sizeof(buf));

					if (r > 0) {
						if (sconn_parse(c, buf, r))
							dead = true;
						if (dead || (size_t)r < sizeof(buf))
							break;
						continue;
					}
					if (r == 0 || errno != EAGAIN)
						dead = true;
					break;
				}
			}
			if (!dead) {
				int f = sconn_flush(c);

				if (f < 0)
					dead = true;
				else if ((f == 1) != c->want_out) {
					c->want_out = f == 1;
					ev.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
			}
			if (dead)
				sconn_close(ep, c);
		}
	}
}

/* ------------------------------------------------------------------ client */

struct opts {
	struct sockaddr_in to;
	enum proto proto;
	uint32_t size;
	double rate;
	double duration;
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
static uint64_t *lat, *lag;
static size_t lat_n, lat_cap, lag_n, lag_cap;
static uint64_t n_sent, n_errors;
static uint64_t win_start, win_end;
static int n_busy;

static void push(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 65536;
		*a = realloc(*a, *cap * sizeof(**a));
		if (!*a) {
			perror("rrgen");
			exit(1);
		}
	}
	(*a)[(*n)++] = v;
}

static void record(uint64_t due, uint64_t done)
{
	if (due >= win_start && due < win_end)
		push(&lat, &lat_n, &lat_cap, done - due);
}

static int cconn_open(struct cconn *c, bool block)
{
	struct epoll_event ev;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	set_nodelay(fd);
	if (!block)
		set_nonblock(fd);
	if (connect(fd, (struct sockaddr *)&o.to, sizeof(o.to)) && errno != EINPROGRESS) {
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
		push(&lag, &lag_n, &lag_cap, now_ns() - due);
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
		record(c->due, now_ns());
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
			size_t room = sizeof(c->head) - 1 - c->head_len;
			size_t take = (size_t)r < room ? (size_t)r : room;
			char *end, *cl;

			memcpy(c->head + c->head_len, buf, take);
			c->head_len += take;
			c->head[c->head_len] = 0;
			end = strstr(c->head, "\r\n\r\n");
			if (!end) {
				if (c->head_len == sizeof(c->head) - 1)
					return -1;
				continue;
			}
			if (strncmp(c->head, "HTTP/1.1 200", 12) && strncmp(c->head, "HTTP/1.0 200", 12))
				return -1;
			cl = strcasestr(c->head, "\r\ncontent-length:");
			if (!cl)
				return -1;
			c->resp_left = strtoul(cl + 17, NULL, 10);
			c->in_body = true;
			/* body bytes that came with the head */
			off = (end + 4 - c->head) - (c->head_len - take);
		}
		size_t got = r - off;

		if (got > c->resp_left)
			return -1; /* more than the answer: protocol error */
		c->resp_left -= got;
		if (c->resp_left == 0)
			return 1;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_of(const uint64_t *a, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)(p / 100.0 * n);
	if (i >= n)
		i = n - 1;
	return a[i] / 1000.0;
}

static double pct(double p)
{
	return pct_of(lat, lat_n, p);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rrgen server [-l [ADDR:]PORT]\n"
		"       rrgen client -a IP:PORT [-P tcp|http] [-s BYTES] [-r RATE] [-d SECONDS]\n"
		"                    [-c CONNS] [-n] [-T DRAIN_TIMEOUT_S]\n");
	exit(2);
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
		req_len = snprintf(req, HDR_MAX, "GET /%u HTTP/1.1\r\nHost: rrgen\r\n"
				   "User-Agent: rrgen\r\nAccept: */*\r\n\r\n", o.size);
	} else {
		uint32_t be = htonl(o.size);

		if (o.size < 4)
			usage();
		req = calloc(1, o.size);
		memcpy(req, &be, 4);
	}
	ep = epoll_create1(0);
	cs = calloc(o.conns, sizeof(*cs));
	for (int i = 0; i < o.conns; i++) {
		cs[i].fd = -1;
		if (!o.newconn && cconn_open(&cs[i], true)) {
			perror("rrgen: connect");
			return 1;
		}
	}
	if (open_loop)
		interval = (uint64_t)(1e9 / o.rate);
	t0 = now_ns() + 10000000ull;
	t_end = t0 + (uint64_t)(o.duration * 1e9);
	win_start = t0;
	win_end = t_end;
	deadline = t_end + (uint64_t)(o.timeout * 1e9);

	if (!open_loop) {
		while (now_ns() < t0)
			;
		for (int i = 0; i < o.conns; i++)
			cconn_start(&cs[i], now_ns());
	}
	for (;;) {
		uint64_t now = now_ns();
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
			if (now >= t_end && n_busy == 0)
				break;
			wait = 10000000;
		}
		if (now >= deadline)
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
			if (!open_loop && now_ns() < t_end)
				cconn_start(c, now_ns());
		}
	}
	uint64_t lost = n_busy + (open_loop ? next_i - disp_i : 0);

	qsort(lat, lat_n, sizeof(*lat), cmp_u64);
	qsort(lag, lag_n, sizeof(*lag), cmp_u64);
	printf("proto=%s size=%u rate=%.0f conns=%d newconn=%d duration=%.2f sent=%llu "
	       "completed=%zu errors=%llu lost=%llu rps=%.0f p50_us=%.1f p90_us=%.1f "
	       "p99_us=%.1f p999_us=%.1f max_us=%.1f send_lag_p50_us=%.1f send_lag_p99_us=%.1f\n",
	       o.proto == P_HTTP ? "http" : "tcp", o.size, o.rate, o.conns, o.newconn,
	       o.duration, (unsigned long long)n_sent, lat_n, (unsigned long long)n_errors,
	       (unsigned long long)lost, lat_n / o.duration, pct(50),
	       pct(90), pct(99), pct(99.9), lat_n ? lat[lat_n - 1] / 1000.0 : 0.0,
	       pct_of(lag, lag_n, 50), pct_of(lag, lag_n, 99));
	return 0;
}

int main(int argc, char **argv)
{
	const char *listen_at = "8080";
	int c;

	signal(SIGPIPE, SIG_IGN);
	/* wake-ups on the request timeline should not be batched by timer slack */
	prctl(PR_SET_TIMERSLACK, 1UL);
	if (argc < 2)
		usage();
	o.proto = P_TCP;
	o.size = 64;
	o.duration = 5;
	o.timeout = 2;
	o.conns = 16;
	if (!strcmp(argv[1], "server")) {
		while ((c = getopt(argc - 1, argv + 1, "l:")) != -1) {
			if (c == 'l')
				listen_at = optarg;
			else
				usage();
		}
		return run_server(listen_at);
	}
	if (strcmp(argv[1], "client"))
		usage();
	bool have_to = false;

	while ((c = getopt(argc - 1, argv + 1, "a:P:s:r:d:c:nT:")) != -1) {
		switch (c) {
		case 'a':
			if (parse_addr(optarg, &o.to, true))
				usage();
			have_to = true;
			break;
		case 'P':
			if (!strcmp(optarg, "tcp"))
				o.proto = P_TCP;
			else if (!strcmp(optarg, "http"))
				o.proto = P_HTTP;
			else
				usage();
			break;
		case 's':
			o.size = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			o.rate = atof(optarg);
			break;
		case 'd':
			o.duration = atof(optarg);
			break;
		case 'c':
			o.conns = atoi(optarg);
			break;
		case 'n':
			o.newconn = true;
			break;
		case 'T':
			o.timeout = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (!have_to || o.conns < 1 || o.size > MAX_SIZE || o.duration <= 0)
		usage();
	return run_client();
}
