// SPDX-License-Identifier: MIT
/*
 * xm-load get | udp | hold | udpconnect: the LB test clients that are not
 * request/response load (connect and conn-rate are: xm-load rr -P label
 * --new). Options from the one table (tests/lib/loadopt.h), one result line
 * (tests/lib/result.h).
 *   get --target VIP:PORT -n N [-c CONNS] [-k PER_CONN]
 *        N HTTP requests over CONNS parallel keep-alive connections of
 *        PER_CONN requests each; latency from send() to the arrival of the
 *        first answer byte at this host (the kernel's receive timestamp, as
 *        the LB's latency probe sees it), per backend too
 *   udp --target VIP:PORT -n N [--connected] [-T S]
 *        N datagrams (sendto the VIP, or connect()+send() each); replies per
 *        backend label, replies whose source is not the VIP (not_vip)
 *   hold --target VIP:PORT --wait-file FILE
 *        one connection: a request, then wait for FILE, then another on the
 *        same connection; both answers counted per backend
 *   udpconnect --target VIP:PORT -n N
 *        the cost of connect() itself: N connect()s of one UDP socket
 */
#define _GNU_SOURCE
#include <errno.h>
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
#include "lib/loadopt.h"
#include "lib/opt.h"
#include "lib/pctl.h"
#include "lib/result.h"
#include "load.h"

static struct xt_load_opts o;

#define MAX_LABELS 64
struct tally {
	char name[64];
	long n, bad;
	struct xt_samples lat;
};
static struct tally tallies[MAX_LABELS];
static int n_tallies;
static long errs[256], failed_requests, failed_connects;
static struct xt_samples all_lat;
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

/* The tallies into r: counts, 5xx and latencies per backend, errors by errno. */
static void tallies_into(struct xt_result *r)
{
	for (int i = 0; i < n_tallies; i++) {
		struct tally *t = &tallies[i];

		xt_res_backend(r, t->name, t->n);
		if (t->lat.n) { /* HTTP answers */
			xt_res_add(r, XF_BACKEND_5XX, t->name, t->bad);
			xt_res_add(r, XF_BACKEND_P50_US, t->name, xt_pctl(&t->lat, 0.5));
			xt_res_add(r, XF_BACKEND_P99_US, t->name, xt_pctl(&t->lat, 0.99));
		}
	}
	for (int e = 0; e < 256; e++)
		if (errs[e])
			xt_res_errno(r, e, errs[e]);
}

static int tcp_connect(void)
{
	int fd = socket(o.to.ss_family, SOCK_STREAM, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&o.to, o.to_len)) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/*
 * One request; returns the label and fills status, or -1. *lat_us from
 * before send() to the arrival of the first response byte at this host (the
 * kernel's receive timestamp, SO_TIMESTAMPNS), which leaves out how long the
 * scheduler took to wake us. Redirected bytes carry no timestamp: they
 * arrive inside the server's write, so the server's X-Sent-Ns (xm-serve
 * http) stands for it; with neither, until read() returned.
 */
static int http_request(int fd, char *lab, size_t llen, int *status, double *lat_us)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: svc\r\n\r\n";
	char buf[1024];
	struct xt_http_resp resp;
	size_t have = 0, head = 0;
	double t0 = xt_wall() * 1e6;
	int first = 1, stamped = 0;

	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != sizeof(req) - 1)
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
			*lat_us = xt_wall() * 1e6 - t0;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
					struct timespec ts;

					memcpy(&ts, CMSG_DATA(c), sizeof(ts));
					*lat_us = ts.tv_sec * 1e6 + ts.tv_nsec / 1e3 - t0;
					stamped = 1;
				}
			}
			first = 0;
		}
		have += n;
		head = xt_http_head_len(buf, have);
	}
	if (!head || xt_http_parse_response(buf, head, &resp) || !resp.backend[0])
		return -1;
	if (!stamped && resp.sent_ns)
		*lat_us = resp.sent_ns / 1e3 - t0;
	*status = resp.status;
	snprintf(lab, llen, "%s", resp.backend);
	return 0;
}

