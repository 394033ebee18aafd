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

struct opts {
	size_t req, resp;
	int conns, rounds, src_port;
};

static struct opts o = { .req = 1000, .resp = 1000, .conns = 1, .rounds = 1 };
static struct xt_xchg x = { .seed = 1 };
static struct sockaddr_storage ss;
static socklen_t ss_len;
static atomic_long failures, ok_conns;

/* ADDR PORT then -q -r -c -n -S -b -d, as both ends take them. */
static void parse(int argc, char **argv, const char *tool)
{
	int opt;

	if (argc < 3 || xt_sockaddr(&ss, &ss_len, argv[1], xt_opt_int("PORT", argv[2], 0, 65535)))
		xt_die(2, "usage: %s traffic ADDR PORT [-q N] [-r N] [-c N] [-n N] [-S SEED] "
		       "[-b SPORT] [-d MS]", tool);
	optind = 3;
	while ((opt = getopt(argc, argv, "q:r:c:n:S:b:d:")) != -1) {
		switch (opt) {
		case 'q': o.req = xt_opt_size("-q", optarg, 1ul << 40); break;
		case 'r': o.resp = xt_opt_size("-r", optarg, 1ul << 40); break;
		case 'c': o.conns = xt_opt_int("-c", optarg, 1, 100000); break;
		case 'n': o.rounds = xt_opt_int("-n", optarg, 1, 100000000); break;
		case 'S': x.seed = xt_opt_int("-S", optarg, 0, 0xffffffffl); break;
		case 'b': o.src_port = xt_opt_int("-b", optarg, 0, 65535); break;
		case 'd': x.spread_ms = xt_opt_int("-d", optarg, 0, 3600000); break;
		default: exit(2);
		}
	}
}

static void *server_conn(void *p)
{
	int fd = (int)(long)p;

	if (xt_exchange(&x, fd, 1, o.resp, o.req, "server"))
		atomic_fetch_add(&failures, 1);
	else
		atomic_fetch_add(&ok_conns, 1);
	close(fd);
	return NULL;
}

int serve_traffic(int argc, char **argv)
{
	int fd, one = 1;

	parse(argc, argv, "xm-serve");
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (void *)&ss, ss_len) || listen(fd, 1024)) {
		perror("server: bind/listen");
		return 2;
	}
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
