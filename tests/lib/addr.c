// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "opt.h"

int xt_sockaddr(struct sockaddr_storage *ss, socklen_t *len, const char *addr, int port)
{
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (port < 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static int port_of(const char *s)
{
	char *end;
	long p = strtol(s, &end, 10);

	return *s && !*end && p >= 0 && p <= 65535 ? (int)p : -1;
}

int xt_endpoint(struct sockaddr_storage *ss, socklen_t *len, const char *s, bool any_ok)
{
	char host[64];
	const char *colon;
	size_t hlen;
	int port;

	if (!strncmp(s, "unix:", 5)) {
		struct sockaddr_un *su = (void *)ss;

		memset(ss, 0, sizeof(*ss));
		if (!s[5] || strlen(s + 5) >= sizeof(su->sun_path))
			return -1;
		su->sun_family = AF_UNIX;
		strcpy(su->sun_path, s + 5);
		*len = sizeof(*su);
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon)
		return any_ok && (port = port_of(s)) >= 0 ? xt_sockaddr(ss, len, "0.0.0.0", port) : -1;
	port = port_of(colon + 1);
	if (port < 0)
		return -1;
	if (colon == s)
		return any_ok ? xt_sockaddr(ss, len, "0.0.0.0", port) : -1;
	if (*s == '[') {
		if (colon[-1] != ']')
			return -1;
		s++;
		hlen = colon - 1 - s;
	} else {
		if (memchr(s, ':', colon - s))
			return -1; /* IPv6 needs brackets */
		hlen = colon - s;
	}
	if (hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	return xt_sockaddr(ss, len, host, port);
}

unsigned int xt_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

bool xt_same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr && a4->sin_port == b4->sin_port;
	if (a->ss_family == AF_INET6)
		return !memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) && a6->sin6_port == b6->sin6_port;
	return false;
}

int xt_listen(const struct sockaddr_storage *ss, socklen_t len, int type)
{
	int one = 1, fd = socket(ss->ss_family, type, 0);
	char buf[128];

	if (ss->ss_family == AF_UNIX)
		unlink(((const struct sockaddr_un *)ss)->sun_path);
	else if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (const struct sockaddr *)ss, len) ||
	    ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM && listen(fd, 4096)))
		xt_die(1, "listen on %s: %m", xt_endpoint_str(ss, buf, sizeof(buf)));
	return fd;
}

const char *xt_endpoint_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in *s4 = (const void *)ss;
	const struct sockaddr_in6 *s6 = (const void *)ss;
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_UNIX)
		snprintf(buf, len, "unix:%s", ((const struct sockaddr_un *)ss)->sun_path);
	else if (ss->ss_family == AF_INET)
		snprintf(buf, len, "%s:%d", inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip)),
			 ntohs(s4->sin_port));
	else
		snprintf(buf, len, "[%s]:%d", inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip)),
			 ntohs(s6->sin6_port));
	return buf;
}
