// SPDX-License-Identifier: MIT
/*
 * xm-load rr: the one request/response engine (xm-load rr --help).
 *
 * Loop: open at --rate RPS or on the rate timeline of --scenario FILE, or
 * closed (neither) with --conns requests in flight. In the open loop every
 * send time is fixed in advance and a request's latency counts from that
 * due time, so a stall is charged to every request due during it (no
 * coordinated omission); a due request that finds all --conns connections
 * busy waits, and the wait is part of its latency.
 * Connections: pooled (an idle one is reused, the most recently used first;
 * --per-conn, --max-age and --idle-timeout retire them; --retry sends once
 * more on a new connection a request whose pooled connection turns out
 * closed before any byte of the answer, as urllib3, curl and Go's net/http
 * do) or --new, one per request (its latency includes the connect).
 * Protocols: tcp (BYTES-byte request whose first 4 bytes hold BYTES in
 * network order, answered with as many bytes; xm-serve rr), http (GET /BYTES,
 * X-Backend counted per backend, 5xx a failure; xm-serve rr, http, scenario),
 * line ("REQ ID" answered "OK LABEL" / "ERR LABEL"; xm-serve scenario), label
 * (send nothing, read the "LABEL\n" the server sends and closes after;
 * xm-serve label; always a new connection: the LB tests' connect).
 * Runs for --duration S, or until --requests N are answered (closed loop),
 * or to the scenario's end; --warmup S runs before, unmeasured.
 * A connection the server closes after its answer (label, REQC, HTTP
 * "Connection: close") is aborted, not closed: with a FIN its TIME_WAIT
 * sockets would meet the next SYNs from reused ports and stall them.
 * Prints one result line (tests/lib/result.h); --csv FILE gets every request.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/clock.h"
#include "lib/http1.h"
#include "lib/loadopt.h"
#include "lib/opt.h"
#include "lib/pctl.h"
#include "lib/result.h"
#include "lib/scenario.h"
#include "load.h"

#define HDR_MAX 512
#define MAX_LABELS 256

enum err { E_OK, E_CONNECT, E_RESET, E_TIMEOUT, E_STATUS };
static const char *const err_names[] = { "", "connect", "reset", "timeout", "status" };

/*
 * One request; due, sent and latency in ns, due and sent from the start
 * (negative: warm-up). sent and lport (the local port of the connection that
 * carried it last; 0: none; first_lport: the first, of a retried request) let
 * a bench match a request to what happened to its connection (l3_report.py:
 * timeouts against retirements and the server's own log).
 */
struct rec {
	int64_t due, lat; /* lat -1: not finished */
	int64_t sent;     /* last written; INT64_MIN: never */
	uint16_t lport, first_lport;
	uint8_t label, err, new_conn, retried, warm;
};

enum cstate { C_FREE, C_CONNECTING, C_BUSY, C_IDLE };

struct conn {
	int fd;
	enum cstate st;
	long req;
	uint64_t opened, used;
	unsigned long nreq;
	uint16_t lport; /* local port, for the CSV */
	bool fresh, close_after, in_body;
	uint32_t events; /* the epoll interest set now */
	const char *out;
	size_t out_len, send_off, got, resp_left;
	char line[48];
	char head[HDR_MAX];
	size_t head_len;
};

static struct xt_load_opts o;
static struct scenario sc;
static bool open_loop;
static struct conn *cs;
static size_t ncs, capcs;
static struct rec *recs;
static size_t nrecs, caprecs;
static long *queue; /* due requests waiting for a connection, FIFO */
static size_t q_head, q_tail, q_cap;
static char labels[MAX_LABELS][64] = { "" }; /* 0: none */
static int nlabels = 1;
static char *reqbuf;
static size_t reqlen;
static int ep;
static uint64_t t0, t_end;
static long in_flight, measured_issued;
static unsigned long conns_opened, idle_closed, retried, not_target;
static long errnos[256]; /* failed connect() and send() by errno */
static struct xt_samples lag; /* us */
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static uint8_t label_of(const char *s, size_t len)
{
	int i;

	len = len < sizeof(labels[0]) - 1 ? len : sizeof(labels[0]) - 1;
	for (i = 1; i < nlabels; i++)
		if (strlen(labels[i]) == len && !memcmp(labels[i], s, len))
			return i;
	if (nlabels == MAX_LABELS)
		return MAX_LABELS - 1;
	memcpy(labels[nlabels], s, len);
	labels[nlabels][len] = 0;
	return nlabels++;
}

