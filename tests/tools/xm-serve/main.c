// SPDX-License-Identifier: MIT
/*
 * xm-serve: the one test server (tests/lib/README.md has the whole kit).
 * Every mode takes its options from the table xm-load uses too
 * (tests/lib/loadopt.h): the address always --listen IP:PORT | [IPv6]:PORT |
 * unix:PATH | PORT, the same long name for the same thing, MODE --help.
 *
 *   xm-serve rr -l ADDR  request/response (size-prefixed TCP and HTTP/1 "GET /BYTES")
 *                    and stream sink, for xm-load rr / stream
 *   xm-serve label|http|udp -l ADDR --label L [--delay S] [--error-rate F] [--reset]
 *                    labelled backends: the label on accept, keep-alive HTTP/1 with
 *                    X-Backend, delay and failure injection; UDP label replies
 *   xm-serve scenario -l ADDR --replica N --scenario FILE [--start EPOCH] [--label L]
 *                    | --scenario FILE --dump
 *                    a replica whose latency and failures follow a scenario file
 *   xm-serve traffic -l ADDR [--size N] [--answer N] [--seed SEED] [--duration S]
 *                    byte-exact TCP exchange, checked by xm-load traffic
 *   xm-serve udp-echo -l ADDR
 *                    echo every datagram, checked by xm-load udp-send / udp-probe
 * Each runs until killed.
 */
#include <stdio.h>
#include <string.h>

#include "lib/opt.h"
#include "serve.h"

static const struct xt_mode modes[] = {
	{ "rr", serve_rr },
	{ "label", serve_lb },
	{ "http", serve_lb },
	{ "udp", serve_lb },
	{ "scenario", serve_scenario },
	{ "traffic", serve_traffic },
	{ "udp-echo", serve_udp_echo },
};

static const char usage[] = "usage: xm-serve MODE --listen ADDR [options]; MODE --help for its options\n"
			    "modes: rr label http udp scenario traffic udp-echo\n"
			    "       (the kit: tests/lib/README.md)\n";

int main(int argc, char **argv)
{
	xt_tool = "xm-serve";
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return 0;
	}
	return xt_run_mode(modes, sizeof(modes) / sizeof(modes[0]), argc, argv, usage);
}
