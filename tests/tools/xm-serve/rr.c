// SPDX-License-Identifier: MIT
/*
 * xm-serve rr --listen ADDR (IP:PORT, [IPv6]:PORT, unix:PATH or PORT): the request/response server
 * of xm-load rr. Single thread, epoll. Each connection's first byte says its
 * protocol:
 *   tcp:    a request is BYTES bytes whose first 4 bytes hold BYTES in network
 *           order (4 <= BYTES <= 1 MiB); the answer is BYTES bytes.
 *   http:   "GET /BYTES HTTP/1.1" (keep-alive, pipelining allowed); the answer
 *           is 200 with a body of BYTES bytes.
 *   stream: 'S' then any bytes until EOF; the answer is "gbit_s=RATE\n", the
 *           rate from the first byte received to the last.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/http1.h"
#include "lib/loadopt.h"
#include "lib/opt.h"
#include "serve.h"

#define MAX_SIZE (1 << 20)
#define HDR_MAX 512

static char zeros[MAX_SIZE];

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on unix: fine */
}

enum proto { P_UNKNOWN, P_TCP, P_HTTP, P_STREAM };

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
	/* stream: bytes counted, and when the first and the last came */
	uint64_t stream_bytes;
	double stream_first, stream_last;
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
		c->proto = p[0] == 'G' ? P_HTTP : p[0] == 'S' ? P_STREAM : P_TCP;
	if (c->proto == P_STREAM) {
		double now = xt_now();

		if (!c->stream_bytes)
			c->stream_first = now;
		c->stream_last = now;
		c->stream_bytes += n;
		return 0;
	}
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
			size_t room = sizeof(c->head) - c->head_len;
			size_t take = n < room ? n : room, used;
			struct xt_http_req req;

			memcpy(c->head + c->head_len, p, take);
			c->head_len += take;
			p += take;
			n -= take;
			/* every complete head buffered is one request (pipelining allowed) */
			while ((used = xt_http_head_len(c->head, c->head_len))) {
				char *end;

				if (xt_http_parse_request(c->head, used, &req) || strcmp(req.method, "GET"))
					return -1;
				c->resp_size = strtoul(req.path + 1, &end, 10);
				if (req.path[0] != '/' || *end || c->resp_size > MAX_SIZE)
					return -1;
				c->owed++;
				c->head_len -= used;
				memmove(c->head, c->head + used, c->head_len);
			}
			if (c->head_len == sizeof(c->head))
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

/* The end of a stream: its receive rate, as the sender's result. */
static void stream_report(struct sconn *c)
{
	double secs = c->stream_last - c->stream_first;
	char line[64];
	int n = snprintf(line, sizeof(line), "gbit_s=%.3f\n",
			 secs > 0 ? c->stream_bytes * 8 / secs / 1e9 : 0);

	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
	if (send(c->fd, line, n, MSG_NOSIGNAL) != n)
		perror("xm-serve rr: stream report");
}

static const struct xt_load_mode rr_mode = {
	.tool = "xm-serve", .name = "rr", .accepts = XO(XO_LISTEN),
	.summary = "size-prefixed TCP request/response, HTTP/1 GET /BYTES and a stream sink\n"
		   "(xm-load rr, stream), told apart by a connection's first byte",
};

int serve_rr(int argc, char **argv)
{
	struct xt_load_opts o = { 0 };
	struct epoll_event ev, evs[256];
	static char buf[65536];
	int lfd, ep;

	xt_load_opts_or_die(&o, &rr_mode, argc, argv);
	lfd = xt_listen(&o.at, o.at_len, SOCK_STREAM | SOCK_NONBLOCK);
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
					if (r == 0 && c->proto == P_STREAM)
						stream_report(c);
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
