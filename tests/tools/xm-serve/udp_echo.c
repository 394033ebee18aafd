// SPDX-License-Identifier: MIT
/*
 * xm-serve udp-echo --listen ADDR: echo every datagram back, until killed
 * (checked byte for byte by xm-load udp-send / udp-probe). IPv4 or IPv6.
 */
#include <stdio.h>
#include <sys/socket.h>

#include "lib/addr.h"
#include "lib/loadopt.h"
#include "serve.h"

static const struct xt_load_mode udp_echo_mode = {
	.tool = "xm-serve", .name = "udp-echo", .accepts = XO(XO_LISTEN),
	.summary = "UDP echo: every datagram back to its sender (xm-load udp-send, udp-probe)",
	.was = "ADDR PORT -> --listen ADDR:PORT",
};

int serve_udp_echo(int argc, char **argv)
{
	static unsigned char in[65536];
	struct xt_load_opts o = { 0 };
	int fd;

	xt_load_opts_or_die(&o, &udp_echo_mode, argc, argv);
	fd = xt_listen(&o.at, o.at_len, SOCK_DGRAM);
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(fd, in, sizeof(in), 0, (void *)&from, &fl);

		if (r >= 0)
			sendto(fd, in, r, 0, (void *)&from, fl);
	}
}
