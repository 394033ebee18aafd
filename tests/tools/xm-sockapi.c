// SPDX-License-Identifier: MIT
/*
 * xm-sockapi: socket-API semantics cases, each a small client/server pair in
 * one network namespace (the server is a forked child, so both ends are in
 * the caller's cgroup and netns). Run once with redirection on and once off
 * (the control): a case passes when the socket calls return what TCP returns.
 *
 *   xm-sockapi CASE ADDR PORT [-n ITERATIONS] [-t TIMEOUT_MS] [-b SRC_ADDR]
 *              [-s BYTES] [-w GO_FILE]
 *   xm-sockapi list
 *
 * Every wait is bounded (-t, default 3000 ms per message): a case that would
 * hang fails instead. Output: one line "CASE: ok ..." or "CASE: FAIL why";
 * exit 0 iff ok.
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

static struct {
	const char *addr;
	const char *src_addr; /* client bind address (-b), default ADDR */
	int port;
	int iterations;
	int timeout_ms;
	size_t bytes;        /* -s: payload of the cases that move bulk data */
	const char *go_file; /* -w: hold waits for this file to exist */
} o = { .iterations = 150, .timeout_ms = 3000, .bytes = 256 * 1024 };

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
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
	} else {
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

/* Read exactly n bytes within the timeout for each; -1 on error, EOF or timeout. */
static int read_full(int fd, void *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t k;

		if (wait_fd(fd, POLLIN, o.timeout_ms)) {
			errno = ETIMEDOUT;
			return -1;
		}
		k = recv(fd, (char *)buf + off, n - off, MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = EPIPE;
			return -1;
		}
		off += k;
	}
	return 0;
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

static int send_pattern(int fd, size_t off, size_t n)
{
	unsigned char buf[16384];

	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);

		for (size_t i = 0; i < k; i++)
			buf[i] = pattern(off + i);
		if (write_full(fd, buf, k))
			return -1;
		off += k;
		n -= k;
	}
	return 0;
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

static const struct {
	const char *name;
	int (*fn)(void);
	const char *what;
} cases[] = {
	{ "reuse", case_reuse, "4-tuple reused at once after an abortive close" },
	{ "reuse-server", case_reuse_server, "echo server for reuse-client in another pod" },
	{ "reuse-client", case_reuse_client, "reuse's client half (-b SRC_ADDR)" },
	{ "hold", case_hold, "unread bytes in flight until -w FILE exists (uninstall drain)" },
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
	while ((opt = getopt(argc, argv, "n:t:b:s:w:")) != -1) {
		switch (opt) {
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
