// SPDX-License-Identifier: MIT
/*
 * xm-sockapi: socket-API semantics cases, each a small client/server pair in
 * one network namespace (the server is a forked child, so both ends are in
 * the caller's cgroup and netns). Run once with redirection on and once off
 * (the control): a case passes when the socket calls return what TCP returns.
 *
 *   xm-sockapi CASE ADDR PORT [-n ITERATIONS] [-t TIMEOUT_MS] [-b SRC_ADDR]
 *              [-s BYTES] [-w GO_FILE] [-d SECONDS] [-l LATE_MS]
 *   xm-sockapi list
 *
 * Every wait is bounded (-t, default 3000 ms per message): a case that would
 * hang fails instead. Output: one line "CASE: ok ...", "CASE: FAIL why" or
 * "CASE: differs what" for a known difference of redirected sockets from TCP
 * (docs/redirect-compat.md). Exit 0 ok, 1 fail, 3 differs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "lib/addr.h"
#include "lib/clock.h"

static struct {
	const char *addr;
	const char *src_addr; /* client bind address (-b), default ADDR */
	int port;
	int iterations;
	int timeout_ms;
	size_t bytes;        /* -s: payload of the cases that move bulk data */
	const char *go_file; /* -w: hold waits for this file to exist */
	int duration_s;      /* -d: soak duration */
	int late_ms;         /* -l: after a soak timeout, wait this much more for the bytes */
} o = { .duration_s = 60, .late_ms = 30000, .iterations = 150, .timeout_ms = 3000, .bytes = 256 * 1024 };

static const char *case_name;

static int fail(const char *fmt, ...)
{
	va_list ap;

	printf("%s: FAIL ", case_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return 1;
}

static void sa_make(struct sockaddr_storage *ss, socklen_t *len, const char *addr, int port)
{
	if (xt_sockaddr(ss, len, addr, port)) {
		fprintf(stderr, "bad address %s\n", addr);
		exit(2);
	}
}

/* Wait for events on fd; 0 when ready, -1 on timeout. */
static int wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, ms) == 1 ? 0 : -1;
}

/*
 * Read n bytes, waiting at most ms for each step; *got says how many arrived
 * (also on failure). -1 on error, EOF (errno EPIPE) or timeout (ETIMEDOUT).
 */
static int read_within(int fd, void *buf, size_t n, int ms, size_t *got)
{
	*got = 0;
	while (*got < n) {
		ssize_t k;

		if (wait_fd(fd, POLLIN, ms)) {
			errno = ETIMEDOUT;
			return -1;
		}
		k = recv(fd, (char *)buf + *got, n - *got, MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = EPIPE;
			return -1;
		}
		*got += k;
	}
	return 0;
}

/* Read exactly n bytes within the timeout for each; -1 on error, EOF or timeout. */
static int read_full(int fd, void *buf, size_t n)
{
	size_t got;

	return read_within(fd, buf, n, o.timeout_ms, &got);
}

static int write_full(int fd, const void *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t k = send(fd, (const char *)buf + off, n - off, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		off += k;
	}
	return 0;
}

/* ---- server: a forked child accepting connections, one thread each ---- */

typedef void (*conn_fn)(int fd);

/* Listeners accept TCP Fast Open (the fastopen case): this is the queue length. */
static int listen_fastopen_qlen;

static int listen_on(const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	sa_make(&ss, &len, addr, port);
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (listen_fastopen_qlen &&
	    setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &listen_fastopen_qlen, sizeof(int))) {
		close(fd);
		return -1;
	}
	if (bind(fd, (void *)&ss, len) || listen(fd, 4096)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *conn_thread(void *p)
{
	void **a = p;
	conn_fn fn = (conn_fn)a[0];
	int fd = (int)(long)a[1];

	free(a);
	fn(fd);
	close(fd);
	return NULL;
}

static pid_t server_pid;
/* Server handlers report what they saw on this pipe (one line each). */
static int result_pipe[2] = { -1, -1 };
/* The client tells server handlers to go on with one byte on this pipe. */
static int go_pipe[2] = { -1, -1 };

static void server_go(void)
{
	if (write(go_pipe[1], "g", 1) != 1)
		perror("go pipe");
}

static void wait_server_go(void)
{
	char c;

	if (read(go_pipe[0], &c, 1) != 1)
		_exit(3);
}

static void report(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	if (write(result_pipe[1], line, n) != n)
		_exit(3);
}

/* The next line a server handler reported, within the timeout; "" if none. */
static const char *server_result(void)
{
	static char line[256];
	size_t i = 0;

	while (i < sizeof(line) - 1 && !wait_fd(result_pipe[0], POLLIN, o.timeout_ms)) {
		if (read(result_pipe[0], line + i, 1) != 1 || line[i] == '\n')
			break;
		i++;
	}
	line[i] = '\0';
	return line;
}

static void server_stop(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
		server_pid = 0;
	}
}

/* Start a server running fn on every accepted connection; returns once it listens. */
static int server_start(conn_fn fn)
{
	int lfd = listen_on(o.addr, o.port);

	if (lfd < 0) {
		perror("server: bind/listen");
		return -1;
	}
	if (result_pipe[0] < 0 && (pipe(result_pipe) || pipe(go_pipe)))
		return -1;
	server_pid = fork();
	if (server_pid < 0)
		return -1;
	if (server_pid > 0) {
		close(lfd);
		return 0;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the case */
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		pthread_t t;
		void **a;

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			_exit(2);
		}
		a = malloc(2 * sizeof(*a));
		a[0] = (void *)fn;
		a[1] = (void *)(long)c;
		if (pthread_create(&t, NULL, conn_thread, a)) {
			close(c);
			free(a);
			continue;
		}
		pthread_detach(t);
	}
}

/* Echo until EOF or error, then close. */
static void serve_echo(int fd)
{
	char buf[65536];

	for (;;) {
		ssize_t k = recv(fd, buf, sizeof(buf), 0);

		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0 || write_full(fd, buf, k))
			return;
	}
}

