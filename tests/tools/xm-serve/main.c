// SPDX-License-Identifier: MIT
/*
 * xm-serve: the one test server (tests/lib/README.md has the whole kit).
 *
 *   xm-serve rr [-l [ADDR:]PORT | -l unix:PATH]
 *                    request/response (size-prefixed TCP and HTTP/1 "GET /BYTES")
 *                    and stream sink, for xm-load rr / stream
 *   xm-serve label|http|udp ADDR PORT -l LABEL [-d MS] [-e RATE] [-R]
 *                    labelled backends: the label on accept, keep-alive HTTP/1 with
 *                    X-Backend, delay and failure injection; UDP label replies
 *   xm-serve scenario --listen IP:PORT --replica N --scenario FILE [--start EPOCH]
 *                    [--id NAME] | --scenario FILE --dump
 *                    a replica whose latency and failures follow a scenario file
 *   xm-serve traffic ADDR PORT [-q N] [-r N] [-S SEED] [-d MS]
 *                    byte-exact TCP exchange, checked by xm-load traffic
 *   xm-serve udp-echo ADDR PORT
 *                    echo every datagram, checked by xm-load udp-send / udp-probe
 * Each runs until killed.
 */
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

int main(int argc, char **argv)
{
	xt_tool = "xm-serve";
	return xt_run_mode(modes, sizeof(modes) / sizeof(modes[0]), argc, argv,
			   "usage: xm-serve rr|label|http|udp|scenario|traffic|udp-echo ...\n"
			   "       (modes and options: tests/lib/README.md)\n");
}
