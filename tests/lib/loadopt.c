// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "loadopt.h"
#include "opt.h"

/* One row per option: short letter (0: long only), long name, argument, help. */
static const struct {
	int letter;
	const char *name, *arg, *help;
} table[XO__COUNT] = {
	[XO_TARGET] = { 't', "target", "ADDR", "IP:PORT, [IPv6]:PORT or unix:PATH to load" },
	[XO_PROTO] = { 'P', "proto", "PROTO", "tcp (size-prefixed, xm-serve rr), http (GET /SIZE), "
		       "line (REQ/OK LABEL, xm-serve scenario), label (read the label the server sends)" },
	[XO_SIZE] = { 's', "size", "BYTES", "bytes per request (K, M suffixes)" },
	[XO_ANSWER] = { 0, "answer", "BYTES", "bytes the server sends back per request" },
	[XO_RATE] = { 'r', "rate", "RPS", "open loop at RPS requests per second (without it and "
		      "--scenario: closed loop)" },
	[XO_SCENARIO] = { 0, "scenario", "FILE", "open loop on the rate timeline of a scenario file" },
	[XO_DURATION] = { 'd', "duration", "S", "seconds to run" },
	[XO_REQUESTS] = { 'n', "requests", "N", "requests (connections, datagrams) in all" },
	[XO_CONNS] = { 'c', "conns", "N", "connections at once (closed loop: requests in flight; "
		       "open loop: pool limit, 0 = none)" },
	[XO_NEW] = { 0, "new", NULL, "a new connection per request (default: pooled)" },
	[XO_PER_CONN] = { 'k', "per-conn", "N", "requests per pooled connection, then a new one "
			  "(0 = no limit)" },
	[XO_MAX_AGE] = { 0, "max-age", "S", "retire a pooled connection this old (0 = never)" },
	[XO_IDLE_TIMEOUT] = { 0, "idle-timeout", "S", "close a pooled connection idle this long "
			      "(0 = never)" },
	[XO_RETRY] = { 0, "retry", NULL, "send once more on a new connection a request whose "
		       "pooled connection was found closed" },
	[XO_TIMEOUT] = { 'T', "timeout", "S", "give up on a request (connect, answer) after S seconds" },
	[XO_START] = { 0, "start", "EPOCH", "start at this wall-clock time (shared by several clients)" },
	[XO_WARMUP] = { 0, "warmup", "S", "run S seconds before the measured window (in the CSV, "
			"not the result)" },
	[XO_CSV] = { 0, "csv", "FILE", "every request, one CSV line each (the header names the "
		   "columns)" },
	[XO_JSON] = { 'j', "json", NULL, "the result as one JSON object (same keys)" },
	[XO_SEED] = { 'S', "seed", "N", "seed of the byte pattern" },
	[XO_BIND_PORT] = { 'b', "bind-port", "PORT", "first local (source) port" },
	[XO_FLOWS] = { 0, "flows", "N", "distinct source ports" },
	[XO_INTERVAL] = { 0, "interval", "S", "pause between datagrams" },
	[XO_WAIT_FILE] = { 0, "wait-file", "FILE", "wait for FILE to exist between the two requests" },
	[XO_CONNECTED] = { 0, "connected", NULL, "connect() the UDP socket before each send" },
	[XO_LISTEN] = { 'l', "listen", "ADDR", "IP:PORT, [IPv6]:PORT, unix:PATH or PORT (every IPv4 "
			"address) to listen on" },
	[XO_LABEL] = { 0, "label", "NAME", "the backend's name in its answers (X-Backend, the line "
		       "protocol, the label sent on accept, the UDP answer)" },
	[XO_DELAY] = { 0, "delay", "S", "wait S seconds before each answer" },
	[XO_ERROR_RATE] = { 0, "error-rate", "FRACTION", "answer every (1/FRACTION)-th request with "
			    "a 500 (exact, not sampled)" },
	[XO_RESET] = { 0, "reset", NULL, "reset the connection instead of answering" },
	[XO_REPLICA] = { 0, "replica", "N", "which replica of the scenario file this server is" },
	[XO_DUMP] = { 0, "dump", NULL, "print the scenario's timeline as CSV and exit" },
	[XO_HELP] = { 'h', "help", NULL, "this help" },
};

static const char *const protos[] = { "tcp", "http", "line", "label" };

const char *xt_proto_name(enum xt_proto p)
{
	return protos[p];
}

static const char *tool(const struct xt_load_mode *m)
{
	return m->tool ? m->tool : "xm-load";
}

/* The address option of a mode: --target for a client, --listen for a server. */
static int addr_opt(const struct xt_load_mode *m)
{
	return m->accepts & XO(XO_LISTEN) ? XO_LISTEN : XO_TARGET;
}

static uint64_t accepted(const struct xt_load_mode *m)
{
	/* --json: a client's result; a server prints none */
	return m->accepts | XO(XO_HELP) | (m->accepts & XO(XO_LISTEN) ? 0 : XO(XO_JSON));
}