static int client_connect(int src_port)
{
	struct sockaddr_storage ss, src;
	socklen_t len, slen;
	int fd, one = 1;

	sa_make(&ss, &len, o.addr, o.port);
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (src_port) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		sa_make(&src, &slen, o.src_addr ?: o.addr, src_port);
		if (bind(fd, (void *)&src, slen)) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (void *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void abortive_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* ---- cases ---- */

/*
 * The same 4-tuple reused right after an abortive close: the client binds a
 * fixed source port, exchanges a few small messages, closes with RST and
 * reconnects at once. Every message must be echoed.
 */
static int case_reuse_client(void)
{
	int src_port = o.port + 1, lost = 0, failed_connects = 0;
	char msg[64], back[64];

	for (int i = 0; i < o.iterations; i++) {
		int fd = -1;

		/* The server side of the last tuple may still be closing: retry briefly. */
		for (int tries = 0; tries < 50 && fd < 0; tries++) {
			fd = client_connect(src_port);
			if (fd < 0)
				usleep(2000);
		}
		if (fd < 0) {
			failed_connects++;
			continue;
		}
		for (int m = 0; m < 3; m++) {
			int n = snprintf(msg, sizeof(msg), "iteration %d message %d", i, m);

			if (write_full(fd, msg, n) || read_full(fd, back, n) || memcmp(msg, back, n)) {
				fprintf(stderr, "iteration %d: message %d not echoed: %s\n", i, m,
					strerror(errno));
				lost++;
				break;
			}
		}
		abortive_close(fd);
	}
	if (lost || failed_connects)
		return fail("%d of %d connections lost a message, %d could not connect", lost,
			    o.iterations, failed_connects);
	printf("%s: ok %d connections on one reused 4-tuple, every message echoed\n", case_name,
	       o.iterations);
	return 0;
}

static int case_reuse(void)
{
	if (server_start(serve_echo))
		return fail("server");
	return case_reuse_client();
}

/* The server half alone (for a client in another pod): echo until killed. */
static int case_reuse_server(void)
{
	if (server_start(serve_echo))
		return fail("server");
	pause();
	return 0;
}

/* Byte at offset off of a stream: not periodic in 256, so a shifted or foreign byte shows. */
static unsigned char pattern(size_t off)
{
	unsigned long x = off * 2654435761UL + (off >> 9);

	return (unsigned char)(x ^ (x >> 13));
}

/* Send n pattern bytes from offset off, chunk bytes per send() call. */
static int send_pattern_in(int fd, size_t off, size_t n, size_t chunk)
{
	unsigned char *buf = malloc(chunk);
	int err = buf ? 0 : -1;

	while (n && !err) {
		size_t k = n < chunk ? n : chunk;

		for (size_t i = 0; i < k; i++)
			buf[i] = pattern(off + i);
		err = write_full(fd, buf, k);
		off += k;
		n -= k;
	}
	free(buf);
	return err;
}

static int send_pattern(int fd, size_t off, size_t n)
{
	return send_pattern_in(fd, off, n, 16384);
}

/*
 * Receive exactly n pattern bytes from offset off, each step within the
 * timeout. Returns NULL, or what went wrong (errno, or the first bad offset).
 */
static const char *recv_pattern(int fd, size_t off, size_t n)
{
	static char why[96];
	unsigned char buf[65536];
	size_t done = 0, got;

	while (done < n) {
		size_t want = n - done < sizeof(buf) ? n - done : sizeof(buf);
		int err = read_within(fd, buf, want, o.timeout_ms, &got);

		for (size_t i = 0; i < got; i++) {
			if (buf[i] != pattern(off + done + i)) {
				snprintf(why, sizeof(why), "byte %zu of %zu differs", done + i, n);
				return why;
			}
		}
		done += got;
		if (err) {
			snprintf(why, sizeof(why), "%zu of %zu bytes, then %s", done, n,
				 strerror(errno));
			return why;
		}
	}
	return NULL;
}

static void wait_go_file(void)
{
	while (o.go_file && access(o.go_file, F_OK))
		usleep(20000);
}

/* hold's server: read nothing until the go file exists, then verify to EOF and report. */
static void serve_hold(int fd)
{
	unsigned char buf[65536];
	size_t off = 0;
	char report[64];
	int bad = 0, n;

	wait_go_file();
	for (;;) {
		ssize_t k;

		if (wait_fd(fd, POLLIN, o.timeout_ms))
			break;
		k = recv(fd, buf, sizeof(buf), 0);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			break;
		for (ssize_t i = 0; i < k; i++)
			bad |= buf[i] != pattern(off + i);
		off += k;
	}
	n = snprintf(report, sizeof(report), "%zu %s\n", off, bad ? "corrupt" : "intact");
	write_full(fd, report, n);
}

/*
 * Bytes in flight across an uninstall: the client sends -s bytes that the
 * server does not read yet, says "sent", waits for the go file (the test
 * starts the uninstall, then creates it), sends as much again and half-closes;
 * the server must have received all 2 x -s bytes intact.
 */
static int case_hold(void)
{
	char report[64] = "";
	size_t got = 0;
	int fd;

	if (server_start(serve_hold))
		return fail("server");
	fd = client_connect(0);
	if (fd < 0)
		return fail("connect: %s", strerror(errno));
	if (send_pattern(fd, 0, o.bytes))
		return fail("send: %s", strerror(errno));
	printf("%s: sent %zu bytes, the server reads none yet\n", case_name, o.bytes);
	fflush(stdout);
	wait_go_file();
	if (send_pattern(fd, o.bytes, o.bytes) || shutdown(fd, SHUT_WR))
		return fail("send after go: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(report) - 1; i++) {
		if (read_full(fd, report + i, 1) || report[i] == '\n')
			break;
	}
	close(fd);
	if (sscanf(report, "%zu", &got) != 1 || got != 2 * o.bytes || !strstr(report, "intact"))
		return fail("the server received '%s', expected %zu intact bytes", report,
			    2 * o.bytes);
	printf("%s: ok %zu bytes delivered intact\n", case_name, got);
	return 0;
}

/* ---- socket-API cases: each checks what TCP does; 3 = a known difference seen ---- */

#define DIFFERS 3

static int differs(const char *fmt, ...)
{
	va_list ap;

	printf("%s: differs ", case_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return DIFFERS;
}

static int ok(const char *fmt, ...)
{
	va_list ap;

	printf("%s: ok ", case_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return 0;
}

/* Wait until n bytes can be read (seen with MSG_PEEK); -1 after the timeout. */
static int wait_avail(int fd, size_t n)
{
	char buf[65536];

	for (int waited = 0; waited < o.timeout_ms; waited += 2) {
		ssize_t k = recv(fd, buf, n < sizeof(buf) ? n : sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

		if (k >= (ssize_t)n)
			return 0;
		usleep(2000);
	}
	return -1;
}

static int readable_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int echo_client(void)
{
	if (server_start(serve_echo))
		return -1;
	return client_connect(0);
}

static int case_poll(void)
{
	char buf[100] = { 0 };
	int fd = echo_client();

	if (fd < 0 || write_full(fd, buf, 100) || wait_fd(fd, POLLIN, o.timeout_ms) ||
	    wait_avail(fd, 100))
		return fail("echo of 100 bytes never became readable");
	if (recv(fd, buf, 40, 0) != 40 || !readable_now(fd))
		return fail("poll: not readable with 60 bytes left (level-triggered)");
	if (recv(fd, buf, 60, 0) != 60 || readable_now(fd))
		return fail("poll: readable with nothing left");
	return ok("readable while bytes are left, not after");
}

static int case_epoll(void)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, out;
	char buf[200] = { 0 };
	int fd = echo_client(), et = epoll_create1(0), lt = epoll_create1(0);

	if (fd < 0 || et < 0 || lt < 0 || epoll_ctl(et, EPOLL_CTL_ADD, fd, &ev))
		return fail("setup");
	ev.events = EPOLLIN;
	epoll_ctl(lt, EPOLL_CTL_ADD, fd, &ev);
	if (write_full(fd, buf, 100) || epoll_wait(et, &out, 1, o.timeout_ms) != 1 ||
	    wait_avail(fd, 100))
		return fail("edge: no event for 100 new bytes");
	epoll_wait(et, &out, 1, 0); /* the echo may have come in two pieces */
	if (recv(fd, buf, 40, 0) != 40)
		return fail("recv");
	if (epoll_wait(lt, &out, 1, 0) != 1)
		return fail("level: no event with 60 bytes left");
	if (epoll_wait(et, &out, 1, 0) != 0)
		return fail("edge: event without new data");
	if (write_full(fd, buf, 50) || epoll_wait(et, &out, 1, o.timeout_ms) != 1)
		return fail("edge: no event for 50 more bytes");
	if (wait_avail(fd, 110) || recv(fd, buf, 110, 0) != 110)
		return fail("read the rest");
	if (epoll_wait(lt, &out, 1, 0) != 0)
		return fail("level: event with nothing left");
	return ok("level and edge triggered events as TCP");
}

static int case_fionread(void)
{
	char buf[100] = { 0 };
	int fd = echo_client(), n = -1, m = -1;

	if (fd < 0 || write_full(fd, buf, 100) || wait_avail(fd, 100))
		return fail("echo never arrived");
	ioctl(fd, FIONREAD, &n);
	if (recv(fd, buf, 30, 0) != 30)
		return fail("recv");
	ioctl(fd, SIOCINQ, &m);
	if (n != 100 || m != 70)
		return n == 0 || m == 0 ? differs("FIONREAD %d, SIOCINQ %d (TCP: 100, 70)", n, m)
					: fail("FIONREAD %d, SIOCINQ %d (TCP: 100, 70)", n, m);
	return ok("FIONREAD/SIOCINQ count queued bytes");
}

static int case_peek(void)
{
	char buf[16] = "";
	int fd = echo_client();

	if (fd < 0 || write_full(fd, "0123456789", 10) || wait_avail(fd, 10))
		return fail("echo never arrived");
	if (recv(fd, buf, 4, MSG_PEEK) != 4 || memcmp(buf, "0123", 4))
		return fail("first peek");
	if (recv(fd, buf, 10, MSG_PEEK) != 10 || memcmp(buf, "0123456789", 10))
		return fail("second peek: the peeked bytes were consumed");
	if (recv(fd, buf, 16, MSG_DONTWAIT) != 10 || memcmp(buf, "0123456789", 10))
		return fail("recv after peek");
	return ok("MSG_PEEK leaves bytes queued");
}

/* Answers one request byte with three 1000-byte writes 30 ms apart. */
static void serve_trickle(int fd)
{
	char buf[1000] = { 0 }, req;

	while (recv(fd, &req, 1, 0) == 1) {
		for (int i = 0; i < 3; i++) {
			usleep(30000);
			if (write_full(fd, buf, sizeof(buf)))
				return;
		}
	}
}

static void set_timeo(int fd, int opt, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static int case_waitall(void)
{
	char buf[3000];
	ssize_t k;
	int fd;

	if (server_start(serve_trickle))
		return fail("server");
	fd = client_connect(0);
	if (fd < 0 || write_full(fd, "x", 1))
		return fail("connect");
	set_timeo(fd, SO_RCVTIMEO, o.timeout_ms); /* a guard, not the check */
	k = recv(fd, buf, sizeof(buf), MSG_WAITALL);
	if (k == 3000)
		return ok("MSG_WAITALL returned all 3000 bytes of three writes");
	if (k > 0 && k < 3000)
		return differs("MSG_WAITALL returned %zd of 3000 bytes", k);
	return fail("MSG_WAITALL: %zd (%s)", k, k < 0 ? strerror(errno) : "");
}

static int case_rcvtimeo(void)
{
	char buf[10] = { 0 };
	int fd = echo_client();
	ssize_t k;

	if (fd < 0)
		return fail("connect");
	set_timeo(fd, SO_RCVTIMEO, 100);
	k = recv(fd, buf, sizeof(buf), 0);
	if (k != -1 || (errno != EAGAIN && errno != EWOULDBLOCK))
		return fail("recv with no data: %zd %s (TCP: EAGAIN after the timeout)", k,
			    strerror(errno));
	set_timeo(fd, SO_RCVTIMEO, o.timeout_ms);
	if (write_full(fd, buf, 10) || recv(fd, buf, 10, MSG_WAITALL) != 10)
		return fail("recv after data: %s", strerror(errno));
	return ok("SO_RCVTIMEO expires with EAGAIN, data is read after");
}

/* Reads nothing until the client says go; then drains to EOF and reports the count. */
static void serve_sink_later(int fd)
{
	char buf[65536];
	size_t n = 0;
	ssize_t k;

	wait_server_go();
	while ((k = recv(fd, buf, sizeof(buf), 0)) > 0 || (k < 0 && errno == EAGAIN))
		n += k > 0 ? k : 0;
	report("%zu", n);
}

static int case_sndtimeo(void)
{
	const size_t limit = 64 << 20;
	char buf[65536] = { 0 };
	const char *r;
	size_t sent = 0;
	int fd;

	if (server_start(serve_sink_later))
		return fail("server");
	fd = client_connect(0);
	if (fd < 0)
		return fail("connect");
	set_timeo(fd, SO_SNDTIMEO, 200);
	while (sent < limit) {
		ssize_t k = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);

		if (k > 0)
			sent += k;
		if (k < (ssize_t)sizeof(buf))
			break; /* blocked: partial write or EAGAIN after SO_SNDTIMEO */
	}
	server_go();
	shutdown(fd, SHUT_WR);
	r = server_result();
	if (strtoull(r, NULL, 10) != sent)
		return fail("the peer received '%s', not the %zu bytes sent", r, sent);
	if (sent >= limit)
		return differs("send never blocked: %zu MiB queued to a peer that reads nothing",
			       sent >> 20);
	return ok("send blocked after %zu KiB to a peer that reads nothing (SO_SNDTIMEO)",
		  sent >> 10);
}

static int case_rcvlowat(void)
{
	char buf[100] = { 0 };
	int fd = echo_client(), lowat = 100;

	if (fd < 0)
		return fail("connect");
	setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
	if (write_full(fd, buf, 50) || wait_avail(fd, 50))
		return fail("echo never arrived");
	if (readable_now(fd)) {
		if (write_full(fd, buf, 50) || wait_avail(fd, 100))
			return fail("echo never arrived");
		return differs("poll reports readable with 50 bytes below SO_RCVLOWAT 100");
	}
	if (write_full(fd, buf, 50) || wait_avail(fd, 100) || wait_fd(fd, POLLIN, o.timeout_ms))
		return fail("not readable at SO_RCVLOWAT");
	return ok("poll waits for SO_RCVLOWAT bytes");
}

/* Reads to EOF, checks the pattern, answers "<count> intact|corrupt" and closes. */
static void serve_count(int fd)
{
	unsigned char buf[65536];
	size_t off = 0;
	int bad = 0;
	char line[64];
	ssize_t k;

	while ((k = recv(fd, buf, sizeof(buf), 0)) > 0 || (k < 0 && errno == EAGAIN)) {
		for (ssize_t i = 0; i < k; i++)
			bad |= buf[i] != pattern(off + i);
		off += k > 0 ? k : 0;
	}
	k = snprintf(line, sizeof(line), "%zu %s\n", off, bad ? "corrupt" : "intact");
	write_full(fd, line, k);
}

/* After the client's last byte and SHUT_WR, the count the server answers must match. */
static int expect_count(int fd, size_t n)
{
	char line[64] = "";
	char want[64];

	shutdown(fd, SHUT_WR);
	for (size_t i = 0; i < sizeof(line) - 1; i++)
		if (read_full(fd, line + i, 1) || line[i] == '\n')
			break;
	snprintf(want, sizeof(want), "%zu intact\n", n);
	if (strcmp(line, want))
		return fail("server received '%s', expected '%zu intact'", line, n);
	return 0;
}

static int case_cork(void)
{
	unsigned char b[30];
	int fd, one = 1, zero = 0;

	for (int i = 0; i < 30; i++)
		b[i] = pattern(i);
	if (server_start(serve_count))
		return fail("server");
	fd = client_connect(0);
	if (fd < 0)
		return fail("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one));
	if (write_full(fd, b, 10) || write_full(fd, b + 10, 10))
		return fail("send corked");
	setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
	if (send(fd, b + 20, 5, MSG_MORE) != 5 || send(fd, b + 25, 5, 0) != 5)
		return fail("send MSG_MORE");
	if (expect_count(fd, 30))
		return 1;
	return ok("TCP_CORK and MSG_MORE deliver every byte in order");
}

static int case_shut_wr(void)
{
	int fd;

	if (server_start(serve_count))
		return fail("server");
	fd = client_connect(0);
	if (fd < 0 || send_pattern(fd, 0, 100000) || expect_count(fd, 100000))
		return 1;
	if (wait_fd(fd, POLLIN, o.timeout_ms) || recv(fd, &fd, 1, MSG_DONTWAIT) != 0)
		return fail("no EOF after the server closed");
	return ok("SHUT_WR: the peer reads every byte then EOF; its answer arrives");
}

static int case_shut_rd(void)
{
	char buf[10] = { 0 };
	ssize_t k;
	int fd = echo_client();

	if (fd < 0)
		return fail("connect");
	if (shutdown(fd, SHUT_RD))
		return fail("shutdown: %s", strerror(errno));
	k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (k != 0)
		return fail("recv after SHUT_RD: %zd %s (TCP: 0)", k, k < 0 ? strerror(errno) : "");
	if (send(fd, buf, 10, MSG_NOSIGNAL) != 10)
		return fail("send after SHUT_RD: %s", strerror(errno));
	return ok("SHUT_RD: recv returns 0, send still works");
}

/* Reads until EOF or an error and reports which. */
static void serve_read_report(int fd)
{
	char buf[4096];
	ssize_t k;

	while ((k = recv(fd, buf, sizeof(buf), 0)) > 0 || (k < 0 && errno == EAGAIN))
		;
	report("%s", k == 0 ? "EOF" : strerror(errno));
}

static int case_linger0(void)
{
	char buf[100] = { 0 };
	const char *r;
	int fd;

	if (server_start(serve_read_report))
		return fail("server");
	fd = client_connect(0);
	if (fd < 0 || write_full(fd, buf, 100))
		return fail("connect/send");
	usleep(50000); /* let the server read the bytes first */
	abortive_close(fd);
	r = server_result();
	if (strcmp(r, strerror(ECONNRESET)))
		return fail("peer saw '%s' after SO_LINGER 0 (TCP: %s)", r, strerror(ECONNRESET));
	return ok("SO_LINGER 0: the peer's recv fails with ECONNRESET");
}

static int case_splice(void)
{
	unsigned char buf[16384];
	const size_t n = 256 * 1024;
	size_t off = 0, got = 0;
	int p[2], fd = echo_client();

	if (fd < 0 || pipe(p))
		return fail("setup");
	/* Non-blocking, so that a splice that finds nothing shows instead of hanging. */
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* send side: user buffer -> pipe -> socket */
	while (off < n) {
		size_t k = n - off < sizeof(buf) ? n - off : sizeof(buf);
		ssize_t w;

		for (size_t i = 0; i < k; i++)
			buf[i] = pattern(off + i);
		if (write(p[1], buf, k) != (ssize_t)k)
			return fail("pipe write");
		for (size_t left = k; left; left -= w) {
			w = splice(p[0], NULL, fd, NULL, left, 0);
			if (w < 0 && errno == EAGAIN && !wait_fd(fd, POLLOUT, o.timeout_ms)) {
				w = 0;
				continue;
			}
			if (w <= 0)
				return fail("splice to socket: %s", strerror(errno));
		}
		off += k;
		/* receive side: socket -> pipe -> user buffer, as the echo comes back */
		while (got < off) {
			ssize_t r;

			if (wait_fd(fd, POLLIN, o.timeout_ms))
				return got ? fail("splice from socket: stalled at %zu of %zu bytes",
						  got, off)
					   : differs("splice from socket: no byte arrives "
						     "(stalled at 0 of %zu)", off);
			r = splice(fd, NULL, p[1], NULL, off - got, SPLICE_F_NONBLOCK);
			if (r < 0 && errno == EAGAIN) {
				/* readable but nothing to splice: redirected bytes */
				char probe;

				if (recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
					return differs("splice from socket: EAGAIN while %s",
						       "recv sees the redirected bytes");
				continue;
			}
			if (r <= 0)
				return fail("splice from socket: %s", r ? strerror(errno) : "EOF");
			if (read(p[0], buf, r) != r)
				return fail("pipe read");
			for (ssize_t i = 0; i < r; i++)
				if (buf[i] != pattern(got + i))
					return fail("splice from socket: byte %zu wrong", got + i);
			got += r;
		}
	}
	return ok("splice to and from the socket, %zu bytes each way", n);
}

static int case_sendfile(void)
{
	char path[] = "/tmp/xm-sockapi-XXXXXX";
	const size_t n = 1 << 20;
	off_t off = 0;
	int fd, file = mkstemp(path);

	if (file < 0)
		return fail("mkstemp");
	unlink(path);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = pattern(i);

		if (write(file, &c, 1) != 1)
			return fail("write file");
	}
	if (server_start(serve_count))
		return fail("server");
	fd = client_connect(0);
	if (fd < 0)
		return fail("connect");
	while ((size_t)off < n)
		if (sendfile(fd, file, &off, n - off) <= 0)
			return fail("sendfile: %s", strerror(errno));
	if (expect_count(fd, n))
		return 1;
	return ok("sendfile of %zu bytes arrives intact", n);
}

static int case_nbconnect(void)
{
	struct sockaddr_storage ss;
	char msg[] = "written right after a non-blocking connect", back[sizeof(msg)];
	socklen_t len;
	int fd, eagain = 0;

	if (server_start(serve_echo))
		return fail("server");
	sa_make(&ss, &len, o.addr, o.port);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (connect(fd, (void *)&ss, len) && errno != EINPROGRESS)
		return fail("connect: %s", strerror(errno));
	for (;;) {
		ssize_t k = send(fd, msg, sizeof(msg), MSG_NOSIGNAL);

		if (k == (ssize_t)sizeof(msg))
			break;
		if (k >= 0 || errno != EAGAIN)
			return fail("send: %zd %s", k, strerror(errno));
		eagain++;
		if (wait_fd(fd, POLLOUT, o.timeout_ms))
			return fail("never writable");
	}
	if (read_full(fd, back, sizeof(back)) || memcmp(msg, back, sizeof(msg)))
		return fail("echo: %s", strerror(errno));
	return ok("immediate write (%d EAGAIN while connecting) echoed", eagain);
}

/*
 * -n connections opened with TCP Fast Open: the first message rides in the
 * SYN (sendto MSG_FASTOPEN), and the client's TCP_INFO must say the server
 * took it (TCPI_OPT_SYN_DATA). Needs net.ipv4.tcp_fastopen with client and
 * server bits and "no cookie" (0x207) in the netns. Such connections must
 * stay on TCP (bpf/redirect.bpf.c, sock_is_fastopen); the caller checks the
 * counters.
 */
static int case_fastopen(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int n = o.iterations;

	listen_fastopen_qlen = 64;
	if (server_start(serve_echo))
		return fail("server: %s (TCP_FASTOPEN on the listener)", strerror(errno));
	sa_make(&ss, &len, o.addr, o.port);
	for (int i = 0; i < n; i++) {
		char msg[64], back[64];
		struct tcp_info ti = {};
		socklen_t tlen = sizeof(ti);
		int fd = socket(ss.ss_family, SOCK_STREAM, 0), k;

		k = snprintf(msg, sizeof(msg), "in the SYN, connection %d", i);
		if (fd < 0 || sendto(fd, msg, k, MSG_FASTOPEN, (void *)&ss, len) != k)
			return fail("sendto(MSG_FASTOPEN): %s", strerror(errno));
		if (read_full(fd, back, k) || memcmp(msg, back, k))
			return fail("connection %d: echo: %s", i, strerror(errno));
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) ||
		    !(ti.tcpi_options & TCPI_OPT_SYN_DATA))
			return fail("connection %d was not Fast Open (SYN data not acked): set "
				    "net.ipv4.tcp_fastopen=0x207 in this netns", i);
		/* one more exchange once established: that one could be redirected */
		if (write_full(fd, msg, k) || read_full(fd, back, k) || memcmp(msg, back, k))
			return fail("connection %d: second echo: %s", i, strerror(errno));
		close(fd);
	}
	return ok("%d Fast Open connections (data in the SYN, acked), every message echoed", n);
}

/*
 * The cost of the receive path alone, for scripts/bench/recv-trace.sh: one
 * thread sends 1 byte and reads it back on a loopback TCP pair, -n times,
 * and prints the thread's CPU time per recv() (CLOCK_THREAD_CPUTIME_ID: time
 * the thread spent preempted on a shared machine is not counted).
 */
/* -n 1-byte sends on a, each read back on b: the thread's CPU ns per send+recv. Closes both. */
static int send_recv_loop(int a, int b)
{
	struct timespec t0, t1;
	char c = 'x';
	int rc = 0;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	for (int i = 0; i < o.iterations && !rc; i++)
		if (send(a, &c, 1, 0) != 1 || recv(b, &c, 1, 0) != 1)
			rc = fail("iteration %d: %s", i, strerror(errno));
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	if (!rc)
		printf("{\"iterations\": %d, \"cpu_ns_per_iteration\": %.1f}\n", o.iterations,
		       ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / o.iterations);
	close(a);
	close(b);
	return rc;
}

static int case_recvloop(void)
{
	int lfd = listen_on(o.addr, o.port), a, b;

	if (lfd < 0)
		return fail("listen: %s", strerror(errno));
	a = client_connect(0);
	b = accept(lfd, NULL, NULL);
	close(lfd);
	if (a < 0 || b < 0)
		return fail("connect: %s", strerror(errno));
	return send_recv_loop(a, b);
}

/*
 * The same loop on an AF_UNIX socketpair: the cheapest recvmsg a process can
 * make, so a host-wide hook on it (the sock_recv_length tracepoint) shows
 * most. No address: the case ignores ADDR and PORT.
 */
static int case_unixloop(void)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return fail("socketpair: %s", strerror(errno));
	return send_recv_loop(sv[0], sv[1]);
}

static atomic_int churn_failed, churn_done;

static void *churn_thread(void *p)
{
	int per = (int)(long)p;
	char msg[64], back[64];

	for (int i = 0; i < per; i++) {
		int fd = client_connect(0);

		if (fd < 0) {
			atomic_fetch_add(&churn_failed, 1);
			continue;
		}
		memset(msg, i, sizeof(msg));
		if (write_full(fd, msg, sizeof(msg)) || read_full(fd, back, sizeof(back)) ||
		    memcmp(msg, back, sizeof(msg)))
			atomic_fetch_add(&churn_failed, 1);
		else
			atomic_fetch_add(&churn_done, 1);
		close(fd);
	}
	return NULL;
}

static int case_churn(void)
{
	pthread_t t[8];
	int per = o.iterations / 8;

	if (server_start(serve_echo))
		return fail("server");
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, churn_thread, (void *)(long)per);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	if (churn_failed)
		return fail("%d of %d short connections failed", churn_failed, per * 8);
	return ok("%d short connections from 8 threads, each message echoed", churn_done);
}

/*
 * Threaded blocking client and server, as classic Java/Python programs are
 * written: on each end of each connection one thread writes -s bytes while
 * another reads with blocking recv(). EAGAIN is never right for a blocking
 * socket without SO_RCVTIMEO; both ends count it and carry on.
 */
static atomic_long threads_eagain, threads_failed;

static void *writer_thread(void *p)
{
	int fd = (int)(long)p;

	if (send_pattern(fd, 0, o.bytes) == 0)
		shutdown(fd, SHUT_WR);
	return NULL;
}

/* Blocking reads to EOF; returns -1 unless exactly -s pattern bytes came. */
static int read_blocking(int fd, long *eagain)
{
	unsigned char buf[65536];
	size_t got = 0;

	for (;;) {
		ssize_t k = recv(fd, buf, sizeof(buf), 0);

		if (k < 0 && errno == EAGAIN) {
			(*eagain)++;
			continue;
		}
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		for (ssize_t i = 0; i < k; i++)
			if (buf[i] != pattern(got + i))
				return -1;
		got += k;
	}
	return got == o.bytes ? 0 : -1;
}

static void serve_duplex(int fd)
{
	long eagain = 0;
	pthread_t w;
	int err;

	pthread_create(&w, NULL, writer_thread, (void *)(long)fd);
	err = read_blocking(fd, &eagain);
	pthread_join(w, NULL);
	report("%d %ld", err, eagain);
}

static void *duplex_client(void *p)
{
	long eagain = 0;
	pthread_t w;
	int fd = client_connect(0);

	(void)p;
	if (fd < 0) {
		atomic_fetch_add(&threads_failed, 1);
		return NULL;
	}
	pthread_create(&w, NULL, writer_thread, (void *)(long)fd);
	if (read_blocking(fd, &eagain))
		atomic_fetch_add(&threads_failed, 1);
	pthread_join(w, NULL);
	atomic_fetch_add(&threads_eagain, eagain);
	close(fd);
	return NULL;
}

static int case_threads(void)
{
	int conns = o.iterations > 64 ? 64 : o.iterations;
	pthread_t t[64];

	if (server_start(serve_duplex))
		return fail("server");
	for (int i = 0; i < conns; i++)
		pthread_create(&t[i], NULL, duplex_client, NULL);
	for (int i = 0; i < conns; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < conns; i++) {
		int err = -1;
		long e = 0;

		if (sscanf(server_result(), "%d %ld", &err, &e) != 2 || err)
			atomic_fetch_add(&threads_failed, 1);
		threads_eagain += e;
	}
	if (threads_failed)
		return fail("%ld of %d connections lost or corrupted bytes", threads_failed, conns);
	if (threads_eagain)
		return differs("blocking recv returned EAGAIN %ld times over %d connections "
			       "(every byte intact)", threads_eagain, conns);
	return ok("%d connections, a reader and a writer thread on each end, no EAGAIN", conns);
}

/*
 * Churn soak: -n threads for -d seconds, each opening
 * connections to an echo server, sending a random number of random-sized
 * messages with random pauses, checking every echoed byte, and ending the
 * connection either normally or with an RST (SO_LINGER 0) in the middle of
 * an exchange. Any wrong byte or a message not echoed within -t is a
 * failure; at the end the process must hold as many descriptors as before.
 *
 * Every failure is one "soak-fail:" line of key=value pairs (wall-clock
 * times, so scripts/soak-redirect.sh can place it among the agent's restarts
 * and the uninstall): the connection's identity (local port, socket cookie),
 * its timing, which message, how many bytes came back and where they first
 * differ, and the TCP view of the socket. After a timeout the thread keeps
 * the socket and waits up to -l ms more ("soak-late:" line): bytes that
 * arrive then were delayed, not lost.
 */
static atomic_long soak_conns, soak_aborted, soak_failed, soak_bytes, soak_late;
static double soak_end;

static int open_fds(void)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

/* One soak connection, for failure records. */
struct soak_conn {
	int thread;
	long serial;       /* per thread */
	double t_connect;  /* wall clock, s */
	int local_port;
	uint64_t cookie;   /* SO_COOKIE: what `xmeshctl -j sock list` shows */
	int msgs;          /* messages planned */
};

static void soak_conn_identify(struct soak_conn *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), clen = sizeof(c->cookie);

	c->local_port = 0;
	if (!getsockname(fd, (void *)&ss, &len))
		c->local_port = ntohs(ss.ss_family == AF_INET6
					      ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
	c->cookie = 0;
	getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c->cookie, &clen);
}

