// SPDX-License-Identifier: MIT
/*
 * xm-rr: request/response latency and stream throughput over TCP or a Unix
 * domain socket, for benchmarks.
 *
 *   xm-rr server tcp ADDR PORT | unix PATH
 *   xm-rr client tcp ADDR PORT | unix PATH  rr SIZE ITERATIONS
 *   xm-rr client tcp ADDR PORT | unix PATH  stream SECONDS
 *
 * rr: the client sends SIZE bytes, the server echoes SIZE bytes; one line of
 * JSON with p50/p90/p99 round-trip microseconds (after 10% warm-up).
 * stream: the client writes 64 KiB blocks for SECONDS, the server discards;
 * prints the receive rate the server saw, in Gbit/s, as the client's result.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int sockaddr_of(char **argv, struct sockaddr_storage *ss, socklen_t *len, int *nargs)
{
	memset(ss, 0, sizeof(*ss));
	if (!strcmp(argv[0], "unix")) {
		struct sockaddr_un *su = (void *)ss;

		su->sun_family = AF_UNIX;
		snprintf(su->sun_path, sizeof(su->sun_path), "%s", argv[1]);
		*len = sizeof(*su);
		*nargs = 2;
		return 0;
	}
	*nargs = 3;
	if (inet_pton(AF_INET, argv[1], &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons(atoi(argv[2]));
		*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, argv[1], &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons(atoi(argv[2]));
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -1;
}

static int read_full(int fd, char *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t k = recv(fd, buf + off, n - off, 0);

		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue; /* EAGAIN: see xm-traffic.c on tcp_bpf wakeups */
		if (k <= 0)
			return -1;
		off += k;
	}
	return 0;
}

static int write_full(int fd, const char *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t k = send(fd, buf + off, n - off, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		off += k;
	}
	return 0;
}

/*
 * Server protocol: the client first sends an 8-byte header {mode, size};
 * mode 'R' echoes size-byte messages until EOF; mode 'S' counts bytes until
 * EOF and answers with the receive rate as a double (bytes/s).
 */
static void *serve(void *p)
{
	int fd = (int)(long)p;
	uint32_t hdr[2];
	char *buf;

	if (read_full(fd, (char *)hdr, sizeof(hdr)))
		goto out;
	buf = malloc(hdr[1] > 65536 ? hdr[1] : 65536);
	if (hdr[0] == 'R') {
		while (read_full(fd, buf, hdr[1]) == 0 && write_full(fd, buf, hdr[1]) == 0)
			;
	} else {
		double t0 = 0, t1 = 0, rate;
		uint64_t total = 0;
		ssize_t k;

		for (;;) {
			k = recv(fd, buf, 65536, 0);
			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k <= 0)
				break;
			if (!total)
				t0 = now();
			total += k;
			t1 = now();
		}
		rate = t1 > t0 ? total / (t1 - t0) : 0;
		write_full(fd, (char *)&rate, sizeof(rate));
	}
	free(buf);
out:
	close(fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int nargs, fd, one = 1;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 4 || sockaddr_of(argv + 2, &ss, &len, &nargs)) {
		fprintf(stderr, "usage: xm-rr server|client tcp ADDR PORT|unix PATH [rr SIZE N | stream SECS]\n");
		return 2;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (!strcmp(argv[1], "server")) {
		if (ss.ss_family == AF_UNIX)
			unlink(((struct sockaddr_un *)&ss)->sun_path);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (void *)&ss, len) || listen(fd, 128)) {
			perror("bind/listen");
			return 1;
		}
		for (;;) {
			int c = accept(fd, NULL, NULL);
			pthread_t t;

			if (c < 0)
				continue;
			if (ss.ss_family != AF_UNIX)
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			pthread_create(&t, NULL, serve, (void *)(long)c);
			pthread_detach(t);
		}
	}
	argv += 2 + nargs;
	argc -= 2 + nargs;
	if (argc < 2 || connect(fd, (void *)&ss, len)) {
		perror("client");
		return 1;
	}
	if (ss.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!strcmp(argv[0], "rr") && argc >= 3) {
		uint32_t hdr[2] = { 'R', (uint32_t)atoi(argv[1]) };
		long n = atol(argv[2]), warm = n / 10;
		double *lat = calloc(n, sizeof(*lat));
		char *buf = calloc(1, hdr[1]);

		if (write_full(fd, (char *)hdr, sizeof(hdr)))
			return 1;
		for (long i = 0; i < n + warm; i++) {
			double t0 = now();

			if (write_full(fd, buf, hdr[1]) || read_full(fd, buf, hdr[1])) {
				fprintf(stderr, "rr: connection lost\n");
				return 1;
			}
			if (i >= warm)
				lat[i - warm] = (now() - t0) * 1e6;
		}
		qsort(lat, n, sizeof(*lat), cmp_double);
		printf("{\"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f}\n", lat[n / 2],
		       lat[n * 9 / 10], lat[n * 99 / 100]);
		return 0;
	}
	if (!strcmp(argv[0], "stream")) {
		uint32_t hdr[2] = { 'S', 0 };
		double secs = atof(argv[1]), end, rate = 0;
		static char buf[65536];

		if (write_full(fd, (char *)hdr, sizeof(hdr)))
			return 1;
		end = now() + secs;
		while (now() < end)
			if (write_full(fd, buf, sizeof(buf)))
				return 1;
		shutdown(fd, SHUT_WR);
		if (read_full(fd, (char *)&rate, sizeof(rate)))
			return 1;
		printf("{\"gbit_s\": %.3f}\n", rate * 8 / 1e9);
		return 0;
	}
	fprintf(stderr, "client: rr SIZE N | stream SECS\n");
	return 2;
}