void xt_load_help(FILE *f, const struct xt_load_mode *m)
{
	int a = addr_opt(m);

	fprintf(f, "usage: %s %s%s%s%s [options]\n%s\n\noptions:\n", tool(m), m->name,
		m->accepts & XO(a) ? " --" : "", m->accepts & XO(a) ? table[a].name : "",
		m->accepts & XO(a) ? " ADDR" : "", m->summary);
	for (int i = 0; i < XO__COUNT; i++) {
		char left[40];

		if (!(accepted(m) & XO(i)))
			continue;
		if (table[i].letter)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", table[i].letter, table[i].name,
				 table[i].arg ? " " : "", table[i].arg ? table[i].arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", table[i].name,
				 table[i].arg ? " " : "", table[i].arg ? table[i].arg : "");
		fprintf(f, "  %-26s %s\n", left, table[i].help);
	}
	if (a == XO_LISTEN)
		fprintf(f, "\nruns until killed; all modes: %s --help\n", tool(m));
	else
		fprintf(f, "\nresult: one line of key=value (latencies in us), -j: the same as JSON;\n"
			"keys: xm-load keys; all modes: xm-load --help\n");
}

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

static int parse_size(struct xt_load_opts *o, const struct xt_load_mode *m, const char *v,
		      char *err, size_t errlen)
{
	const char *dash = strchr(v, '-');
	char lo[32];

	if (!dash || !m->size_range) {
		if (xt_parse_size("--size", v, 1 << 30, &o->size, err, errlen))
			return -1;
		o->size_max = o->size; /* a range of one */
		return 0;
	}
	snprintf(lo, sizeof(lo), "%.*s", (int)(dash - v), v);
	if (xt_parse_size("--size", lo, 1 << 30, &o->size, err, errlen) ||
	    xt_parse_size("--size", dash + 1, 1 << 30, &o->size_max, err, errlen))
		return -1;
	if (o->size_max < o->size)
		BAD("--size MIN-MAX wants MIN <= MAX, not '%s'", v);
	return 0;
}

static int set_value(struct xt_load_opts *o, const struct xt_load_mode *m, int id, const char *v,
		     char *err, size_t errlen)
{
	const char *n = table[id].name;
	char opt[40];

	snprintf(opt, sizeof(opt), "--%s", n);
	switch (id) {
	case XO_TARGET:
		if (xt_endpoint(&o->to, &o->to_len, v, false))
			BAD("--target wants IP:PORT, [IPv6]:PORT or unix:PATH, not '%s'", v);
		o->target = v;
		return 0;
	case XO_PROTO:
		for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
			if (!strcmp(v, protos[i])) {
				o->proto = i;
				return 0;
			}
		}
		BAD("--proto wants tcp, http, line or label, not '%s'", v);
	case XO_SIZE:
		return parse_size(o, m, v, err, errlen);
	case XO_ANSWER:
		return xt_parse_size(opt, v, 1 << 30, &o->answer, err, errlen);
	case XO_RATE:
		return xt_parse_num(opt, v, 0, 1e8, &o->rate, err, errlen);
	case XO_SCENARIO:
		o->scenario = v;
		return 0;
	case XO_DURATION:
		return xt_parse_num(opt, v, 0.001, 1e6, &o->duration, err, errlen);
	case XO_REQUESTS:
		return xt_parse_int(opt, v, 1, 1000000000, &o->requests, err, errlen);
	case XO_CONNS:
		return xt_parse_int(opt, v, 0, 100000, &o->conns, err, errlen);
	case XO_PER_CONN:
		return xt_parse_int(opt, v, 0, 1000000000, &o->per_conn, err, errlen);
	case XO_MAX_AGE:
		return xt_parse_num(opt, v, 0, 1e6, &o->max_age, err, errlen);
	case XO_IDLE_TIMEOUT:
		return xt_parse_num(opt, v, 0, 1e6, &o->idle_timeout, err, errlen);
	case XO_TIMEOUT:
		return xt_parse_num(opt, v, 0.001, 1e6, &o->timeout, err, errlen);
	case XO_START:
		return xt_parse_num(opt, v, 0, 1e12, &o->start, err, errlen);
	case XO_WARMUP:
		return xt_parse_num(opt, v, 0, 1e6, &o->warmup, err, errlen);
	case XO_CSV:
		o->csv = v;
		return 0;
	case XO_SEED:
		return xt_parse_int(opt, v, 0, 0xffffffffl, &o->seed, err, errlen);
	case XO_BIND_PORT:
		return xt_parse_int(opt, v, 1, 65535, &o->bind_port, err, errlen);
	case XO_FLOWS:
		return xt_parse_int(opt, v, 1, 65535, &o->flows, err, errlen);
	case XO_INTERVAL:
		return xt_parse_num(opt, v, 0, 1e6, &o->interval, err, errlen);
	case XO_WAIT_FILE:
		o->wait_file = v;
		return 0;
	case XO_LISTEN:
		if (xt_endpoint(&o->at, &o->at_len, v, true))
			BAD("--listen wants IP:PORT, [IPv6]:PORT, unix:PATH or PORT, not '%s'", v);
		o->listen = v;
		return 0;
	case XO_LABEL:
		o->label = v;
		return 0;
	case XO_DELAY:
		return xt_parse_num(opt, v, 0, 3600, &o->delay, err, errlen);
	case XO_ERROR_RATE:
		return xt_parse_num(opt, v, 0, 1, &o->error_rate, err, errlen);
	case XO_REPLICA:
		return xt_parse_int(opt, v, 0, 1000000, &o->replica, err, errlen);
	case XO_RESET:
		o->reset = true;
		return 0;
	case XO_DUMP:
		o->dump = true;
		return 0;
	case XO_NEW:
		o->newconn = true;
		return 0;
	case XO_RETRY:
		o->retry = true;
		return 0;
	case XO_JSON:
		o->json = true;
		return 0;
	case XO_CONNECTED:
		o->connected = true;
		return 0;
	}
	BAD("--%s: not handled", n);
}

