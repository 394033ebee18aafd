/* SPDX-License-Identifier: MIT */
/*
 * Command-line values for the test tools. A bad value ends the tool with
 * exit code 2 and a message naming the option and what it accepts, instead
 * of atoi()'s silent 0.
 */
#ifndef XT_OPT_H
#define XT_OPT_H

#include <stddef.h>

/* The same checks, returning 0, or -1 with the message in err (for parsers that report). */
int xt_parse_num(const char *opt, const char *val, double min, double max, double *out,
		 char *err, size_t errlen);
int xt_parse_int(const char *opt, const char *val, long min, long max, long *out, char *err,
		 size_t errlen);
int xt_parse_size(const char *opt, const char *val, size_t max, size_t *out, char *err,
		  size_t errlen);
/* A number in [min, max]. */
double xt_opt_num(const char *opt, const char *val, double min, double max);
long xt_opt_int(const char *opt, const char *val, long min, long max);
/* Bytes, with an optional K or M suffix (1024-based): "64K". */
size_t xt_opt_size(const char *opt, const char *val, size_t max);
/* Print "TOOL: message" and exit with code. */
void __attribute__((noreturn, format(printf, 2, 3))) xt_die(int code, const char *fmt, ...);

extern const char *xt_tool;

/* A tool of modes: "TOOL MODE ARGS...". */
struct xt_mode {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0]: the mode's name */
};

/* Run the mode argv[1] names (SIGPIPE ignored), or print usage and return 2. */
int xt_run_mode(const struct xt_mode *modes, size_t n, int argc, char **argv, const char *usage); /* set by main: the prefix of messages */

#endif
