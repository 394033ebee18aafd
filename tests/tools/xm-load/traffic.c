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

static struct xt_traffic_opts o;
static atomic_long failures, ok_conns;

static void *client_conn(void *p)
{
	int fd, one = 1;

	(void)p;
	for (int r = 0; r < o.rounds; r++) {
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

int load_traffic(int argc, char **argv)
{
	pthread_t *t;

	xt_traffic_args(&o, argc, argv, "xm-load");
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
	       atomic_load(&ok_conns), atomic_load(&failures), atomic_load(&o.x.bytes_out),
	       atomic_load(&o.x.bytes_in), atomic_load(&o.x.spurious_eagain));
	free(t);
	return atomic_load(&failures) ? 1 : 0;
}