/* Set the epoll interest; a change only (a syscall per request costs ~5% of a round trip). */
static void watch(struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = c - cs };

	if (op == EPOLL_CTL_MOD && c->events == events)
		return;
	c->events = events;
	epoll_ctl(ep, op, c->fd, &ev);
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0 && c->close_after)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 },
			   sizeof(struct linger));
	if (c->fd >= 0)
		close(c->fd); /* leaves the epoll set: the fd is not shared */
	c->fd = -1;
	c->st = C_FREE;
	c->req = -1;
}

static void dispatch_queued(void);
static bool dispatch(long req, bool fresh_only);

static void finish(struct conn *c, enum err e, uint8_t label)
{
	struct rec *r = &recs[c->req];
	uint64_t now = xt_now_ns();

	if (e == E_RESET && o.retry && !c->fresh && !c->got && !r->retried) {
		long req = c->req;

		/* A pooled connection closed while idle: once more, on a new one. */
		r->retried = 1;
		retried++;
		conn_close(c);
		if (dispatch(req, true))
			return;
	}
	r->lat = now - (int64_t)t0 - r->due;
	r->err = e;
	r->label = label;
	r->new_conn = c->fresh;
	in_flight--;
	c->nreq++;
	c->req = -1;
	if ((e != E_OK && e != E_STATUS) || o.newconn || c->close_after ||
	    (o.per_conn && c->nreq >= (unsigned long)o.per_conn) ||
	    (o.max_age > 0 && now - c->opened >= o.max_age * 1e9)) {
		conn_close(c);
	} else {
		c->st = C_IDLE;
		c->used = now;
		watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP);
	}
	dispatch_queued();
}

/*
 * Send (the rest of) the request; EPOLLOUT interest while incomplete. -1:
 * the request failed (finished; c may have moved).
 */
static int conn_send(struct conn *c)
{
	while (c->send_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->send_off, c->out_len - c->send_off,
				 MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EAGAIN) {
				watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
				return 0;
			}
			errnos[errno & 255]++;
			finish(c, E_RESET, 0);
			return -1;
		}
		c->send_off += w;
	}
	watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP);
	return 0;
}

static void conn_begin(struct conn *c, long req)
{
	recs[req].sent = (int64_t)(xt_now_ns() - t0);
	recs[req].lport = c->lport;
	if (!recs[req].first_lport)
		recs[req].first_lport = c->lport;
	c->req = req;
	c->st = C_BUSY;
	c->send_off = c->got = c->head_len = 0;
	c->in_body = c->close_after = false;
	c->resp_left = o.proto == XT_P_TCP ? o.size : 0;
	c->out = reqbuf;
	c->out_len = reqlen;
	if (o.proto == XT_P_LINE) {
		c->out = c->line;
		c->out_len = snprintf(c->line, sizeof(c->line), "%s %ld\n",
				      o.newconn ? "REQC" : "REQ", req);
	}
	conn_send(c);
}

/* The peer name of a connection to a service address is the service address. */
static void check_peer(struct conn *c)
{
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);

	if (o.to.ss_family != AF_UNIX &&
	    (getpeername(c->fd, (struct sockaddr *)&peer, &pl) || !xt_same_endpoint(&peer, &o.to)))
		not_target++;
}

