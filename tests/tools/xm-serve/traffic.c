// SPDX-License-Identifier: MIT
/*
 * xm-serve traffic ADDR PORT [-q REQ_BYTES] [-r RESP_BYTES] [-S SEED] [-d MS]:
 * accept connections until killed; each answers -r bytes while it checks the
 * -q byte request (tests/lib/exchange.h). Prints "listening" once bound.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/exchange.h"
#include "lib/opt.h"
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

int serve_traffic(int argc, char **argv)
{
	int fd;

	xt_traffic_args(&o, argc, argv, "xm-serve");
	fd = xt_listen(&o.to, o.to_len, SOCK_STREAM);
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
