// SPDX-License-Identifier: MIT
/*
 * xm-load connect | get | udp | hold | conn-rate | udpconnect: clients for
 * the LB tests and benchmarks, against xm-serve label / http / udp backends.
 * Each prints one JSON line and exits 0 unless the tool itself failed.
 *   connect VIP PORT -n N [-T MS]           N connects (-T: give up after MS ms); counts
 *                                           per label, errors by errno name,
 *                                           getpeername() != VIP count
 *   get VIP PORT -n N [-c CONNS] [-k PER_CONN]  N HTTP requests over CONNS parallel
 *                                           keep-alive connections of PER_CONN requests;
 *                                           per label: count, 5xx, latency p50/p99 (us)
 *                                           from send() to the arrival of the first byte
 *                                           back (receive timestamp), and app_p50/p99
 *                                           until read() returned
 *   udp VIP PORT -n N [-C]                  N unconnected datagrams (sendto VIP), or
 *                                           with -C connect()+send() each; per label
 *                                           counts and replies (recvfrom) not from VIP
 *   hold VIP PORT -w FILE                   one connection: a request, then wait for
 *                                           FILE to exist, then another request on the
 *                                           same connection; prints both labels
 *   conn-rate VIP PORT -t SECONDS [-c THREADS]  new connections per second: connect,
 *                                           read the label, close, as fast as possible
 *   udpconnect VIP PORT -n N                cost of connect() itself: N connect()s of
 *                                           one UDP socket (no packet is sent), ns each
 * Percentiles: tests/lib/pctl.h (nearest rank).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/http1.h"
#include "lib/opt.h"
#include "lib/pctl.h"
#include "load.h"

static int n_total = 1000, n_conns = 1, per_conn = 0;
static double seconds = 1;
static const char *wait_file;
static int udp_connected, connect_timeout_ms;

static struct sockaddr_storage target;
static socklen_t target_len;

#define MAX_LABELS 64
struct tally {
	char name[64];
	long n, bad;
	struct xt_samples lat, app;
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
	xt_samples_add(&t->lat, us);
	xt_samples_add(&t->app, app_us);
}

static long errs[256];

static void print_tallies(const char *extra)
{
	printf("{\"labels\":{");
	for (int i = 0; i < n_tallies; i++) {
		struct tally *t = &tallies[i];

		printf("%s\"%s\":{\"n\":%ld,\"bad\":%ld", i ? "," : "", t->name, t->n, t->bad);
		if (t->lat.n)
			printf(",\"p50_us\":%.1f,\"p99_us\":%.1f,\"app_p50_us\":%.1f,\"app_p99_us\":%.1f",
			       xt_pctl(&t->lat, 0.5), xt_pctl(&t->lat, 0.99), xt_pctl(&t->app, 0.5),
			       xt_pctl(&t->app, 0.99));
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
		if (getpeername(fd, (struct sockaddr *)&peer, &pl) || !xt_same_endpoint(&peer, &target))
			peer_mismatch++;
		if (read_line(fd, buf, sizeof(buf)))
			snprintf(buf, sizeof(buf), "(none)");
		tally_of(buf)->n++;
		close(fd);
	}
	snprintf(extra, sizeof(extra), ",\"peer_mismatch\":%ld", peer_mismatch);
	print_tallies(extra);
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
	char buf[1024];
	struct xt_http_resp resp;
	size_t have = 0, head = 0;
	double t0 = xt_wall() * 1e6;
	int first = 1;

	if (write(fd, req, sizeof(req) - 1) != sizeof(req) - 1)
		return -1;
	while (!head && have < sizeof(buf)) {
		char ctl[256];
		struct iovec iov = { buf + have, sizeof(buf) - have };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				     .msg_controllen = sizeof(ctl) };
		ssize_t n = recvmsg(fd, &mh, 0);

		if (n <= 0)
			return -1;
		if (first) {
			*app_us = xt_wall() * 1e6 - t0;
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
		head = xt_http_head_len(buf, have);
	}
	if (!head || xt_http_parse_response(buf, head, &resp) || !resp.backend[0])
		return -1;
	*status = resp.status;
	snprintf(lab, llen, "%s", resp.backend);
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
			char lab[64];
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
		if (!xt_same_endpoint(&from, &target))
			not_vip++;
		tally_of(buf)->n++;
	}
	snprintf(extra, sizeof(extra), ",\"reply_not_from_vip\":%ld,\"lost\":%ld", not_vip, lost);
	print_tallies(extra);
}

static void client_hold(void)
{
	char l1[64] = "(none)", l2[64] = "(none)";
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
	double end = xt_now() + seconds;
	char buf[64];

	while (xt_now() < end) {
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
/* -c THREADS connect loops in parallel (default 1) */
static void client_rate(void)
{
	struct rate_res res[64] = {};
	pthread_t th[64];
	int nt = n_conns < 1 ? 1 : n_conns > 64 ? 64 : n_conns;
	double t0 = xt_now();
	long n = 0, fail = 0;

	for (int i = 0; i < nt; i++)
		pthread_create(&th[i], NULL, rate_worker, &res[i]);
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		n += res[i].n;
		fail += res[i].fail;
	}
	printf("{\"conns\":%ld,\"failed\":%ld,\"per_second\":%.1f}\n", n, fail,
	       n / (xt_now() - t0));
}

static void client_udpconnect(void)
{
	int fd = socket(target.ss_family, SOCK_DGRAM, 0);
	double t0;
	long fail = 0;

	t0 = xt_now();
	for (int i = 0; i < n_total; i++)
		if (connect(fd, (struct sockaddr *)&target, target_len))
			fail++;
	printf("{\"connects\":%d,\"failed\":%ld,\"ns_per_connect\":%.1f}\n", n_total, fail,
	       (xt_now() - t0) * 1e9 / n_total);
	close(fd);
}

int load_lb(int argc, char **argv)
{
	const char *mode = argv[0];
	int opt;

	if (argc < 3 || xt_sockaddr(&target, &target_len, argv[1], xt_opt_int("PORT", argv[2], 0, 65535)))
		xt_die(2, "usage: xm-load %s VIP PORT [options]", mode);
	optind = 3;
	while ((opt = getopt(argc, argv, "n:c:k:w:t:CT:")) != -1) {
		switch (opt) {
		case 'n': n_total = xt_opt_int("-n", optarg, 1, 100000000); break;
		case 'c': n_conns = xt_opt_int("-c", optarg, 1, 256); break;
		case 'k': per_conn = xt_opt_int("-k", optarg, 0, 100000000); break;
		case 'w': wait_file = optarg; break;
		case 't': seconds = xt_opt_num("-t", optarg, 0, 86400); break;
		case 'C': udp_connected = 1; break;
		case 'T': connect_timeout_ms = xt_opt_int("-T", optarg, 0, 600000); break;
		default: return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "connect"))
		client_connect();
	else if (!strcmp(mode, "get"))
		client_get();
	else if (!strcmp(mode, "udp"))
		client_udp();
	else if (!strcmp(mode, "hold")) {
		if (!wait_file)
			xt_die(2, "hold wants -w FILE");
		client_hold();
	} else if (!strcmp(mode, "conn-rate"))
		client_rate();
	else
		client_udpconnect();
	return 0;
}