static struct conn *slot(void)
{
	for (size_t i = 0; i < ncs; i++)
		if (cs[i].st == C_FREE)
			return &cs[i];
	if (o.conns && ncs >= (size_t)o.conns)
		return NULL;
	if (ncs == capcs) {
		/* epoll refers to connections by index, so moving them is safe */
		capcs = capcs ? capcs * 2 : 64;
		cs = realloc(cs, capcs * sizeof(*cs));
		if (!cs)
			xt_die(1, "out of memory");
	}
	memset(&cs[ncs], 0, sizeof(cs[0]));
	cs[ncs].fd = -1;
	cs[ncs].req = -1;
	return &cs[ncs++];
}

/* Open a connection in c; blocking: connected on return (the pre-opened pool). */
static int conn_open(struct conn *c, bool block)
{
	int one = 1, fd = socket(o.to.ss_family, SOCK_STREAM | (block ? 0 : SOCK_NONBLOCK), 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on unix: fine */
	c->fd = fd;
	c->opened = c->used = xt_now_ns();
	c->nreq = 0;
	conns_opened++;
	if (connect(fd, (struct sockaddr *)&o.to, o.to_len) && errno != EINPROGRESS) {
		errnos[errno & 255]++;
		return -1;
	}
	c->lport = 0;
	if (o.csv) {
		struct sockaddr_storage me;
		socklen_t ml = sizeof(me);

		/* the port is bound by connect(), also one still in progress */
		if (!getsockname(fd, (struct sockaddr *)&me, &ml))
			c->lport = xt_port(&me);
	}
	if (block) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		check_peer(c);
	}
	c->st = block ? C_IDLE : C_CONNECTING;
	watch(c, EPOLL_CTL_ADD, block ? EPOLLIN | EPOLLRDHUP : EPOLLIN | EPOLLOUT | EPOLLRDHUP);
	return 0;
}

/* Send request req on an idle pooled connection or a new one; false: none free now. */
static bool dispatch(long req, bool fresh_only)
{
	uint64_t now = xt_now_ns();
	struct conn *c = NULL;

	if (!o.newconn && !fresh_only) {
		for (size_t i = 0; i < ncs; i++) {
			struct conn *k = &cs[i];

			if (k->st != C_IDLE)
				continue;
			if ((o.max_age > 0 && now - k->opened >= o.max_age * 1e9) ||
			    (o.idle_timeout > 0 && now - k->used >= o.idle_timeout * 1e9)) {
				conn_close(k);
				continue;
			}
			if (!c || k->used > c->used)
				c = k;
		}
	}
	if (c) {
		c->fresh = false;
		conn_begin(c, req);
		return true;
	}
	c = slot();
	if (!c) {
		/* a pooled limit full of idle connections: retire the least recently used */
		for (size_t i = 0; i < ncs; i++)
			if (cs[i].st == C_IDLE && (!c || cs[i].used < c->used))
				c = &cs[i];
		if (!c)
			return false;
		conn_close(c);
	}
	c->fresh = true;
	c->req = req;
	if (conn_open(c, false)) {
		c->st = C_BUSY;
		finish(c, E_CONNECT, 0);
		return true;
	}
	return true;
}

static void enqueue(long req)
{
	if (q_tail == q_cap) {
		q_cap = q_cap ? q_cap * 2 : 4096;
		queue = realloc(queue, q_cap * sizeof(*queue));
		if (!queue)
			xt_die(1, "out of memory");
	}
	queue[q_tail++] = req;
}

static void dispatch_queued(void)
{
	static bool draining; /* a dispatch that fails at once finishes, and comes back here */

	if (draining)
		return;
	draining = true;
	while (q_head < q_tail && dispatch(queue[q_head], false))
		q_head++;
	if (q_head == q_tail)
		q_head = q_tail = 0;
	draining = false;
}

