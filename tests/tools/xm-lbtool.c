// SPDX-License-Identifier: MIT
/*
 * xm-lbtool: backends and clients for the LB tests and benchmark.
 *
 * Servers (run until killed; each names itself with -l LABEL):
 *   server ADDR PORT -l L                   TCP: send "L\n" on accept, close
 *   http ADDR PORT -l L [-d MS] [-e RATE]   TCP keep-alive request/response: every
 *                                           request (a line ending "\r\n\r\n") gets, after
 *                                           MS ms, "HTTP/1.1 200 OK" (or 500 for every
 *                                           1/RATE-th response) with header X-Backend: L;
 *                                           -R: reset the connection instead of answering
 *   udp ADDR PORT -l L                      UDP: answer each datagram with "L"
 * Clients (print one JSON line, exit 0 unless the tool itself failed):
 *   connect VIP PORT -n N [-T MS]           N connects (-T: give up after MS ms); counts
 *                                           per label, errors by
 *                                           errno name, getpeername() != VIP count
 *   get VIP PORT -n N [-c CONNS] [-k PER_CONN]  N HTTP requests over CONNS parallel
 *                                           keep-alive connections of PER_CONN requests;
 *                                           per label: count, 5xx, latency p50/p99 (us)
 *                                           from send() to the arrival of the first byte
 *                                           back (receive timestamp), and app_p50/p99
 *                                           until read() returned
 *   udp-client VIP PORT -n N [-C]           N unconnected datagrams (sendto VIP), or
 *                                           with -C connect()+send() each; per label
 *                                           counts and replies (recvfrom) not from VIP
 *   hold VIP PORT -w FILE                   one connection: a request, then wait for
 *                                           FILE to exist, then another request on the
 *                                           same connection; prints both labels
 *   rate VIP PORT -t SECONDS [-c THREADS]   new connections per second: connect, read
 *                                           the label, close, as fast as possible
 *   udpconnect VIP PORT -n N                cost of connect() itself: N connect()s of
 *                                           one UDP socket (no packet is sent), ns each
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "sockaddr.h"

static const char *label = "?";
static int delay_ms, n_total = 1000, n_conns = 1, per_conn = 0;
static double err_rate, seconds = 1;
static const char *wait_file;
static int udp_connected, reset_requests, connect_timeout_ms;

static struct sockaddr_storage target;
static socklen_t target_len;

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return !memcmp(&((struct sockaddr_in *)a)->sin_addr, &((struct sockaddr_in *)b)->sin_addr, 4) &&
		       ((struct sockaddr_in *)a)->sin_port == ((struct sockaddr_in *)b)->sin_port;
	return !memcmp(&((struct sockaddr_in6 *)a)->sin6_addr, &((struct sockaddr_in6 *)b)->sin6_addr, 16) &&
	       ((struct sockaddr_in6 *)a)->sin6_port == ((struct sockaddr_in6 *)b)->sin6_port;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int listen_on(int type)
{
	int one = 1, fd = socket(target.ss_family, type, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&target, target_len) ||
	    (type == SOCK_STREAM && listen(fd, 1024))) {
		perror("bind/listen");
		exit(2);
	}
	return fd;
}

/* ---- servers ---- */

static void serve_label(void)
{
	int lfd = listen_on(SOCK_STREAM);
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%s\n", label);

	for (;;) {
		int c = accept(lfd, NULL, NULL);

		if (c < 0)
			continue;
		if (write(c, msg, n) < 0)
			perror("write");
		close(c);
	}
}

static atomic_long responses;

static void *http_conn(void *arg)
{
	int c = (int)(long)arg;
	char buf[4096], resp[256];
	size_t have = 0;

	for (;;) {
		ssize_t n = read(c, buf + have, sizeof(buf) - 1 - have);
		char *end;

		if (n <= 0)
			break;
		have += n;
		buf[have] = '\0';
		if (reset_requests && strstr(buf, "\r\n\r\n")) {
			/* -R: answer a request with a reset (linger 0 then close) */
			struct linger lg = { 1, 0 };

			setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			goto out;
		}
		while ((end = strstr(buf, "\r\n\r\n"))) {
			/* every (1/RATE)-th response of the server fails: exact, not sampled */
			long nth = atomic_fetch_add(&responses, 1) + 1;
			int bad = err_rate > 0 && nth % lround(1 / err_rate) == 0;
			int len = snprintf(resp, sizeof(resp),
					   "HTTP/1.1 %s\r\nX-Backend: %s\r\nContent-Length: 0\r\n\r\n",
					   bad ? "500 Internal Server Error" : "200 OK", label);
			size_t used = end + 4 - buf;

			if (delay_ms)
				usleep(delay_ms * 1000);
			if (write(c, resp, len) != len)
				goto out;
			memmove(buf, buf + used, have - used);
			have -= used;
			buf[have] = '\0';
		}
		if (have == sizeof(buf) - 1)
			break;
	}
out:
	close(c);
	return NULL;
}

