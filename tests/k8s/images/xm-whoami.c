// SPDX-License-Identifier: MIT
/*
 * xm-whoami: tells a client which pod answered, and carries the readiness
 * switch of the test cluster's server pods.
 *
 *   xm-whoami serve PORT   accept TCP connections until killed; each gets the
 *                          pod's hostname and "\n", then the server closes it
 *   xm-whoami ask IP PORT [-n N] [-i MS] [-T]
 *                          connect N times (default 1; 0 = until killed), every
 *                          MS milliseconds (default 0), print each answer
 *                          ("error ..." for a failed connection), with -T
 *                          after the wall-clock time in ms
 *   xm-whoami unready      make "probe" fail (creates /tmp/xm-unready)
 *   xm-whoami ready        make "probe" succeed again
 *   xm-whoami probe        exit 0 unless /tmp/xm-unready exists (an exec
 *                          readiness probe)
 *
 * Byte-exact traffic uses xm-serve traffic from the same image; this one only
 * names backends, so tests can count which pods receive new connections.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UNREADY_FILE "/tmp/xm-unready"

static int serve(int port)
{
	struct sockaddr_in6 addr = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	char name[256], line[300];
	int one = 1, zero = 0, fd, len;

	if (gethostname(name, sizeof(name) - 1)) {
		perror("xm-whoami: gethostname");
		return 1;
	}
	len = snprintf(line, sizeof(line), "%s\n", name);
	signal(SIGPIPE, SIG_IGN);
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	/* One dual-stack socket serves IPv4 and IPv6 service addresses. */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 128)) {
		fprintf(stderr, "xm-whoami: listen on port %d: %s\n", port, strerror(errno));
		return 1;
	}
	fprintf(stderr, "xm-whoami: %s serving on port %d\n", name, port);
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			continue;
		if (write(c, line, len) != len)
			fprintf(stderr, "xm-whoami: short write: %s\n", strerror(errno));
		close(c);
	}
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int ask(const char *ip, int port, int n, int interval_ms, int stamp)
{
	int failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0); /* a line per answer, even when killed */
	for (int i = 0; n == 0 || i < n; i++) {
		struct sockaddr_storage ss = { 0 };
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		socklen_t sl;
		char buf[300];
		ssize_t r, got = 0;
		int fd;

		if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
			in4->sin_family = AF_INET;
			in4->sin_port = htons(port);
			sl = sizeof(*in4);
		} else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(port);
			sl = sizeof(*in6);
		} else {
			fprintf(stderr, "xm-whoami: '%s' is not an IP address\n", ip);
			return 2;
		}
		if (i && interval_ms)
			usleep(interval_ms * 1000);
		if (stamp)
			printf("%lld ", now_ms());
		fd = socket(ss.ss_family, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl)) {
			printf("error %s\n", strerror(errno));
			failed++;
			if (fd >= 0)
				close(fd);
			continue;
		}
		while (got < (ssize_t)sizeof(buf) - 1 &&
		       (r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
			got += r;
		close(fd);
		buf[got] = 0;
		if (got == 0 || buf[got - 1] != '\n') {
			printf("error short answer\n");
			failed++;
			continue;
		}
		fputs(buf, stdout);
	}
	fflush(stdout);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]));
	if (argc >= 4 && !strcmp(argv[1], "ask")) {
		int n = 1, interval_ms = 0, stamp = 0;

		for (int i = 4; i < argc; i++) {
			if (!strcmp(argv[i], "-n") && i + 1 < argc)
				n = atoi(argv[++i]);
			else if (!strcmp(argv[i], "-i") && i + 1 < argc)
				interval_ms = atoi(argv[++i]);
			else if (!strcmp(argv[i], "-T"))
				stamp = 1;
			else
				goto usage;
		}
		return ask(argv[2], atoi(argv[3]), n, interval_ms, stamp);
	}
	if (argc == 2 && !strcmp(argv[1], "unready")) {
		FILE *f = fopen(UNREADY_FILE, "w");

		return f && !fclose(f) ? 0 : 1;
	}
	if (argc == 2 && !strcmp(argv[1], "ready"))
		return unlink(UNREADY_FILE) && errno != ENOENT ? 1 : 0;
	if (argc == 2 && !strcmp(argv[1], "probe"))
		return access(UNREADY_FILE, F_OK) ? 0 : 1;
usage:
	fprintf(stderr, "usage: xm-whoami serve PORT | ask IP PORT [-n N] [-i MS] [-T] | unready | "
			"ready | probe\n");
	return 2;
}