static void *get_worker(void *arg)
{
	long todo = (long)arg;

	while (todo > 0) {
		int fd = tcp_connect(), k = o.per_conn > 0 ? o.per_conn : (int)todo, one = 1;

		if (fd < 0) {
			pthread_mutex_lock(&tally_lock);
			errs[-fd & 255]++;
			failed_connects++;
			pthread_mutex_unlock(&tally_lock);
			todo--;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
		for (; k > 0 && todo > 0; k--, todo--) {
			char lab[64];
			int status = 0;
			double lat = 0;

			if (http_request(fd, lab, sizeof(lab), &status, &lat)) {
				pthread_mutex_lock(&tally_lock);
				failed_requests++;
				pthread_mutex_unlock(&tally_lock);
				todo--;
				break;
			}
			pthread_mutex_lock(&tally_lock);
			struct tally *t = tally_of(lab);

			t->n++;
			t->bad += status >= 500;
			xt_samples_add(&t->lat, lat);
			if (status < 500)
				xt_samples_add(&all_lat, lat);
			pthread_mutex_unlock(&tally_lock);
		}
		close(fd);
	}
	return NULL;
}

static void client_get(struct xt_result *r)
{
	pthread_t th[256];
	int nc = o.conns > 256 ? 256 : o.conns;
	long bad = 0;
	double t0 = xt_now();

	for (int i = 0; i < nc; i++)
		pthread_create(&th[i], NULL, get_worker,
			       (void *)(long)(o.requests / nc + (i < o.requests % nc)));
	for (int i = 0; i < nc; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < n_tallies; i++)
		bad += tallies[i].bad;
	xt_res_set(r, XK_DURATION_S, xt_now() - t0);
	xt_res_counts(r, o.requests, all_lat.n);
	xt_res_set(r, XK_ERR_CONNECT, failed_connects);
	xt_res_set(r, XK_ERR_RESET, failed_requests);
	xt_res_set(r, XK_ERR_STATUS, bad);
	xt_res_latency(r, &all_lat);
}

static void client_udp(struct xt_result *r)
{
	int fd = socket(o.to.ss_family, SOCK_DGRAM, 0);
	struct timeval tv = { (time_t)o.timeout, (long)((o.timeout - (time_t)o.timeout) * 1e6) };
	long not_vip = 0, lost = 0, ok = 0, send_failed = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (long i = 0; i < o.requests; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		char buf[64];
		ssize_t n;

		/* --connected: connect() once per datagram (a new backend each time) */
		if (o.connected && connect(fd, (struct sockaddr *)&o.to, o.to_len)) {
			errs[errno & 255]++;
			failed_connects++;
			continue;
		}
		if (o.connected ? send(fd, "q", 1, 0) < 0
				: sendto(fd, "q", 1, 0, (struct sockaddr *)&o.to, o.to_len) < 0) {
			errs[errno & 255]++;
			send_failed++;
			continue;
		}
		n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			lost++;
			continue;
		}
		buf[n] = '\0';
		if (!xt_same_endpoint(&from, &o.to))
			not_vip++;
		tally_of(buf)->n++;
		ok++;
	}
	xt_res_counts(r, o.requests, ok);
	xt_res_set(r, XK_ERR_CONNECT, failed_connects);
	xt_res_set(r, XK_ERR_RESET, send_failed);
	xt_res_set(r, XK_ERR_TIMEOUT, lost);
	xt_res_set(r, XK_NOT_VIP, not_vip);
}

static void client_hold(struct xt_result *r)
{
	char l1[64], l2[64];
	int fd = tcp_connect(), st = 0, ok = 0;
	double lat;
	struct stat sb;

	if (fd < 0)
		errs[-fd & 255]++;
	if (fd >= 0 && !http_request(fd, l1, sizeof(l1), &st, &lat)) {
		ok++;
		tally_of(l1)->n++;
		fprintf(stderr, "hold: first request answered by %s\n", l1);
		while (stat(o.wait_file, &sb))
			usleep(10000);
		if (!http_request(fd, l2, sizeof(l2), &st, &lat)) {
			ok++;
			tally_of(l2)->n++;
			fprintf(stderr, "hold: second request answered by %s\n", l2);
		}
	}
	xt_res_counts(r, 2, ok);
	xt_res_set(r, XK_ERR_CONNECT, fd < 0);
}

static void client_udpconnect(struct xt_result *r)
{
	int fd = socket(o.to.ss_family, SOCK_DGRAM, 0);
	double t0 = xt_now();
	long fail = 0;

	for (long i = 0; i < o.requests; i++)
		if (connect(fd, (struct sockaddr *)&o.to, o.to_len))
			fail++;
	xt_res_counts(r, o.requests, o.requests - fail);
	xt_res_set(r, XK_ERR_CONNECT, fail);
	xt_res_set(r, XK_NS_PER_CONNECT, (xt_now() - t0) * 1e9 / o.requests);
	close(fd);
}

static const struct {
	struct xt_load_mode m;
	void (*run)(struct xt_result *r);
} lb_modes[] = {
	{ { "get", "N HTTP/1 requests over --conns keep-alive connections of --per-conn requests;\n"
	    "latency to the first answer byte's kernel receive time, per backend too",
	    XO(XO_TARGET) | XO(XO_REQUESTS) | XO(XO_CONNS) | XO(XO_PER_CONN) }, client_get },
	{ { "udp", "N datagrams to the target, a label back from each (xm-serve udp); --connected:\n"
	    "connect() the socket before each", XO(XO_TARGET) | XO(XO_REQUESTS) | XO(XO_CONNECTED) |
	    XO(XO_TIMEOUT) }, client_udp },
	{ { "hold", "one connection: an HTTP request, wait for --wait-file, another request on it",
	    XO(XO_TARGET) | XO(XO_WAIT_FILE) }, client_hold },
	{ { "udpconnect", "the cost of connect(): N connect()s of one UDP socket, no packet sent",
	    XO(XO_TARGET) | XO(XO_REQUESTS) }, client_udpconnect },
};

int load_lb(int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(lb_modes) / sizeof(lb_modes[0]); i++) {
		struct xt_result r = { .mode = lb_modes[i].m.name };

		if (strcmp(argv[0], lb_modes[i].m.name))
			continue;
		o = (struct xt_load_opts){ .requests = 1000, .conns = 1, .timeout = 1 };
		xt_load_opts_or_die(&o, &lb_modes[i].m, argc, argv);
		if (!strcmp(argv[0], "hold") && !o.wait_file)
			xt_die(2, "hold wants --wait-file FILE");
		if (!o.conns)
			xt_die(2, "--conns wants at least 1");
		lb_modes[i].run(&r);
		tallies_into(&r);
		xt_res_print(stdout, &r, o.json);
		return 0;
	}
	xt_die(2, "no LB mode %s", argv[0]);
}