/*
 * Print one failure: step is "write", "read" or "compare"; m the message,
 * n its size, off the connection's bytes before it, got the bytes echoed.
 */
static void soak_fail_record(int fd, const struct soak_conn *c, const char *step, int err, int m,
			     size_t n, size_t off, size_t got, const unsigned char *out,
			     const unsigned char *back)
{
	struct tcp_info ti = {};
	socklen_t tlen = sizeof(ti);
	int inq = -1, outq = -1;
	char diff[96] = "";
	double now = xt_wall();

	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen);
	ioctl(fd, SIOCINQ, &inq);
	ioctl(fd, SIOCOUTQ, &outq);
	for (size_t i = 0; i < got; i++) {
		if (out[i] == back[i])
			continue;
		/* where the echo first differs, 4 bytes expected vs got */
		snprintf(diff, sizeof(diff), " diff_at=%zu want=%02x%02x%02x%02x saw=%02x%02x%02x%02x",
			 i, out[i], i + 1 < got ? out[i + 1] : 0, i + 2 < got ? out[i + 2] : 0,
			 i + 3 < got ? out[i + 3] : 0, back[i], i + 1 < got ? back[i + 1] : 0,
			 i + 2 < got ? back[i + 2] : 0, i + 3 < got ? back[i + 3] : 0);
		break;
	}
	fprintf(stderr,
		"soak-fail: id=%d.%ld t=%.3f step=%s err=%s t_connect=%.3f age_ms=%.0f msg=%d/%d "
		"size=%zu conn_offset=%zu got=%zu%s local_port=%d cookie=%llu tcp_state=%u "
		"unacked=%u retrans=%u last_data_sent_ms=%u last_data_recv_ms=%u inq=%d outq=%d\n",
		c->thread, c->serial, now, step, err ? strerrorname_np(err) : "-", c->t_connect,
		(now - c->t_connect) * 1000, m + 1, c->msgs, n, off, got, diff, c->local_port,
		(unsigned long long)c->cookie, ti.tcpi_state, ti.tcpi_unacked, ti.tcpi_total_retrans,
		ti.tcpi_last_data_sent, ti.tcpi_last_data_recv, inq, outq);
}