static void serve_http(void)
{
	int lfd = listen_on(SOCK_STREAM);

	for (;;) {
		int c = accept(lfd, NULL, NULL);
		pthread_t t;

		if (c < 0)
			continue;
		if (pthread_create(&t, NULL, http_conn, (void *)(long)c) == 0)
			pthread_detach(t);
		else
			close(c);
	}
}

static void serve_udp(void)
{
	int fd = listen_on(SOCK_DGRAM);

	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		char buf[512];
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

		if (n >= 0)
			sendto(fd, label, strlen(label), 0, (struct sockaddr *)&from, fl);
	}
}

/* ---- tallies ---- */

#define MAX_LABELS 64
struct tally {
	char name[32];
	long n, bad;
	double *lat, *app;
	long nlat, caplat;
};
static struct tally tallies[MAX_LABELS];
static int n_tallies;
static pthread_mutex_t tally_lock = PTHREAD_MUTEX_INITIALIZER;

static struct tally *tally_of(const char *name)
{
	for (int i = 0; i < n_tallies; i++)
		if (!strcmp(tallies[i].name, name))
			return &tallies[i];
	if (n_tallies == MAX_LABELS)
		return &tallies[MAX_LABELS - 1];
	snprintf(tallies[n_tallies].name, sizeof(tallies[0].name), "%s", name);
	return &tallies[n_tallies++];
}

static void tally_lat(struct tally *t, double us, double app_us)
{
	if (t->nlat == t->caplat) {
		t->caplat = t->caplat * 2 + 1024;
		t->lat = realloc(t->lat, t->caplat * sizeof(double));
		t->app = realloc(t->app, t->caplat * sizeof(double));
	}
	t->app[t->nlat] = app_us;
	t->lat[t->nlat++] = us;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double quantile(double *v, long n, double q)
{
	long r;

	if (!n)
		return -1;
	qsort(v, n, sizeof(double), cmp_d);
	r = (long)ceil(q * n);
	if (r < 1)
		r = 1;
	return v[r - 1];
}

static long errs[256];

static void print_tallies(const char *extra)
{
	printf("{\"labels\":{");
	for (int i = 0; i < n_tallies; i++) {
		struct tally *t = &tallies[i];

		printf("%s\"%s\":{\"n\":%ld,\"bad\":%ld", i ? "," : "", t->name, t->n, t->bad);
		if (t->nlat)
			printf(",\"p50_us\":%.1f,\"p99_us\":%.1f,\"app_p50_us\":%.1f,\"app_p99_us\":%.1f",
			       quantile(t->lat, t->nlat, 0.5), quantile(t->lat, t->nlat, 0.99),
			       quantile(t->app, t->nlat, 0.5), quantile(t->app, t->nlat, 0.99));
		printf("}");
	}
	printf("},\"errors\":{");
	for (int e = 0, first = 1; e < 256; e++) {
		if (errs[e]) {
			printf("%s\"%s\":%ld", first ? "" : ",", strerrorname_np(e) ?: "?", errs[e]);
			first = 0;
		}
	}
	printf("}%s}\n", extra ? extra : "");
}

static int tcp_connect(void)
{
	int fd = socket(target.ss_family, SOCK_STREAM, 0);

	if (fd < 0)
		return -errno;
	if (connect_timeout_ms) {
		struct timeval tv = { connect_timeout_ms / 1000, connect_timeout_ms % 1000 * 1000 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&target, target_len)) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int read_line(int fd, char *buf, size_t len)
{
	size_t have = 0;

	while (have < len - 1) {
		ssize_t n = read(fd, buf + have, len - 1 - have);

		if (n <= 0)
			break;
		have += n;
		if (memchr(buf, '\n', have))
			break;
	}
	buf[have] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return have ? 0 : -1;
}

/* ---- clients ---- */

static void client_connect(void)
{
	long peer_mismatch = 0;
	char extra[64], buf[64];

	for (int i = 0; i < n_total; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = tcp_connect();

		if (fd < 0) {
			errs[-fd & 255]++;
			continue;
		}
		if (getpeername(fd, (struct sockaddr *)&peer, &pl) || !same_addr(&peer, &target))
			peer_mismatch++;
		if (read_line(fd, buf, sizeof(buf)))
			snprintf(buf, sizeof(buf), "(none)");
		tally_of(buf)->n++;
		close(fd);
	}
	snprintf(extra, sizeof(extra), ",\"peer_mismatch\":%ld", peer_mismatch);
	print_tallies(extra);
}

static double realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*
 * One request; returns the label and fills status, or -1. Two latencies:
 * *lat_us from before send() to the arrival of the first response byte at
 * this host (the kernel's receive timestamp, SO_TIMESTAMPNS), which leaves
 * out how long the scheduler took to wake us; *app_us until read() returned.
 * Without a timestamp (redirected sockets carry none) both are the latter.
 */
static int http_request(int fd, char *lab, size_t llen, int *status, double *lat_us, double *app_us)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: svc\r\n\r\n";
	char buf[1024], *p;
	size_t have = 0;
	double t0 = realtime_us();
	int first = 1;

	if (write(fd, req, sizeof(req) - 1) != sizeof(req) - 1)
		return -1;
	while (have < sizeof(buf) - 1) {
		char ctl[256];
		struct iovec iov = { buf + have, sizeof(buf) - 1 - have };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				     .msg_controllen = sizeof(ctl) };
		ssize_t n = recvmsg(fd, &mh, 0);

		if (n <= 0)
			return -1;
		if (first) {
			*app_us = realtime_us() - t0;
			*lat_us = *app_us;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
					struct timespec ts;

					memcpy(&ts, CMSG_DATA(c), sizeof(ts));
					*lat_us = ts.tv_sec * 1e6 + ts.tv_nsec / 1e3 - t0;
				}
			}
			first = 0;
		}
		have += n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	if (sscanf(buf, "HTTP/1.%*d %d", status) != 1)
		return -1;
	p = strstr(buf, "X-Backend: ");
	if (!p)
		return -1;
	p += 11;
	snprintf(lab, llen, "%.*s", (int)strcspn(p, "\r"), p);
	return 0;
}

