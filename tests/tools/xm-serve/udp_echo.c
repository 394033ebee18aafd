// SPDX-License-Identifier: MIT
/*
 * xm-serve udp-echo ADDR PORT: echo every datagram back, until killed
 * (checked byte for byte by xm-load udp-send / udp-probe). IPv4 or IPv6.
 */
#include <stdio.h>
#include <sys/socket.h>

#include "lib/addr.h"
#include "lib/opt.h"
#include "serve.h"

int serve_udp_echo(int argc, char **argv)
{
	static unsigned char in[65536];
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (argc < 3 || xt_sockaddr(&ss, &len, argv[1], xt_opt_int("PORT", argv[2], 0, 65535)))
		xt_die(2, "usage: xm-serve udp-echo ADDR PORT");
	fd = xt_listen(&ss, len, SOCK_DGRAM);
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(fd, in, sizeof(in), 0, (void *)&from, &fl);

		if (r >= 0)
			sendto(fd, in, r, 0, (void *)&from, fl);
	}
}