/* After a timeout: do the missing bytes come later, and are they the right ones? */
static void soak_late_record(int fd, const struct soak_conn *c, const unsigned char *out,
			     unsigned char *back, size_t n, size_t got)
{
	double t0 = xt_now();
	size_t more = 0;
	int rc = read_within(fd, back + got, n - got, o.late_ms, &more);
	int err = rc ? errno : 0;

	fprintf(stderr, "soak-late: id=%d.%ld t=%.3f waited_ms=%.0f late_bytes=%zu missing=%zu "
		"received_intact=%d err=%s\n", c->thread, c->serial, xt_wall(), (xt_now() - t0) * 1000,
		more, n - got - more, !memcmp(out, back, got + more), err ? strerrorname_np(err) : "-");
	if (!rc && !memcmp(out, back, n))
		atomic_fetch_add(&soak_late, 1);
}

static void *soak_thread(void *p)
{
	int thread = (int)(long)p;
	unsigned int seed = thread * 7919 + 1;
	static __thread unsigned char out[65536], back[65536];
	struct soak_conn c = { .thread = thread };

	while (xt_now() < soak_end) {
		int fd, abort_at;
		size_t off = 0;

		c.t_connect = xt_wall();
		fd = client_connect(0);
		if (fd < 0) {
			usleep(1000);
			continue; /* the listener's backlog may be full for a moment */
		}
		c.serial++;
		c.msgs = 1 + rand_r(&seed) % 8;
		abort_at = rand_r(&seed) % 4 == 0 ? rand_r(&seed) % c.msgs : -1;
		soak_conn_identify(&c, fd);
		for (int m = 0; m < c.msgs; m++) {
			size_t n = 1 + rand_r(&seed) % (rand_r(&seed) % 2 ? 512 : sizeof(out)), got = 0;
			const char *step = NULL;

			for (size_t i = 0; i < n; i++)
				out[i] = pattern(off + i + seed);
			if (m == abort_at) {
				/* RST with bytes in flight: nothing to check after it */
				write_full(fd, out, n);
				atomic_fetch_add(&soak_aborted, 1);
				break;
			}
			if (write_full(fd, out, n))
				step = "write";
			else if (read_within(fd, back, n, o.timeout_ms, &got))
				step = "read";
			else if (memcmp(out, back, n))
				step = "compare";
			if (step) {
				int err = !strcmp(step, "compare") ? 0 : errno;

				soak_fail_record(fd, &c, step, err, m, n, off, got, out, back);
				if (err == ETIMEDOUT)
					soak_late_record(fd, &c, out, back, n, got);
				atomic_fetch_add(&soak_failed, 1);
				break;
			}
			off += n;
			atomic_fetch_add(&soak_bytes, 2 * n);
			if (rand_r(&seed) % 4 == 0)
				usleep(rand_r(&seed) % 20000);
		}
		if (abort_at >= 0)
			abortive_close(fd);
		else
			close(fd);
		atomic_fetch_add(&soak_conns, 1);
	}
	return NULL;
}