static void *get_worker(void *arg)
{
	long todo = (long)arg;

	while (todo > 0) {
		int fd = tcp_connect(), k = per_conn > 0 ? per_conn : (int)todo;

		int one = 1;

		if (fd < 0) {
			pthread_mutex_lock(&tally_lock);
			errs[-fd & 255]++;
			pthread_mutex_unlock(&tally_lock);
			todo--;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
		for (; k > 0 && todo > 0; k--, todo--) {
			char lab[32];
			int status = 0;
			double lat = 0, app = 0;

			if (http_request(fd, lab, sizeof(lab), &status, &lat, &app)) {
				pthread_mutex_lock(&tally_lock);
				errs[EPIPE]++;
				pthread_mutex_unlock(&tally_lock);
				todo--;
				break;
			}
			pthread_mutex_lock(&tally_lock);
			struct tally *t = tally_of(lab);

			t->n++;
			t->bad += status >= 500;
			tally_lat(t, lat, app);
			pthread_mutex_unlock(&tally_lock);
		}
		close(fd);
	}
	return NULL;
}

static void client_get(void)
{
	pthread_t th[256];
	int nc = n_conns > 256 ? 256 : n_conns;

	for (int i = 0; i < nc; i++)
		pthread_create(&th[i], NULL, get_worker,
			       (void *)(long)(n_total / nc + (i < n_total % nc)));
	for (int i = 0; i < nc; i++)
		pthread_join(th[i], NULL);
	print_tallies(NULL);
}

static void client_udp(void)
{
	int fd = socket(target.ss_family, SOCK_DGRAM, 0);
	struct timeval tv = { .tv_sec = 1 };
	long not_vip = 0, lost = 0;
	char extra[96];

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < n_total; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		char buf[64];
		ssize_t n;

		/* -C: a connected socket (connect() once per datagram: a new backend each time) */
		if (udp_connected && connect(fd, (struct sockaddr *)&target, target_len)) {
			errs[errno & 255]++;
			continue;
		}
		if (udp_connected ? send(fd, "q", 1, 0) < 0
				  : sendto(fd, "q", 1, 0, (struct sockaddr *)&target, target_len) < 0) {
			errs[errno & 255]++;
			continue;
		}
		n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			lost++;
			continue;
		}
		buf[n] = '\0';
		if (!same_addr(&from, &target))
			not_vip++;
		tally_of(buf)->n++;
	}
	snprintf(extra, sizeof(extra), ",\"reply_not_from_vip\":%ld,\"lost\":%ld", not_vip, lost);
	print_tallies(extra);
}

