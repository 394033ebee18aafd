// SPDX-License-Identifier: MIT
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "opt.h"

const char *xt_tool = "xm-tool";

void xt_die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", xt_tool);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

int xt_run_mode(const struct xt_mode *modes, size_t n, int argc, char **argv, const char *usage)
{
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; argc > 1 && i < n; i++)
		if (!strcmp(argv[1], modes[i].name))
			return modes[i].run(argc - 1, argv + 1);
	fprintf(stderr, "%s", usage);
	return 2;
}

int xt_parse_num(const char *opt, const char *val, double min, double max, double *out,
		 char *err, size_t errlen)
{
	char *end;

	errno = 0;
	*out = strtod(val ? val : "", &end);
	if (!val || end == val || *end || errno || isnan(*out) || *out < min || *out > max) {
		snprintf(err, errlen, "%s wants a number from %g to %g, not '%s'", opt, min, max,
			 val ? val : "");
		return -1;
	}
	return 0;
}

int xt_parse_int(const char *opt, const char *val, long min, long max, long *out, char *err,
		 size_t errlen)
{
	char *end;

	errno = 0;
	*out = strtol(val ? val : "", &end, 10);
	if (!val || end == val || *end || errno || *out < min || *out > max) {
		snprintf(err, errlen, "%s wants an integer from %ld to %ld, not '%s'", opt, min, max,
			 val ? val : "");
		return -1;
	}
	return 0;
}

int xt_parse_size(const char *opt, const char *val, size_t max, size_t *out, char *err,
		  size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(val ? val : "", &end);
	if (end != val && (*end == 'K' || *end == 'k'))
		v *= 1024, end++;
	else if (end != val && (*end == 'M' || *end == 'm'))
		v *= 1024 * 1024, end++;
	if (!val || end == val || *end || errno || !(v >= 0) || v > max) {
		snprintf(err, errlen, "%s wants a size in bytes (K, M suffixes) up to %zu, not '%s'",
			 opt, max, val ? val : "");
		return -1;
	}
	*out = (size_t)v;
	return 0;
}

double xt_opt_num(const char *opt, const char *val, double min, double max)
{
	char err[256];
	double v;

	if (xt_parse_num(opt, val, min, max, &v, err, sizeof(err)))
		xt_die(2, "%s", err);
	return v;
}

long xt_opt_int(const char *opt, const char *val, long min, long max)
{
	char err[256];
	long v;

	if (xt_parse_int(opt, val, min, max, &v, err, sizeof(err)))
		xt_die(2, "%s", err);
	return v;
}

size_t xt_opt_size(const char *opt, const char *val, size_t max)
{
	char err[256];
	size_t v;

	if (xt_parse_size(opt, val, max, &v, err, sizeof(err)))
		xt_die(2, "%s", err);
	return v;
}