/* The client half, towards an echo server (echo-server, possibly in another pod). */
static int case_soak_client(void)
{
	int threads = o.iterations > 256 ? 256 : o.iterations, fds_before;
	pthread_t t[256];
	double start, next_report;

	fds_before = open_fds();
	start = xt_now();
	soak_end = start + o.duration_s;
	next_report = start + 10;
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, soak_thread, (void *)(long)i);
	while (xt_now() < soak_end) {
		sleep(1);
		if (xt_now() >= next_report) {
			fprintf(stderr, "soak: %.0f of %d s, %ld connections, %ld aborted, %ld failed\n",
				xt_now() - start, o.duration_s, atomic_load(&soak_conns),
				atomic_load(&soak_aborted), atomic_load(&soak_failed));
			next_report += 10;
		}
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("soak: connections=%ld aborted=%ld failed=%ld late_intact=%ld bytes=%ld fds_before=%d "
	       "fds_after=%d\n", atomic_load(&soak_conns), atomic_load(&soak_aborted),
	       atomic_load(&soak_failed), atomic_load(&soak_late), atomic_load(&soak_bytes),
	       fds_before, open_fds());
	if (soak_failed)
		return fail("%ld connections lost or corrupted a message", atomic_load(&soak_failed));
	if (open_fds() != fds_before)
		return fail("descriptors leaked: %d before, %d after", fds_before, open_fds());
	return ok("%ld connections (%ld aborted), every echoed byte intact", atomic_load(&soak_conns),
		  atomic_load(&soak_aborted));
}

