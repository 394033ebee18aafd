// SPDX-License-Identifier: MIT
/*
 * xm-serve label | http | udp: labelled backends for the LB tests and
 * benchmarks (each names itself with -l LABEL):
 *   label ADDR PORT -l L                    TCP: send "L\n" on accept, close
 *   http ADDR PORT -l L [-d MS] [-e RATE] [-R]
 *                                           keep-alive HTTP/1: every request gets, after
 *                                           MS ms, "HTTP/1.1 200 OK" (or 500 for every
 *                                           1/RATE-th response) with header X-Backend: L;
 *                                           -R: reset the connection instead of answering
 *   udp ADDR PORT -l L                      UDP: answer each datagram with "L"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/http1.h"
#include "lib/opt.h"
#include "serve.h"

static const char *label = "?";
static int delay_ms, reset_requests;
static double err_rate;
static struct sockaddr_storage target;
static socklen_t target_len;

static int listen_on(int type)
{
	return xt_listen(&target, target_len, type);
}

static void serve_label(void)
{
	int lfd = listen_on(SOCK_STREAM);
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%s\n", label);

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
		if (reset_requests && xt_http_head_len(buf, have)) {
			/* -R: answer a request with a reset (linger 0 then close) */
			struct linger lg = { 1, 0 };

			setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			goto out;
		}
		while ((used = xt_http_head_len(buf, have))) {
			/* every (1/RATE)-th response of the server fails: exact, not sampled */
			long nth = atomic_fetch_add(&responses, 1) + 1;
			int bad = err_rate > 0 && nth % lround(1 / err_rate) == 0;
			int len = snprintf(resp, sizeof(resp),
					   "HTTP/1.1 %s\r\nX-Backend: %s\r\nContent-Length: 0\r\n\r\n",
					   bad ? "500 Internal Server Error" : "200 OK", label);

			if (delay_ms)
				usleep(delay_ms * 1000);
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
			sendto(fd, label, strlen(label), 0, (struct sockaddr *)&from, fl);
	}
}

int serve_lb(int argc, char **argv)
{
	const char *mode = argv[0];
	int opt;

	if (argc < 3 || xt_sockaddr(&target, &target_len, argv[1], xt_opt_int("PORT", argv[2], 0, 65535)))
		xt_die(2, "usage: xm-serve %s ADDR PORT -l LABEL [options]", mode);
	optind = 3;
	while ((opt = getopt(argc, argv, "l:d:e:R")) != -1) {
		switch (opt) {
		case 'l': label = optarg; break;
		case 'd': delay_ms = xt_opt_int("-d", optarg, 0, 600000); break;
		case 'e': err_rate = xt_opt_num("-e", optarg, 0, 1); break;
		case 'R': reset_requests = 1; break;
		default: return 2;
		}
	}
	if (!strcmp(mode, "label"))
		serve_label();
	else if (!strcmp(mode, "http"))
		serve_http();
	else
		serve_udp();
	return 0;
}
