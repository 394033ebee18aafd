// SPDX-License-Identifier: MIT
/*
 * xm-load udp-send | udp-probe: byte-exact UDP checks against xm-serve udp-echo.
 *
 *   xm-load udp-send ADDR PORT [-n N] [-s MIN-MAX] [-b SPORT] [-S SEED] [-f FLOWS]
 *        send N datagrams of sizes cycling through MIN..MAX, one at a time;
 *        each must come back byte for byte within 1 s (3 tries); exit 0 iff
 *        all did. Prints "ok N". -f FLOWS repeats that from FLOWS sockets
 *        (source ports SPORT, SPORT+1, ...).
 *   xm-load udp-probe ADDR PORT [-b SPORT] [-t MS] [-i MS]
 *        send a datagram every -i ms (default 5) for -t ms (default 1000),
 *        print how many came back ("replies N sent M"); exit 0.
 *
 * ADDR may be IPv4 or IPv6. -b fixes the source port, so successive runs are one flow (one 5-tuple).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/opt.h"
#include "load.h"

#define MAX_DGRAM 65000

static unsigned char pat(unsigned int seed, unsigned int seq, size_t off)
{
	unsigned long x = off * 2654435761UL + seed * 40503UL + seq * 7919UL + (off >> 7);

	return (unsigned char)(x ^ (x >> 11));
}

int load_udp(int argc, char **argv)
{
	static unsigned char buf[MAX_DGRAM], in[MAX_DGRAM];
	struct sockaddr_storage peer, me;
	socklen_t slen, mlen;
	int family;
	int flows = 1, n = 100, smin = 8, smax = 1400, sport = 0, t_ms = 1000, i_ms = 5, opt, fd;
	unsigned int seed = 1;
	const char *mode;

	mode = argv[0];
	if (argc < 3 || xt_sockaddr(&peer, &slen, argv[1], xt_opt_int("PORT", argv[2], 0, 65535)))
		xt_die(2, "usage: xm-load %s ADDR PORT [-n N] [-s MIN-MAX] [-f FLOWS] [-b SPORT] "
		       "[-S SEED] [-t MS] [-i MS]", mode);
	family = peer.ss_family;
	optind = 3;
	while ((opt = getopt(argc, argv, "n:s:b:S:t:i:f:")) != -1) {
		switch (opt) {
		case 'f': flows = xt_opt_int("-f", optarg, 1, 65535); break;
		case 'n': n = xt_opt_int("-n", optarg, 1, 100000000); break;
		case 's':
			if (sscanf(optarg, "%d-%d", &smin, &smax) != 2)
				smin = smax = xt_opt_int("-s", optarg, 8, MAX_DGRAM);
			break;
		case 'b': sport = xt_opt_int("-b", optarg, 0, 65535); break;
		case 'S': seed = xt_opt_int("-S", optarg, 0, 0xffffffffl); break;
		case 't': t_ms = xt_opt_int("-t", optarg, 0, 86400000); break;
		case 'i': i_ms = xt_opt_int("-i", optarg, 1, 86400000); break;
		default: return 2;
		}
	}
	if (!strcmp(mode, "udp-send") && (smin < 8 || smax > MAX_DGRAM || smin > smax)) {
		fprintf(stderr, "sizes must be within 8..%d\n", MAX_DGRAM);
		return 2;
	}
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
		printf("replies %u sent %u\n", replies, seq);
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
	printf("ok %d\n", n);
	return 0;
}
