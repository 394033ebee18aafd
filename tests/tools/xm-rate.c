// SPDX-License-Identifier: MIT
/*
 * xm-rate: request rate against an xm-rr server, for benchmarks.
 *
 *   xm-rate ADDR PORT [-c CONNS] [-s SIZE] [-t SECONDS]
 *
 * Opens CONNS TCP connections (default 8), each with one SIZE-byte request
 * (default 1) in flight at a time, answered by the server's SIZE-byte echo;
 * one thread drives them all with epoll. After 10% of the time as warm-up,
 * counts completed requests and prints {"rps": N}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int conns = 8, size = 1, opt, ep;
	double secs = 2, t0, warm, end;
	uint64_t done = 0;
	static char buf[65536];
	int got[1024] = {};

	if (argc < 3 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: xm-rate ADDR PORT [-c CONNS] [-s SIZE] [-t SECONDS]\n");
		return 2;
	}
	sa.sin_port = htons(atoi(argv[2]));
	optind = 3;
	while ((opt = getopt(argc, argv, "c:s:t:")) != -1) {
		switch (opt) {
		case 'c': conns = atoi(optarg); break;
		case 's': size = atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		default: return 2;
		}
	}
	if (conns < 1 || conns > 1024 || size < 1 || size > (int)sizeof(buf))
		return 2;
	ep = epoll_create1(0);
	for (int i = 0; i < conns; i++) {
		uint32_t hdr[2] = { 'R', (uint32_t)size };
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

		if (fd < 0 || connect(fd, (void *)&sa, sizeof(sa))) {
			perror("connect");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (send(fd, hdr, sizeof(hdr), 0) != sizeof(hdr) || send(fd, buf, size, 0) != size) {
			perror("send");
			return 1;
		}
		ev.data.u64 = ((uint64_t)fd << 32) | (uint32_t)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
	t0 = now();
	warm = t0 + secs * 0.1;
	end = t0 + secs;
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 100);
		double t = now();

		if (t >= end)
			break;
		for (int i = 0; i < n; i++) {
			int fd = (int)(evs[i].data.u64 >> 32), idx = (int)(uint32_t)evs[i].data.u64;
			ssize_t k = recv(fd, buf, size - got[idx], MSG_DONTWAIT);

			if (k <= 0) {
				if (k < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				fprintf(stderr, "connection lost\n");
				return 1;
			}
			got[idx] += k;
			if (got[idx] < size)
				continue;
			got[idx] = 0;
			if (t >= warm)
				done++;
			if (send(fd, buf, size, 0) != size) {
				perror("send");
				return 1;
			}
		}
		if (t < warm)
			t0 = t;
	}
	printf("{\"rps\": %.0f}\n", done / (end - t0));
	return 0;
}