static void client_hold(void)
{
	char l1[32] = "(none)", l2[32] = "(none)";
	int fd = tcp_connect(), st = 0;
	double lat;
	struct stat sb;

	if (fd < 0 || http_request(fd, l1, sizeof(l1), &st, &lat, &lat)) {
		printf("{\"first\":\"%s\",\"second\":\"(failed)\"}\n", fd < 0 ? "(connect failed)" : l1);
		exit(1);
	}
	fprintf(stderr, "hold: first request answered by %s\n", l1);
	while (stat(wait_file, &sb))
		usleep(10000);
	if (http_request(fd, l2, sizeof(l2), &st, &lat, &lat))
		snprintf(l2, sizeof(l2), "(failed)");
	printf("{\"first\":\"%s\",\"second\":\"%s\"}\n", l1, l2);
}

struct rate_res {
	long n, fail;
};

static void *rate_worker(void *arg)
{
	struct rate_res *r = arg;
	double end = now_us() + seconds * 1e6;
	char buf[64];

	while (now_us() < end) {
		int fd = tcp_connect();

		if (fd < 0) {
			r->fail++;
			continue;
		}
		if (read_line(fd, buf, sizeof(buf)))
			r->fail++;
		/*
		 * Abort instead of a FIN: the server closed first, so with a
		 * plain close its TIME_WAIT sockets would meet our next SYNs
		 * from reused ports and stall them; with a reset neither side
		 * keeps TIME_WAIT and every mode measures connections only.
		 */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
		close(fd);
		r->n++;
	}
	return NULL;
}

/* -c THREADS connect loops in parallel (default 1) */
static void client_rate(void)
{
	struct rate_res res[64] = {};
	pthread_t th[64];
	int nt = n_conns < 1 ? 1 : n_conns > 64 ? 64 : n_conns;
	double t0 = now_us();
	long n = 0, fail = 0;

	for (int i = 0; i < nt; i++)
		pthread_create(&th[i], NULL, rate_worker, &res[i]);
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		n += res[i].n;
		fail += res[i].fail;
	}
	printf("{\"conns\":%ld,\"failed\":%ld,\"per_second\":%.1f}\n", n, fail,
	       n / ((now_us() - t0) / 1e6));
}

static void client_udpconnect(void)
{
	int fd = socket(target.ss_family, SOCK_DGRAM, 0);
	double t0;
	long fail = 0;

	t0 = now_us();
	for (int i = 0; i < n_total; i++)
		if (connect(fd, (struct sockaddr *)&target, target_len))
			fail++;
	printf("{\"connects\":%d,\"failed\":%ld,\"ns_per_connect\":%.1f}\n", n_total, fail,
	       (now_us() - t0) * 1e3 / n_total);
	close(fd);
}

int main(int argc, char **argv)
{
	const char *mode;
	int opt;

	if (argc < 4) {
		fprintf(stderr, "usage: xm-lbtool MODE ADDR PORT [options]; see the source header\n");
		return 2;
	}
	mode = argv[1];
	if (xm_tool_sockaddr(&target, &target_len, argv[2], atoi(argv[3]))) {
		fprintf(stderr, "bad address %s\n", argv[2]);
		return 2;
	}
	optind = 4;
	while ((opt = getopt(argc, argv, "l:d:e:n:c:k:w:t:CRT:")) != -1) {
		switch (opt) {
		case 'l': label = optarg; break;
		case 'd': delay_ms = atoi(optarg); break;
		case 'e': err_rate = atof(optarg); break;
		case 'n': n_total = atoi(optarg); break;
		case 'c': n_conns = atoi(optarg); break;
		case 'k': per_conn = atoi(optarg); break;
		case 'w': wait_file = optarg; break;
		case 't': seconds = atof(optarg); break;
		case 'C': udp_connected = 1; break;
		case 'R': reset_requests = 1; break;
		case 'T': connect_timeout_ms = atoi(optarg); break;
		default: return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "server"))
		serve_label();
	else if (!strcmp(mode, "http"))
		serve_http();
	else if (!strcmp(mode, "udp"))
		serve_udp();
	else if (!strcmp(mode, "connect"))
		client_connect();
	else if (!strcmp(mode, "get"))
		client_get();
	else if (!strcmp(mode, "udp-client"))
		client_udp();
	else if (!strcmp(mode, "hold") && wait_file)
		client_hold();
	else if (!strcmp(mode, "rate"))
		client_rate();
	else if (!strcmp(mode, "udpconnect"))
		client_udpconnect();
	else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	return 0;
}
