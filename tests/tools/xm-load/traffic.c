// SPDX-License-Identifier: MIT
/*
 * xm-load traffic --target ADDR [-s REQ_BYTES] [--answer RESP_BYTES] [-c CONNS]
 *                 [-n CONNECTIONS] [-S SEED] [-b SRC_PORT] [-d SECONDS]
 * runs -n connections (default: one per -c) over -c concurrent threads
 * against xm-serve traffic, each a byte-exact exchange (tests/lib/exchange.h),
 * each write spread over -d seconds; exit 0 iff all were exact. ADDR may be
 * IPv4, IPv6 or ::ffff:a.b.c.d (IPv4-mapped).
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
#include "lib/opt.h"
#include "lib/result.h"
#include "load.h"

static struct xt_traffic_opts o;
static atomic_long failures, ok_conns;

static void *client_conn(void *p)
{
	long rounds = (long)p;
	int fd, one = 1;

	for (long r = 0; r < rounds; r++) {
		fd = socket(o.to.ss_family, SOCK_STREAM, 0);
		if (fd < 0)
			goto fail;
		if (o.src_port) {
			struct sockaddr_storage src;
			socklen_t slen = 0;

			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			xt_sockaddr(&src, &slen, o.to.ss_family == AF_INET ? "0.0.0.0" : "::", o.src_port);
			if (bind(fd, (void *)&src, slen)) {
				perror("client: bind source port");
				close(fd);
				goto fail;
			}
		}
		if (connect(fd, (void *)&o.to, o.to_len)) {
			perror("client: connect");
			close(fd);
			goto fail;
		}
		if (xt_exchange(&o.x, fd, 0, o.req, o.resp, "client")) {
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

static const struct xt_load_mode traffic_mode = {
	.name = "traffic",
	.summary = "byte-exact TCP exchanges with xm-serve traffic: --size bytes up, --answer down\n"
		   "per connection, both at once; exit 0 iff every byte came back exact",
	.accepts = XO(XO_TARGET) | XO(XO_SIZE) | XO(XO_ANSWER) | XO(XO_CONNS) | XO(XO_REQUESTS) |
		   XO(XO_SEED) | XO(XO_BIND_PORT) | XO(XO_DURATION),
};

int load_traffic(int argc, char **argv)
{
	struct xt_load_opts lo = { .size = 1000, .answer = 1000, .conns = 1, .seed = 1 };
	struct xt_result res = { .mode = "traffic" };
	pthread_t *t;
	long total;

	xt_load_opts_or_die(&lo, &traffic_mode, argc, argv);
	if (lo.to.ss_family == AF_UNIX || !lo.conns)
		xt_die(2, "traffic wants an IP:PORT target and --conns >= 1");
	o = (struct xt_traffic_opts){ .to = lo.to, .to_len = lo.to_len, .req = lo.size,
				      .resp = lo.answer, .conns = lo.conns,
				      .src_port = lo.bind_port };
	o.x.seed = lo.seed;
	o.x.spread_ms = lo.duration * 1000;
	total = lo.requests ? lo.requests : lo.conns;
	t = calloc(o.conns, sizeof(*t));
	if (!t)
		return 2;
	for (int i = 0; i < o.conns; i++)
		if (pthread_create(&t[i], NULL, client_conn,
				   (void *)(total / o.conns + (i < total % o.conns))))
			return 2;
	for (int i = 0; i < o.conns; i++)
		pthread_join(t[i], NULL);
	xt_res_counts(&res, total, atomic_load(&ok_conns));
	xt_res_set(&res, XK_BYTES, atomic_load(&o.x.bytes_in) + atomic_load(&o.x.bytes_out));
	xt_res_print(stdout, &res, lo.json);
	free(t);
	return atomic_load(&failures) ? 1 : 0;
}
