// SPDX-License-Identifier: MIT
/*
 * xm-udp: byte-exact UDP echo for tests.
 *
 *   xm-udp echo ADDR PORT                  echo every datagram back, until killed
 *   xm-udp send ADDR PORT [-n N] [-s MIN-MAX] [-b SPORT] [-S SEED]
 *        send N datagrams of sizes cycling through MIN..MAX, one at a time;
 *        each must come back byte for byte within 1 s (3 tries); exit 0 iff
 *        all did. Prints "ok N". -f FLOWS repeats that from FLOWS sockets
 *        (source ports SPORT, SPORT+1, ...).
 *   xm-udp probe ADDR PORT [-b SPORT] [-t MS] [-i MS]
 *        send a datagram every -i ms (default 5) for -t ms (default 1000),
 *        print how many came back ("replies N sent M"); exit 0.
 *
 * ADDR may be IPv4 or IPv6. -b fixes the source port, so successive runs are one flow (one 5-tuple).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DGRAM 65000

static unsigned char pat(unsigned int seed, unsigned int seq, size_t off)
{
	unsigned long x = off * 2654435761UL + seed * 40503UL + seq * 7919UL + (off >> 7);

	return (unsigned char)(x ^ (x >> 11));
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}


int main(int argc, char **argv)
{
	static unsigned char buf[MAX_DGRAM], in[MAX_DGRAM];
	struct sockaddr_in6 peer6 = { .sin6_family = AF_INET6 }, me6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in peer4 = { .sin_family = AF_INET }, me4 = { .sin_family = AF_INET };
	void *peer = &peer4, *me = &me4;
	socklen_t slen = sizeof(peer4);
	int family = AF_INET;
	int flows = 1, n = 100, smin = 8, smax = 1400, sport = 0, t_ms = 1000, i_ms = 5, opt, fd;
	unsigned int seed = 1;
	const char *mode;

	if (argc < 4) {
		fprintf(stderr, "usage: xm-udp echo|send|probe ADDR PORT [-n N] [-s MIN-MAX] "
				"[-b SPORT] [-S SEED] [-t MS] [-i MS]\n");
		return 2;
	}
	mode = argv[1];
	if (strchr(argv[2], ':')) {
		family = AF_INET6;
		peer = &peer6;
		me = &me6;
		slen = sizeof(peer6);
	}
	if (inet_pton(family, argv[2], family == AF_INET ? (void *)&peer4.sin_addr
							   : (void *)&peer6.sin6_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[2]);
		return 2;
	}
	peer4.sin_port = peer6.sin6_port = htons(atoi(argv[3]));
	optind = 4;
	while ((opt = getopt(argc, argv, "n:s:b:S:t:i:f:")) != -1) {
		switch (opt) {
		case 'f': flows = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 's':
			if (sscanf(optarg, "%d-%d", &smin, &smax) != 2)
				smin = smax = atoi(optarg);
			break;
		case 'b': sport = atoi(optarg); break;
		case 'S': seed = strtoul(optarg, NULL, 0); break;
		case 't': t_ms = atoi(optarg); break;
		case 'i': i_ms = atoi(optarg); break;
		default: return 2;
		}
	}
	if (!strcmp(argv[1], "send") && (smin < 8 || smax > MAX_DGRAM || smin > smax)) {
		fprintf(stderr, "sizes must be within 8..%d\n", MAX_DGRAM);
		return 2;
	}
	fd = socket(family, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));

	if (!strcmp(mode, "echo")) {
		if (bind(fd, peer, slen)) {
			perror("bind");
			return 1;
		}
		for (;;) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t r = recvfrom(fd, in, sizeof(in), 0, (void *)&from, &fl);

			if (r >= 0)
				sendto(fd, in, r, 0, (void *)&from, fl);
		}
	}

next_flow:
	me4.sin_port = me6.sin6_port = htons(sport);
	if (sport && bind(fd, me, slen)) {
		perror("bind source port");
		return 1;
	}
	if (connect(fd, peer, slen)) {
		perror("connect");
		return 1;
	}

	if (!strcmp(mode, "probe")) {
		double start = now_ms(), next = start;
		unsigned int seq = 0, replies = 0;

		while (now_ms() - start < t_ms) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			double wait = next - now_ms();

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

	if (strcmp(mode, "send")) {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	for (unsigned int seq = 0; seq < (unsigned int)n; seq++) {
		size_t len = smin + (size_t)seq * 997 % (smax - smin + 1);
		int ok = 0;

		memcpy(buf, &seq, sizeof(seq));
		memcpy(buf + 4, &seed, sizeof(seed));
		for (size_t i = 8; i < len; i++)
			buf[i] = pat(seed, seq, i);
		for (int try = 0; try < 3 && !ok; try++) {
			double deadline = now_ms() + 1000;

			if (send(fd, buf, len, 0) < 0) {
				perror("send");
				return 1;
			}
			while (!ok && now_ms() < deadline) {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				ssize_t r;

				if (poll(&p, 1, (int)(deadline - now_ms()) + 1) <= 0)
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
