/* SPDX-License-Identifier: MIT */
/*
 * An IPv4 or IPv6 address text and a port into a sockaddr, for the test
 * tools. Header-only: each test tool is built from one .c file.
 */
#ifndef XM_TOOLS_SOCKADDR_H
#define XM_TOOLS_SOCKADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* 0, or -1 when addr is neither IPv4 nor IPv6. */
static inline int xm_tool_sockaddr(struct sockaddr_storage *ss, socklen_t *len, const char *addr,
				   int port)
{
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
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

#endif