static int case_soak(void)
{
	if (server_start(serve_echo))
		return fail("server");
	return case_soak_client();
}

/*
 * Bulk streams (docs/redirect-compat.md, "Bulk senders"): -s bytes sent in
 * writes of BULK_WRITE, which the 4 MiB after which a redirected one-way
 * sender is demoted to TCP does not divide, so the demotion falls inside a
 * write; the receiver checks every byte's place. Then the other direction:
 * -s / 4 bytes back, checked the same way. Variants (flags of the server):
 *   bulk         client streams, server answers
 *   bulk-close   client streams and closes right after its last write
 *   bulk-server  the accepted socket streams, the client answers
 *   bulk-kept    the server sends BULK_HELLO bytes first, which the client
 *                reads only after its stream: a sender with bytes of its
 *                peer's queued for it must keep the redirect and lose none
 */
#define BULK_WRITE (3u << 20)
#define BULK_HELLO 1000
#define BULK_BACK_OFF (1ul << 40) /* pattern offsets of the answer: a mixed-up direction shows */
#define BULK_HELLO_OFF (1ul << 41)

static struct {
	int close;  /* the client closes after its stream: no answer */
	int server; /* the server streams, the client answers */
	int hello;  /* the server sends BULK_HELLO bytes before anything else */
} bulk;