/* A new request due at due (ns from the start). */
static void issue(int64_t due, bool warm)
{
	uint64_t now = xt_now_ns();

	if (nrecs == caprecs) {
		caprecs = caprecs ? caprecs * 2 : 65536;
		recs = realloc(recs, caprecs * sizeof(*recs));
		if (!recs)
			xt_die(1, "out of memory");
	}
	recs[nrecs] = (struct rec){ .due = due, .lat = -1, .sent = INT64_MIN, .warm = warm };
	in_flight++;
	measured_issued += !warm;
	/*
	 * How late the generator itself sends (timer wake-up, waiting for a
	 * free connection): part of the latency, reported apart to judge it.
	 */
	if (q_head < q_tail || !dispatch(nrecs, false)) {
		enqueue(nrecs++);
		return;
	}
	if (open_loop && !warm)
		xt_samples_add(&lag, ((int64_t)now - (int64_t)t0 - due) / 1e3);
	nrecs++;
}

static bool closed_loop_done(uint64_t now)
{
	return stop || now >= t_end || (o.requests && measured_issued >= o.requests);
}

/* Closed loop: a new request for every one answered, --conns in flight. */
static void closed_loop_refill(void)
{
	uint64_t now;

	while (in_flight < o.conns && !closed_loop_done(now = xt_now_ns()))
		issue((int64_t)now - (int64_t)t0, now < t0);
}

/* Answer bytes: 1 complete, 0 not yet, -1 wrong; *label, *status_fail set when complete. */
static int parse(struct conn *c, const char *buf, size_t n, uint8_t *label, bool *status_fail)
{
	size_t take, head;
	struct xt_http_resp resp;
	char *nl;

	if (o.proto == XT_P_TCP || (o.proto == XT_P_HTTP && c->in_body)) {
		if (n > c->resp_left)
			return -1;
		c->resp_left -= n;
		return c->resp_left == 0;
	}
	take = n < sizeof(c->head) - 1 - c->head_len ? n : sizeof(c->head) - 1 - c->head_len;
	memcpy(c->head + c->head_len, buf, take);
	c->head_len += take;
	c->head[c->head_len] = 0;
	if (o.proto == XT_P_HTTP) {
		head = xt_http_head_len(c->head, c->head_len);
		if (!head)
			return c->head_len == sizeof(c->head) - 1 ? -1 : 0;
		if (xt_http_parse_response(c->head, head, &resp) || resp.content_length < 0)
			return -1;
		*label = resp.backend[0] ? label_of(resp.backend, strlen(resp.backend)) : 0;
		*status_fail = resp.status >= 500;
		c->close_after = resp.close;
		c->in_body = true;
		c->resp_left = resp.content_length;
		/* body bytes that came with the head */
		return parse(c, buf + (head - (c->head_len - take)), n - (head - (c->head_len - take)),
			     label, status_fail);
	}
	nl = memchr(c->head, '\n', c->head_len);
	if (!nl)
		return c->head_len == sizeof(c->head) - 1 ? -1 : 0;
	if (nl + 1 != c->head + c->head_len)
		return -1; /* more than one line */
	if (o.proto == XT_P_LABEL) {
		*label = label_of(c->head, nl - c->head);
		c->close_after = true;
		return 1;
	}
	if (!strncmp(c->head, "OK ", 3))
		*status_fail = false;
	else if (!strncmp(c->head, "ERR ", 4))
		*status_fail = true;
	else
		return -1;
	*label = label_of(strchr(c->head, ' ') + 1, nl - strchr(c->head, ' ') - 1);
	return 1;
}

static void on_event(struct conn *c, uint32_t events)
{
	static char buf[65536];

	if (c->st == C_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		c->st = C_BUSY;
		if (err) {
			errnos[err & 255]++;
			finish(c, E_CONNECT, 0);
			return;
		}
		check_peer(c);
		conn_begin(c, c->req);
		return;
	}
	if (c->st == C_IDLE) {
		/* the server closed (or wrote to) an idle connection */
		idle_closed++;
		conn_close(c);
		return;
	}
	if (c->st != C_BUSY)
		return;
	if ((events & EPOLLOUT) && c->send_off < c->out_len && conn_send(c))
		return;
	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		uint8_t label = 0;
		bool status_fail = false;
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n == 0 && o.proto == XT_P_LABEL && c->head_len) {
			n = 0; /* a label without its newline, then EOF */
			finish(c, E_OK, label_of(c->head, c->head_len));
			return;
		}
		if (n <= 0) {
			finish(c, E_RESET, 0);
			return;
		}
		c->got += n;
		r = parse(c, buf, n, &label, &status_fail);
		if (r < 0) {
			finish(c, E_RESET, 0);
			return;
		}
		if (r > 0) {
			finish(c, status_fail ? E_STATUS : E_OK, label);
			return;
		}
	}
}

