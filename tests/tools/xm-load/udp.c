// SPDX-License-Identifier: MIT
/*
 * xm-load udp-send | udp-probe: byte-exact UDP checks against xm-serve udp-echo.
 *
 *   xm-load udp-send --target ADDR [-n N] [-s MIN-MAX] [-b SPORT] [-S SEED] [--flows F]
 *        send N datagrams of sizes cycling through MIN..MAX, one at a time;
 *        each must come back byte for byte within 1 s (3 tries); exit 0 iff
 *        all did. --flows F repeats that from F sockets (source ports SPORT,
 *        SPORT+1, ...).
 *   xm-load udp-probe --target ADDR [-b SPORT] [-d SECONDS] [--interval SECONDS]
 *        send a datagram every --interval (default 0.005 s) for -d (default
 *        1 s); ok= how many came back; exit 0.
 *
 * ADDR may be IPv4 or IPv6. -b fixes the source port, so successive runs are one flow (one 5-tuple).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/loadopt.h"
#include "lib/opt.h"
#include "lib/result.h"
#include "load.h"

#define MAX_DGRAM 65000

static unsigned char pat(unsigned int seed, unsigned int seq, size_t off)
{
	unsigned long x = off * 2654435761UL + seed * 40503UL + seq * 7919UL + (off >> 7);

	return (unsigned char)(x ^ (x >> 11));
}

static const struct xt_load_mode udp_modes[] = {
	{ .name = "udp-send",
	  .summary = "N datagrams of sizes cycling through --size MIN-MAX, each echoed byte for byte\n"
		     "by xm-serve udp-echo within 1 s (3 tries); exit 0 iff all were",
	  .accepts = XO(XO_TARGET) | XO(XO_REQUESTS) | XO(XO_SIZE) | XO(XO_BIND_PORT) |
		     XO(XO_SEED) | XO(XO_FLOWS),
	  .size_range = true },
	{ .name = "udp-probe",
	  .summary = "a datagram every --interval for --duration; ok= the replies",
	  .accepts = XO(XO_TARGET) | XO(XO_BIND_PORT) | XO(XO_DURATION) | XO(XO_INTERVAL) },
};

int load_udp(int argc, char **argv)
{
	static unsigned char buf[MAX_DGRAM], in[MAX_DGRAM];
	const struct xt_load_mode *m = &udp_modes[strcmp(argv[0], "udp-send") != 0];
	struct xt_load_opts lo = { .requests = 100, .size = 8, .size_max = 1400, .flows = 1,
				   .seed = 1, .duration = 1, .interval = 0.005 };
	struct xt_result res = { .mode = m->name };
	struct sockaddr_storage peer, me;
	socklen_t slen, mlen;
	int family, flows, n, smin, smax, sport, fd;
	unsigned int seed;
	double t_ms, i_ms;
	const char *mode = m->name;

	xt_load_opts_or_die(&lo, m, argc, argv);
	peer = lo.to;
	slen = lo.to_len;
	family = peer.ss_family;
	flows = lo.flows;
	n = lo.requests;
	smin = lo.size;
	smax = lo.size_max;
	sport = lo.bind_port;
	seed = lo.seed;
	t_ms = lo.duration * 1000;
	i_ms = lo.interval * 1000;
	if (family == AF_UNIX)
		xt_die(2, "%s wants an IP:PORT target", mode);
	if (!strcmp(mode, "udp-send") && (smin < 8 || smax > MAX_DGRAM || smin > smax)) {
		fprintf(stderr, "sizes must be within 8..%d\n", MAX_DGRAM);
		return 2;
	}
	if (i_ms <= 0)
		i_ms = 0.001;
	fd = socket(family, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));

next_flow:
	xt_sockaddr(&me, &mlen, family == AF_INET ? "0.0.0.0" : "::", sport);
	if (sport && bind(fd, (void *)&me, mlen)) {
		perror("bind source port");
		return 1;
	}
	if (connect(fd, (void *)&peer, slen)) {
		perror("connect");
		return 1;
	}

	if (!strcmp(mode, "udp-probe")) {
		double start = xt_now() * 1e3, next = start;
		unsigned int seq = 0, replies = 0;

		while (xt_now() * 1e3 - start < t_ms) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			double wait = next - xt_now() * 1e3;

			if (wait <= 0) {
				memcpy(buf, &seq, sizeof(seq));
				send(fd, buf, 64, 0);
				seq++;
				next += i_ms;
				continue;
			}
			if (poll(&p, 1, (int)wait + 1) > 0 && recv(fd, in, sizeof(in), MSG_DONTWAIT) > 0)
				replies++;
		}
		/* Stragglers still in flight count too. */
		for (struct pollfd p = { .fd = fd, .events = POLLIN }; poll(&p, 1, 100) > 0;)
			if (recv(fd, in, sizeof(in), MSG_DONTWAIT) > 0)
				replies++;
		xt_res_counts(&res, seq, replies);
		xt_res_print(stdout, &res, lo.json);
		return 0;
	}

	for (unsigned int seq = 0; seq < (unsigned int)n; seq++) {
		size_t len = smin + (size_t)seq * 997 % (smax - smin + 1);
		int ok = 0;

		memcpy(buf, &seq, sizeof(seq));
		memcpy(buf + 4, &seed, sizeof(seed));
		for (size_t i = 8; i < len; i++)
			buf[i] = pat(seed, seq, i);
		for (int try = 0; try < 3 && !ok; try++) {
			double deadline = xt_now() * 1e3 + 1000;

			if (send(fd, buf, len, 0) < 0) {
				perror("send");
				return 1;
			}
			while (!ok && xt_now() * 1e3 < deadline) {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				ssize_t r;

				if (poll(&p, 1, (int)(deadline - xt_now() * 1e3) + 1) <= 0)
					continue;
				r = recv(fd, in, sizeof(in), MSG_DONTWAIT);
				if (r < 0)
					continue;
				if (r >= 4 && memcmp(in, &seq, 4))
					continue; /* an earlier try's late echo */
				if ((size_t)r != len || memcmp(in, buf, len)) {
					fprintf(stderr, "datagram %u: echo differs (%zd bytes, sent %zu)\n",
						seq, r, len);
					return 1;
				}
				ok = 1;
			}
		}
		if (!ok) {
			fprintf(stderr, "datagram %u (%zu bytes): no echo after 3 tries\n", seq, len);
			return 1;
		}
	}
	if (--flows > 0) {
		/* The next flow: a new socket from the next source port. */
		close(fd);
		fd = socket(family, SOCK_DGRAM, 0);
		if (fd < 0) {
			perror("socket");
			return 1;
		}
		if (sport)
			sport++;
		goto next_flow;
	}
	xt_res_counts(&res, (double)n * lo.flows, (double)n * lo.flows);
	xt_res_print(stdout, &res, lo.json);
	return 0;
}
