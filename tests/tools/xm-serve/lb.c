// SPDX-License-Identifier: MIT
/*
 * xm-serve label | http | udp: labelled backends for the LB tests and
 * benchmarks (each names itself with --label L; options: tests/lib/loadopt.h):
 *   label -l ADDR --label L                 TCP: send "L\n" on accept, close
 *   http -l ADDR --label L [--delay S] [--error-rate F] [--reset]
 *                                           keep-alive HTTP/1: every request gets, after
 *                                           S seconds, "HTTP/1.1 200 OK" (or 500 for every
 *                                           1/F-th response) with headers X-Backend: L and
 *                                           X-Sent-Ns: its CLOCK_REALTIME just before the write;
 *                                           --reset: reset the connection instead of answering
 *   udp -l ADDR --label L                   UDP: answer each datagram with "L"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/http1.h"
#include "lib/loadopt.h"
#include "lib/opt.h"
#include "serve.h"

static struct xt_load_opts o = { .label = "?" };

static int listen_on(int type)
{
	return xt_listen(&o.at, o.at_len, type);
}

static void serve_label(void)
{
	int lfd = listen_on(SOCK_STREAM);
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%s\n", o.label);

	for (;;) {
		int c = accept(lfd, NULL, NULL);

		if (c < 0)
			continue;
		if (write(c, msg, n) < 0)
			perror("write");
		close(c);
	}
}

static atomic_long responses;

static void *http_conn(void *arg)
{
	int c = (int)(long)arg;
	char buf[4096], resp[256];
	size_t have = 0, used;

	for (;;) {
		ssize_t n = read(c, buf + have, sizeof(buf) - have);

		if (n <= 0)
			break;
		have += n;
		if (o.reset && xt_http_head_len(buf, have)) {
			/* --reset: answer a request with a reset (linger 0 then close) */
			struct linger lg = { 1, 0 };

			setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			goto out;
		}
		while ((used = xt_http_head_len(buf, have))) {
			/* every (1/RATE)-th response of the server fails: exact, not sampled */
			long nth = atomic_fetch_add(&responses, 1) + 1;
			int bad = o.error_rate > 0 && nth % lround(1 / o.error_rate) == 0;
			int len;

			if (o.delay > 0)
				usleep(o.delay * 1e6);
			/*
			 * X-Sent-Ns: when the answer left, for a client whose
			 * socket gets no receive timestamp (redirected bytes go
			 * socket to socket inside this write).
			 */
			len = snprintf(resp, sizeof(resp),
				       "HTTP/1.1 %s\r\nX-Backend: %s\r\nX-Sent-Ns: %llu\r\n"
				       "Content-Length: 0\r\n\r\n",
				       bad ? "500 Internal Server Error" : "200 OK", o.label,
				       (unsigned long long)xt_wall_ns());
			if (write(c, resp, len) != len)
				goto out;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
		if (have == sizeof(buf))
			break;
	}
out:
	close(c);
	return NULL;
}

static void serve_http(void)
{
	int lfd = listen_on(SOCK_STREAM);

	for (;;) {
		int c = accept(lfd, NULL, NULL);
		pthread_t t;

		if (c < 0)
			continue;
		if (pthread_create(&t, NULL, http_conn, (void *)(long)c) == 0)
			pthread_detach(t);
		else
			close(c);
	}
}

static void serve_udp(void)
{
	int fd = listen_on(SOCK_DGRAM);

	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		char buf[512];
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

		if (n >= 0)
			sendto(fd, o.label, strlen(o.label), 0, (struct sockaddr *)&from, fl);
	}
}

#define WAS_LB "ADDR PORT -l L -> --listen ADDR:PORT --label L"

static const struct xt_load_mode lb_modes[] = {
	{ .tool = "xm-serve", .name = "label", .accepts = XO(XO_LISTEN) | XO(XO_LABEL),
	  .summary = "TCP backend: sends its label and a newline on accept, then closes",
	  .was = WAS_LB },
	{ .tool = "xm-serve", .name = "http",
	  .accepts = XO(XO_LISTEN) | XO(XO_LABEL) | XO(XO_DELAY) | XO(XO_ERROR_RATE) | XO(XO_RESET),
	  .summary = "keep-alive HTTP/1 backend: 200 (500: --error-rate) with X-Backend: LABEL",
	  .was = WAS_LB ", -d MS -> --delay S, -e F -> --error-rate F, -R -> --reset" },
	{ .tool = "xm-serve", .name = "udp", .accepts = XO(XO_LISTEN) | XO(XO_LABEL),
	  .summary = "UDP backend: answers each datagram with its label", .was = WAS_LB },
};

int serve_lb(int argc, char **argv)
{
	const char *mode = argv[0];

	for (size_t i = 0; i < sizeof(lb_modes) / sizeof(lb_modes[0]); i++)
		if (!strcmp(mode, lb_modes[i].name))
			xt_load_opts_or_die(&o, &lb_modes[i], argc, argv);
	if (!strcmp(mode, "label"))
		serve_label();
	else if (!strcmp(mode, "http"))
		serve_http();
	else
		serve_udp();
	return 0;
}