/* Requests past --timeout of their due time fail; a queued one is never sent. */
static void expire(uint64_t now)
{
	uint64_t limit = o.timeout * 1e9;

	for (size_t i = 0; i < ncs; i++) {
		struct conn *c = &cs[i];

		if ((c->st == C_CONNECTING || c->st == C_BUSY) && c->req >= 0 &&
		    (int64_t)(now - t0) - recs[c->req].due > (int64_t)limit)
			finish(c, E_TIMEOUT, 0);
	}
	while (q_head < q_tail && (int64_t)(now - t0) - recs[queue[q_head]].due > (int64_t)limit) {
		struct rec *r = &recs[queue[q_head++]];

		r->lat = now - t0 - r->due;
		r->err = E_TIMEOUT;
		in_flight--;
	}
}

static void build_request(void)
{
	if (o.proto == XT_P_HTTP) {
		reqbuf = malloc(HDR_MAX);
		reqlen = snprintf(reqbuf, HDR_MAX, "GET /%zu HTTP/1.1\r\nHost: xm-load\r\n%s\r\n",
				  o.size, o.newconn ? "Connection: close\r\n" : "");
	} else if (o.proto == XT_P_TCP) {
		uint32_t be = htonl(o.size);

		if (o.size < 4)
			xt_die(2, "--size: a tcp request holds its 4-byte size: at least 4 bytes");
		reqbuf = calloc(1, o.size);
		memcpy(reqbuf, &be, 4);
		reqlen = o.size;
	}
}

static void write_csv(void)
{
	FILE *f = fopen(o.csv, "w");

	if (!f)
		xt_die(1, "--csv %s: %s", o.csv, strerror(errno));
	fprintf(f, "t,latency_ms,backend,ok,new_conn,err,retried,lport,sent,first_lport\n");
	for (size_t i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (r->lat < 0)
			continue;
		fprintf(f, "%.4f,%.3f,%s,%d,%d,%s,%d,%u,", r->due / 1e9, r->lat / 1e6,
			r->label ? labels[r->label] : "-1", r->err == E_OK, r->new_conn,
			err_names[r->err], r->retried, r->lport);
		if (r->sent != INT64_MIN)
			fprintf(f, "%.6f", r->sent / 1e9);
		fprintf(f, ",%u\n", r->first_lport);
	}
	fclose(f);
}