/* A reader of the stream's end: EOF must come next, within the timeout. */
static const char *expect_eof(int fd)
{
	char c;
	size_t got;

	if (read_within(fd, &c, 1, o.timeout_ms, &got) == 0)
		return "a byte after the end of the stream";
	return errno == EPIPE ? NULL : strerror(errno);
}

static void serve_bulk(int fd)
{
	const char *why = NULL;

	if (bulk.hello && send_pattern(fd, BULK_HELLO_OFF, BULK_HELLO))
		why = "send hello";
	if (bulk.server) {
		if (!why && send_pattern_in(fd, 0, o.bytes, BULK_WRITE))
			why = "send the stream";
		why = why ?: recv_pattern(fd, BULK_BACK_OFF, o.bytes / 4);
	} else {
		why = why ?: recv_pattern(fd, 0, o.bytes);
		if (!why && !bulk.close && send_pattern_in(fd, BULK_BACK_OFF, o.bytes / 4, BULK_WRITE))
			why = "send the answer";
	}
	why = why ?: expect_eof(fd);
	report("%s", why ?: "intact");
}

static int bulk_client(void)
{
	const char *why, *r;
	int fd;

	if (server_start(serve_bulk))
		return fail("server");
	fd = client_connect(0);
	if (fd < 0)
		return fail("connect: %s", strerror(errno));
	if (bulk.server) {
		if ((why = recv_pattern(fd, 0, o.bytes)))
			return fail("the client received: %s", why);
		if (send_pattern_in(fd, BULK_BACK_OFF, o.bytes / 4, BULK_WRITE))
			return fail("answer: %s", strerror(errno));
		shutdown(fd, SHUT_WR);
	} else {
		/* the peer's first bytes queued for this socket, unread, before its stream */
		if (bulk.hello && wait_fd(fd, POLLIN, o.timeout_ms))
			return fail("the server's first bytes never came");
		if (send_pattern_in(fd, 0, o.bytes, BULK_WRITE))
			return fail("stream: %s", strerror(errno));
		if (bulk.close) {
			close(fd);
			fd = -1;
		} else {
			if (bulk.hello && (why = recv_pattern(fd, BULK_HELLO_OFF, BULK_HELLO)))
				return fail("the server's first bytes: %s", why);
			if ((why = recv_pattern(fd, BULK_BACK_OFF, o.bytes / 4)))
				return fail("the answer: %s", why);
			shutdown(fd, SHUT_WR);
		}
	}
	r = server_result();
	if (fd >= 0)
		close(fd);
	if (strcmp(r, "intact"))
		return fail("the server received: %s", r[0] ? r : "(no report)");
	return ok("%zu bytes one way, %zu back, every byte in its place", o.bytes,
		  bulk.close ? 0 : o.bytes / 4 + (bulk.hello ? BULK_HELLO : 0));
}

