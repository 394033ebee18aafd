// SPDX-License-Identifier: MIT
/*
 * xm-load: the one load generator and test client (tests/lib/README.md has
 * the whole kit).
 *
 *   xm-load open --target IP:PORT (--scenario FILE | --rate RPS --duration S) ...
 *                    open loop on a timeline (fixed rate or a scenario file), new or
 *                    pooled connections, line or HTTP/1 protocol, every request in a CSV
 *   xm-load rr -a ADDR:PORT|unix:PATH [-P tcp|http|stream] [-s BYTES] [-r RATE]
 *              [-d SECONDS | -N REQUESTS] [-c CONNS] [-n] [-T S]
 *                    request/response, open (-r RATE) or closed loop (-r 0), against
 *                    xm-serve rr; stream: bulk throughput
 *   xm-load connect|get|udp|hold|conn-rate|udpconnect VIP PORT [options]
 *                    LB test clients against xm-serve label / http / udp
 *   xm-load traffic ADDR PORT [-q N] [-r N] [-c N] [-n N] [-S SEED] [-b SPORT] [-d MS]
 *                    byte-exact TCP exchange against xm-serve traffic
 *   xm-load udp-send|udp-probe ADDR PORT [options]
 *                    byte-exact UDP echo checks against xm-serve udp-echo
 */
#include "lib/opt.h"
#include "load.h"

static const struct xt_mode modes[] = {
	{ "open", load_open },
	{ "rr", load_rr },
	{ "connect", load_lb },
	{ "get", load_lb },
	{ "udp", load_lb },
	{ "hold", load_lb },
	{ "conn-rate", load_lb },
	{ "udpconnect", load_lb },
	{ "traffic", load_traffic },
	{ "udp-send", load_udp },
	{ "udp-probe", load_udp },
};

int main(int argc, char **argv)
{
	xt_tool = "xm-load";
	return xt_run_mode(modes, sizeof(modes) / sizeof(modes[0]), argc, argv,
			   "usage: xm-load open|rr|connect|get|udp|hold|conn-rate|udpconnect|traffic|"
			   "udp-send|udp-probe ...\n       (modes and options: tests/lib/README.md)\n");
}