static void print_result(void)
{
	struct xt_result res = { .mode = "rr" };
	struct xt_samples lat = { 0 };
	long per_err[5] = { 0 }, per_label[MAX_LABELS] = { 0 }, requests = 0, ok = 0;
	int64_t first = INT64_MAX, last = 0;
	double window;

	for (size_t i = 0; i < nrecs; i++) {
		struct rec *r = &recs[i];

		if (r->warm || r->due < 0)
			continue;
		requests++;
		if (r->lat < 0)
			continue;
		per_err[r->err]++;
		per_label[r->label]++;
		if (r->err == E_OK) {
			ok++;
			xt_samples_add(&lat, r->lat / 1e3);
		}
		first = r->due < first ? r->due : first;
		last = r->due + r->lat > last ? r->due + r->lat : last;
	}
	/* --requests: from the first measured request to the last answer */
	window = o.requests ? (requests ? (last - first) / 1e9 : 0) : o.duration;
	xt_res_set(&res, XK_DURATION_S, window);
	xt_res_counts(&res, requests, ok);
	xt_res_set(&res, XK_ERR_CONNECT, per_err[E_CONNECT]);
	xt_res_set(&res, XK_ERR_RESET, per_err[E_RESET]);
	xt_res_set(&res, XK_ERR_TIMEOUT, per_err[E_TIMEOUT]);
	xt_res_set(&res, XK_ERR_STATUS, per_err[E_STATUS]);
	xt_res_set(&res, XK_RPS, window > 0 ? ok / window : 0);
	xt_res_latency(&res, &lat);
	if (open_loop && lag.n) {
		xt_res_set(&res, XK_LAG_P50_US, xt_pctl(&lag, 0.5));
		xt_res_set(&res, XK_LAG_P99_US, xt_pctl(&lag, 0.99));
	}
	xt_res_set(&res, XK_CONNS, conns_opened);
	xt_res_set(&res, XK_IDLE_CLOSED, idle_closed);
	xt_res_set(&res, XK_RETRIED, retried);
	if (o.to.ss_family != AF_UNIX)
		xt_res_set(&res, XK_NOT_VIP, not_target);
	for (int e = 0; e < 256; e++)
		if (errnos[e])
			xt_res_errno(&res, e, errnos[e]);
	for (int i = 1; i < nlabels; i++)
		if (per_label[i])
			xt_res_backend(&res, labels[i], per_label[i]);
	xt_res_print(stdout, &res, o.json);
}

static const struct xt_load_mode rr_mode = {
	.name = "rr",
	.summary = "request/response load: open loop (--rate, --scenario) or closed loop, pooled or\n"
		   "--new connections, tcp/http/line/label; one result line",
	.accepts = XO(XO_TARGET) | XO(XO_PROTO) | XO(XO_SIZE) | XO(XO_RATE) | XO(XO_SCENARIO) |
		   XO(XO_DURATION) | XO(XO_REQUESTS) | XO(XO_CONNS) | XO(XO_NEW) |
		   XO(XO_PER_CONN) | XO(XO_MAX_AGE) | XO(XO_IDLE_TIMEOUT) | XO(XO_RETRY) |
		   XO(XO_TIMEOUT) | XO(XO_START) | XO(XO_WARMUP) | XO(XO_CSV),
};