static int parse(struct xt_load_opts *o, const struct xt_load_mode *m, int argc, char **argv,
		 char *err, size_t errlen)
{
	const char *a = table[addr_opt(m)].name;
	struct option lopts[XO__COUNT + 1];
	char shorts[3 * XO__COUNT + 2] = ":";
	int nl = 0, c;

	/* Every option is known to the parser, so one a mode lacks gets a precise message. */
	for (int i = 0; i < XO__COUNT; i++) {
		lopts[nl++] = (struct option){ table[i].name, table[i].arg ? required_argument :
					       no_argument, NULL, 1000 + i };
		if (table[i].letter) {
			size_t l = strlen(shorts);

			shorts[l++] = table[i].letter;
			if (table[i].arg)
				shorts[l++] = ':';
			shorts[l] = 0;
		}
	}
	lopts[nl] = (struct option){ 0 };
	/* The old positional "ADDR PORT" first: its options would mislead (-l LABEL) */
	if (argc > 1 && argv[1][0] != '-' && (m->accepts & XO(addr_opt(m))))
		BAD("unexpected argument '%s': the address is --%s ADDR ('ADDR PORT' -> --%s "
		    "ADDR:PORT, IPv6: [ADDR]:PORT); %s %s --help", argv[1], a, a, tool(m), m->name);
	/* Whole long names only: getopt would take "--id" (an old name) for --idle-timeout */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		size_t l = strcspn(argv[i] + 2, "=");
		bool known = false;

		if (strncmp(argv[i], "--", 2))
			continue;
		for (int k = 0; k < XO__COUNT; k++)
			known |= strlen(table[k].name) == l && !strncmp(table[k].name, argv[i] + 2, l);
		if (!known)
			BAD("unknown option '%s'; %s %s --help lists the options", argv[i], tool(m),
			    m->name);
	}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, lopts, NULL)) != -1) {
		int id = -1;

		if (c >= 1000) {
			id = c - 1000;
		} else if (c == '?' || c == ':') {
			const char *what = argv[optind - 1];

			if (c == ':')
				BAD("%s wants a value; %s %s --help", what, tool(m), m->name);
			BAD("unknown option '%s'; %s %s --help lists the options", what, tool(m),
			    m->name);
		} else {
			for (int i = 0; i < XO__COUNT; i++)
				if (table[i].letter == c)
					id = i;
		}
		if (!(accepted(m) & XO(id)))
			BAD("--%s is not an option of %s %s; %s %s --help lists its options",
			    table[id].name, tool(m), m->name, tool(m), m->name);
		if (id == XO_HELP) {
			xt_load_help(stdout, m);
			return 1;
		}
		o->given |= XO(id);
		if (set_value(o, m, id, optarg, err, errlen))
			return -1;
	}
	if (optind < argc)
		BAD("unexpected argument '%s' (the address is --%s ADDR); %s %s --help",
		    argv[optind], a, tool(m), m->name);
	if ((m->accepts & XO(addr_opt(m))) && !(o->given & XO(addr_opt(m))) && !m->addr_optional)
		BAD("%s %s wants --%s ADDR (IP:PORT, [IPv6]:PORT, unix:PATH%s)", tool(m), m->name, a,
		    addr_opt(m) == XO_LISTEN ? " or PORT" : "");
	return 0;
}

int xt_load_parse(struct xt_load_opts *o, const struct xt_load_mode *m, int argc, char **argv,
		  char *err, size_t errlen)
{
	int r = parse(o, m, argc, argv, err, errlen);
	size_t l = strlen(err);

	if (r >= 0)
		return r;
	/* every usage error says where to look, and what an old spelling is now */
	if (!strstr(err, "--help"))
		l += snprintf(err + l, errlen - l, "; %s %s --help", tool(m), m->name);
	if (m->was && l < errlen)
		snprintf(err + l, errlen - l, " (renamed: %s)", m->was);
	return r;
}

void xt_load_opts_or_die(struct xt_load_opts *o, const struct xt_load_mode *m, int argc,
			 char **argv)
{
	char err[512];
	int r = xt_load_parse(o, m, argc, argv, err, sizeof(err));

	if (r > 0)
		exit(0);
	if (r < 0)
		xt_die(2, "%s", err);
}
