// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "addr.h"

int xm_addr_parse(const char *s, __u8 *family, struct xm_addr *addr)
{
	struct in6_addr a6;

	memset(addr, 0, sizeof(*addr));
	if (inet_pton(AF_INET, s, &addr->ip[0]) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) != 1)
		return -EINVAL;
	memcpy(addr->ip, &a6, sizeof(a6));
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		addr->ip[0] = addr->ip[3];
		addr->ip[1] = addr->ip[2] = addr->ip[3] = 0;
		*family = AF_INET;
		return 0;
	}
	*family = AF_INET6;
	return 0;
}

int xm_addr_port_parse(const char *s, __u8 *family, struct xm_addr *addr, __u16 *port)
{
	char host[XM_ADDR_STRLEN + 2];
	const char *colon, *h = s;
	size_t hlen;
	char *end;
	long p;

	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = rb - h;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', colon - s))
			return -EINVAL; /* IPv6 needs brackets */
		hlen = colon - s;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
		return -EINVAL;
	*port = (__u16)p;
	return xm_addr_parse(host, family, addr);
}

const char *xm_addr_str(__u8 family, const struct xm_addr *addr, char *buf, size_t len)
{
	if (!inet_ntop(family == AF_INET ? AF_INET : AF_INET6, addr->ip, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

bool xm_addr_is_loopback(__u8 family, const struct xm_addr *addr)
{
	if (family == AF_INET)
		return (ntohl(addr->ip[0]) >> 24) == 127;
	return !addr->ip[0] && !addr->ip[1] && !addr->ip[2] && addr->ip[3] == htonl(1);
}
