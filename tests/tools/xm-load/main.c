// SPDX-License-Identifier: MIT
/*
 * xm-load: the one load generator and test client (tests/lib/README.md has
 * the whole kit). Every mode takes its options from one table
 * (tests/lib/loadopt.h: --target IP:PORT everywhere, MODE --help) and prints
 * one result line of the same keys (tests/lib/result.h; -j: JSON).
 *
 *   xm-load rr --target ADDR [options]      request/response load: open or closed
 *                                           loop, pooled or new connections,
 *                                           tcp/http/line/label (the one engine)
 *   xm-load stream --target ADDR            bulk throughput
 *   xm-load get|udp|hold|udpconnect --target VIP:PORT [options]
 *                                           LB test clients (connect, conn-rate:
 *                                           rr -P label --new)
 *   xm-load traffic ADDR PORT [options]     byte-exact TCP exchange
 *   xm-load udp-send|udp-probe ADDR PORT    byte-exact UDP echo checks
 *   xm-load keys                            the result keys and what they mean
 */
#include <stdio.h>
#include <string.h>

#include "lib/opt.h"
#include "lib/result.h"
#include "load.h"

static int load_keys(int argc, char **argv)
{
	printf("mode\tthe mode that printed the line\n");
	for (int k = 0; k < XK__COUNT; k++)
		printf("%s\t%s\n", xt_key_name(k), xt_key_help(k));
	for (int f = 0; f < XF__COUNT; f++)
		printf("%s.LABEL\t%s\n", xt_family_name(f), xt_family_help(f));
	return 0;
}

static const struct xt_mode modes[] = {
	{ "rr", load_rr },
	{ "stream", load_stream },
	{ "get", load_lb },
	{ "udp", load_lb },
	{ "hold", load_lb },
	{ "udpconnect", load_lb },
	{ "traffic", load_traffic },
	{ "udp-send", load_udp },
	{ "udp-probe", load_udp },
	{ "keys", load_keys },
};

static const char usage[] = "usage: xm-load MODE [options]; MODE --help for its options\n"
			    "modes: rr stream get udp hold udpconnect traffic udp-send udp-probe keys\n"
			    "       (the kit: tests/lib/README.md)\n";

int main(int argc, char **argv)
{
	xt_tool = "xm-load";
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return 0;
	}
	return xt_run_mode(modes, sizeof(modes) / sizeof(modes[0]), argc, argv, usage);
}