int load_rr(int argc, char **argv)
{
	struct rlimit rl = { 65536, 65536 };
	struct epoll_event evs[256];
	uint64_t last_expire = 0;
	double next = 0; /* s from the start: the next open-loop due time */

	o = (struct xt_load_opts){ .proto = XT_P_TCP, .size = 64, .duration = 5, .timeout = 5 };
	xt_load_opts_or_die(&o, &rr_mode, argc, argv);
	/* the label server closes after its label: never a pooled connection */
	if (o.proto == XT_P_LABEL)
		o.newconn = true;
	open_loop = o.rate > 0 || o.scenario;
	if (!(o.given & XO(XO_CONNS)))
		o.conns = open_loop ? 0 : 1;
	if (!open_loop && !o.conns)
		xt_die(2, "a closed loop wants --conns N >= 1 (requests in flight)");
	if (o.requests && open_loop)
		xt_die(2, "--requests counts answers of a closed loop: not with --rate or --scenario");
	if (o.to.ss_family == AF_UNIX && o.proto != XT_P_TCP)
		xt_die(2, "unix:PATH targets speak --proto tcp");
	if (o.scenario) {
		if (scn_load(o.scenario, &sc))
			return 1;
		if (!(o.given & XO(XO_DURATION)))
			o.duration = sc.duration;
	}
	if (o.rate > 0) {
		/* --rate: constant, also over a scenario's own schedule */
		sc.nrate = 1;
		sc.rate_t[0] = 0;
		sc.rate_v[0] = o.rate;
	}
	build_request();
	/* wake-ups on the request timeline should not be batched by timer slack */
	prctl(PR_SET_TIMERSLACK, 1UL);
	setrlimit(RLIMIT_NOFILE, &rl);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ep = epoll_create1(0);
	/* a fixed pool is connected before the start: connects are not in its latencies */
	if (!o.newconn && o.conns)
		for (long i = 0; i < o.conns; i++)
			if (conn_open(slot(), true))
				xt_die(1, "connect %s: %s", o.target, strerror(errno));
	t0 = xt_now_ns() + 10000000ull;
	if (o.given & XO(XO_START))
		t0 = xt_now_ns() + (int64_t)((o.start - xt_wall()) * 1e9);
	t_end = o.requests ? UINT64_MAX : t0 + (uint64_t)(o.duration * 1e9);
	next = -o.warmup;
	while (xt_now_ns() < t0 - (uint64_t)(o.warmup * 1e9) && !stop) {
		uint64_t d = t0 - (uint64_t)(o.warmup * 1e9) - xt_now_ns();
		struct timespec ts = { d / 1000000000, d % 1000000000 };

		nanosleep(&ts, NULL);
	}
	while (!stop) {
		uint64_t now = xt_now_ns();
		int64_t wait = 10000000;
		struct timespec to;
		int n;

		if (open_loop) {
			while (next < o.duration && t0 + (int64_t)(next * 1e9) <= now) {
				double r = scn_rate(&sc, next);

				if (r > 0)
					issue(next * 1e9, next < 0);
				next += r > 0 ? 1 / r : 0.01;
			}
			if (next < o.duration)
				wait = t0 + (int64_t)(next * 1e9) - now;
		}
		if (!open_loop)
			closed_loop_refill();
		if (in_flight == 0 && (open_loop ? next >= o.duration : closed_loop_done(now)))
			break;
		if (now - last_expire > 10000000) {
			expire(now);
			last_expire = now;
		}
		wait = wait < 0 ? 0 : wait > 10000000 ? 10000000 : wait;
		to.tv_sec = 0;
		to.tv_nsec = wait;
		n = epoll_pwait2(ep, evs, 256, &to, NULL);
		for (int i = 0; i < n; i++) {
			struct conn *c = &cs[evs[i].data.u64];

			if (c->fd >= 0)
				on_event(c, evs[i].events);
			if (!open_loop)
				closed_loop_refill();
		}
	}
	if (o.csv)
		write_csv();
	print_result();
	return 0;
}

/*
 * xm-load stream: one connection writes 64 KiB blocks for --duration, then
 * half-closes; the server's receive rate is the result (gbit_s).
 */
static const struct xt_load_mode stream_mode = {
	.name = "stream",
	.summary = "bulk throughput: one connection writing for --duration to xm-serve rr",
	.accepts = XO(XO_TARGET) | XO(XO_DURATION),
};

int load_stream(int argc, char **argv)
{
	static char block[65536] = { 'S' };
	struct xt_result res = { .mode = "stream" };
	char line[64] = "";
	double end;
	ssize_t n;
	int fd;

	o = (struct xt_load_opts){ .duration = 5 };
	xt_load_opts_or_die(&o, &stream_mode, argc, argv);
	fd = socket(o.to.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&o.to, o.to_len))
		xt_die(1, "connect %s: %s", o.target, strerror(errno));
	end = xt_now() + o.duration;
	for (size_t off = 0; xt_now() < end; off = 1)
		if (send(fd, block + off, sizeof(block) - off, MSG_NOSIGNAL) < 0)
			xt_die(1, "stream: send: %s", strerror(errno));
	shutdown(fd, SHUT_WR);
	/* a redirected socket's blocking recv can return EAGAIN (docs/redirect-compat.md) */
	do
		n = recv(fd, line, sizeof(line) - 1, MSG_WAITALL);
	while (n < 0 && (errno == EAGAIN || errno == EINTR));
	if (n <= 0 || strncmp(line, "gbit_s=", 7))
		xt_die(1, "stream: no rate from the server");
	xt_res_set(&res, XK_DURATION_S, o.duration);
	xt_res_set(&res, XK_GBIT_S, atof(line + 7));
	xt_res_print(stdout, &res, o.json);
	return 0;
}