static int case_bulk(void)
{
	return bulk_client();
}

static int case_bulk_close(void)
{
	bulk.close = 1;
	return bulk_client();
}

static int case_bulk_server(void)
{
	bulk.server = 1;
	return bulk_client();
}

static int case_bulk_kept(void)
{
	bulk.hello = 1;
	return bulk_client();
}

static const struct {
	const char *name;
	int (*fn)(void);
	const char *what;
} cases[] = {
	{ "bulk", case_bulk, "-s bytes in 3 MiB writes, checked, then -s/4 back" },
	{ "bulk-close", case_bulk_close, "bulk, and close right after the last write" },
	{ "bulk-server", case_bulk_server, "bulk sent by the accepted socket" },
	{ "bulk-kept", case_bulk_kept, "bulk with the peer's bytes queued for the sender first" },
	{ "reuse", case_reuse, "4-tuple reused at once after an abortive close" },
	{ "reuse-server", case_reuse_server, "echo server for reuse-client in another pod" },
	{ "echo-server", case_reuse_server, "echo server until killed (for clients in other pods)" },
	{ "reuse-client", case_reuse_client, "reuse's client half (-b SRC_ADDR)" },
	{ "hold", case_hold, "unread bytes in flight until -w FILE exists (uninstall drain)" },
	{ "poll", case_poll, "poll(): level-triggered readability" },
	{ "epoll", case_epoll, "epoll level and edge triggered" },
	{ "fionread", case_fionread, "FIONREAD / SIOCINQ" },
	{ "peek", case_peek, "MSG_PEEK" },
	{ "waitall", case_waitall, "MSG_WAITALL over three writes" },
	{ "rcvtimeo", case_rcvtimeo, "SO_RCVTIMEO" },
	{ "sndtimeo", case_sndtimeo, "SO_SNDTIMEO / backpressure from a peer that reads nothing" },
	{ "rcvlowat", case_rcvlowat, "SO_RCVLOWAT and poll" },
	{ "cork", case_cork, "TCP_CORK and MSG_MORE" },
	{ "shut-wr", case_shut_wr, "shutdown(SHUT_WR)" },
	{ "shut-rd", case_shut_rd, "shutdown(SHUT_RD)" },
	{ "linger0", case_linger0, "SO_LINGER 0 (RST) seen by the peer" },
	{ "splice", case_splice, "splice to and from the socket" },
	{ "sendfile", case_sendfile, "sendfile to the socket" },
	{ "nbconnect", case_nbconnect, "non-blocking connect, then an immediate write" },
	{ "churn", case_churn, "-n short connections from 8 threads" },
	{ "fastopen", case_fastopen, "-n TCP Fast Open connections (data in the SYN)" },
	{ "recvloop", case_recvloop, "-n 1-byte send+recv on one thread: CPU ns per recv" },
	{ "unixloop", case_unixloop, "recvloop on an AF_UNIX socketpair (ADDR, PORT unused)" },
	{ "soak", case_soak, "churn soak: -n threads for -d seconds, random sizes, RSTs" },
	{ "soak-client", case_soak_client, "soak's client half, towards echo-server" },
	{ "threads", case_threads, "reader and writer threads on blocking sockets (-n conns, -s bytes)" },
};

int main(int argc, char **argv)
{
	int opt;

	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && !strcmp(argv[1], "list")) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			printf("%-16s %s\n", cases[i].name, cases[i].what);
		return 0;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: xm-sockapi CASE ADDR PORT [-n N] [-t MS] [-b SRC] | xm-sockapi list\n");
		return 2;
	}
	case_name = argv[1];
	o.addr = argv[2];
	o.port = atoi(argv[3]);
	optind = 4;
	while ((opt = getopt(argc, argv, "n:t:b:s:w:d:l:")) != -1) {
		switch (opt) {
		case 'd': o.duration_s = atoi(optarg); break;
		case 'l': o.late_ms = atoi(optarg); break;
		case 's': o.bytes = strtoul(optarg, NULL, 0); break;
		case 'w': o.go_file = optarg; break;
		case 'b': o.src_addr = optarg; break;
		case 'n': o.iterations = atoi(optarg); break;
		case 't': o.timeout_ms = atoi(optarg); break;
		default: return 2;
		}
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!strcmp(cases[i].name, case_name)) {
			int rc = cases[i].fn();

			server_stop();
			return rc;
		}
	}
	fprintf(stderr, "unknown case %s (xm-sockapi list)\n", case_name);
	return 2;
}
