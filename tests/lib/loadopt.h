/* SPDX-License-Identifier: MIT */
/*
 * The one option set of the test tools, xm-load and xm-serve: every mode of
 * both takes its options from this table, so the same thing has the same
 * name in every mode, the client's address is always --target IP:PORT |
 * [IPv6]:PORT | unix:PATH, the server's always --listen (the same, or PORT),
 * and --help lists what the mode takes. A mode names the options it accepts
 * (a mask); any other is a usage error that says where to look.
 */
#ifndef XT_LOADOPT_H
#define XT_LOADOPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

enum xt_optid {
	XO_TARGET, XO_PROTO, XO_SIZE, XO_ANSWER, XO_RATE, XO_SCENARIO, XO_DURATION,
	XO_REQUESTS, XO_CONNS, XO_NEW, XO_PER_CONN, XO_MAX_AGE, XO_IDLE_TIMEOUT,
	XO_RETRY, XO_TIMEOUT, XO_START, XO_WARMUP, XO_CSV, XO_JSON, XO_SEED, XO_BIND_PORT,
	XO_FLOWS, XO_INTERVAL, XO_WAIT_FILE, XO_CONNECTED, XO_LISTEN, XO_LABEL, XO_DELAY,
	XO_ERROR_RATE, XO_RESET, XO_REPLICA, XO_DUMP, XO_HELP, XO__COUNT
};
#define XO(id) (1ull << (id))

enum xt_proto { XT_P_TCP, XT_P_HTTP, XT_P_LINE, XT_P_LABEL };

struct xt_load_opts {
	uint64_t given;		/* XO() bits of the options on the command line */
	struct sockaddr_storage to;
	socklen_t to_len;
	const char *target;
	enum xt_proto proto;
	size_t size, size_max;	/* size_max: "--size MIN-MAX" where a mode allows a range */
	size_t answer;
	double rate;
	const char *scenario;
	double duration;
	long requests;
	long conns;
	bool newconn;
	long per_conn;
	double max_age, idle_timeout;
	bool retry;
	double timeout;
	double start, warmup;
	const char *csv;
	bool json;
	long seed;
	long bind_port;
	long flows;
	double interval;
	const char *wait_file;
	bool connected;
	/* servers (xm-serve) */
	struct sockaddr_storage at;
	socklen_t at_len;
	const char *listen;
	const char *label;
	double delay;
	double error_rate;
	bool reset;
	long replica;
	bool dump;
};

struct xt_load_mode {
	const char *name;
	const char *summary;	/* what it does, for --help */
	uint64_t accepts;	/* XO() bits; --help and --json are always accepted */
	bool size_range;	/* --size takes MIN-MAX */
	bool addr_optional;	/* --target / --listen may be left out (the mode checks) */
	const char *was;	/* the old spelling -> the new one, added to a usage error */
	const char *tool;	/* NULL: xm-load */
};

/*
 * Parse argv (argv[0]: the mode name) into o, whose defaults the caller set.
 * 0: parsed; 1: --help was printed to stdout; -1: bad usage, the reason in
 * err (name the option and what it wants).
 */
int xt_load_parse(struct xt_load_opts *o, const struct xt_load_mode *m, int argc, char **argv,
		  char *err, size_t errlen);
/* xt_load_parse, ending the tool: exit 0 after --help, 2 on bad usage. */
void xt_load_opts_or_die(struct xt_load_opts *o, const struct xt_load_mode *m, int argc,
			 char **argv);
void xt_load_help(FILE *f, const struct xt_load_mode *m);
const char *xt_proto_name(enum xt_proto p);

#endif
