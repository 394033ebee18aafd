// SPDX-License-Identifier: MIT
/*
 * xm-load traffic ADDR PORT [-q REQ_BYTES] [-r RESP_BYTES] [-c CONNS] [-n ROUNDS]
 *                 [-S SEED] [-b SRC_PORT] [-d MS]
 * runs -c concurrent connections of -n rounds each against xm-serve traffic,
 * each a byte-exact exchange (tests/lib/exchange.h); exit 0 iff all were
 * exact. ADDR may be IPv4, IPv6 or ::ffff:a.b.c.d (IPv4-mapped).
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
#include "load.h"

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

static void *client_conn(void *p)
{
	int fd, one = 1;

	(void)p;
	for (int r = 0; r < o.rounds; r++) {
		fd = socket(ss.ss_family, SOCK_STREAM, 0);
		if (fd < 0)
			goto fail;
		if (o.src_port) {
			struct sockaddr_storage src;
			socklen_t slen = 0;

			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			xt_sockaddr(&src, &slen, ss.ss_family == AF_INET ? "0.0.0.0" : "::", o.src_port);
			if (bind(fd, (void *)&src, slen)) {
				perror("client: bind source port");
				close(fd);
				goto fail;
			}
		}
		if (connect(fd, (void *)&ss, ss_len)) {
			perror("client: connect");
			close(fd);
			goto fail;
		}
		if (xt_exchange(&x, fd, 0, o.req, o.resp, "client")) {
			close(fd);
			goto fail;
		}
		close(fd);
		atomic_fetch_add(&ok_conns, 1);
		continue;
fail:
		atomic_fetch_add(&failures, 1);
	}
	return NULL;
}

int load_traffic(int argc, char **argv)
{
	pthread_t *t;

	parse(argc, argv, "xm-load");
	t = calloc(o.conns, sizeof(*t));
	if (!t)
		return 2;
	for (int i = 0; i < o.conns; i++)
		if (pthread_create(&t[i], NULL, client_conn, NULL))
			return 2;
	for (int i = 0; i < o.conns; i++)
		pthread_join(t[i], NULL);
	printf("{\"ok\": %ld, \"failed\": %ld, \"bytes_sent\": %ld, \"bytes_received\": %ld, "
	       "\"spurious_eagain\": %ld}\n",
	       atomic_load(&ok_conns), atomic_load(&failures), atomic_load(&x.bytes_out),
	       atomic_load(&x.bytes_in), atomic_load(&x.spurious_eagain));
	free(t);
	return atomic_load(&failures) ? 1 : 0;
}
