// SPDX-License-Identifier: MIT
/*
 * xm-serve traffic --listen ADDR [--size REQ_BYTES] [--answer RESP_BYTES]
 *                  [--seed SEED] [--duration S]:
 * accept connections until killed; each answers --answer bytes while it
 * checks the --size byte request (tests/lib/exchange.h), each write spread
 * over S seconds: the same options as xm-load traffic. Prints "listening"
 * once bound.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/exchange.h"
#include "lib/loadopt.h"
#include "serve.h"

static struct xt_traffic_opts o;
static atomic_long failures, ok_conns;

static void *server_conn(void *p)
{
	int fd = (int)(long)p;

	if (xt_exchange(&o.x, fd, 1, o.resp, o.req, "server"))
		atomic_fetch_add(&failures, 1);
	else
		atomic_fetch_add(&ok_conns, 1);
	close(fd);
	return NULL;
}

static const struct xt_load_mode traffic_mode = {
	.tool = "xm-serve", .name = "traffic",
	.accepts = XO(XO_LISTEN) | XO(XO_SIZE) | XO(XO_ANSWER) | XO(XO_SEED) | XO(XO_DURATION),
	.summary = "byte-exact TCP exchange: checks --size bytes in while it sends --answer\n"
		   "bytes out per connection (xm-load traffic with the same options)",
	.was = "ADDR PORT -> --listen ADDR:PORT, -q N -> --size N, -r N -> --answer N, "
	       "-S -> --seed, -d MS -> --duration S",
};

int serve_traffic(int argc, char **argv)
{
	struct xt_load_opts lo = { .size = 1000, .answer = 1000, .seed = 1 };
	int fd;

	xt_load_opts_or_die(&lo, &traffic_mode, argc, argv);
	o = (struct xt_traffic_opts){ .req = lo.size, .resp = lo.answer };
	o.x.seed = lo.seed;
	o.x.spread_ms = lo.duration * 1000;
	fd = xt_listen(&lo.at, lo.at_len, SOCK_STREAM);
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		pthread_t t;

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("accept");
			return 2;
		}
		if (pthread_create(&t, NULL, server_conn, (void *)(long)c)) {
			close(c);
			continue;
		}
		pthread_detach(t);
	}
}
