// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <bpf/libbpf.h>
#include "log.h"

enum xm_log_level xm_log_threshold = XM_LOG_INFO;
static FILE *log_copy;

void xm_log_copy_to(FILE *f)
{
	log_copy = f;
}

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static void vlog(enum xm_log_level lvl, const char *fmt, va_list ap)
{
	struct timespec ts;
	char line[1024], stamp[32];
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	fprintf(stderr, "%s.%03ldZ %s: %s\n", stamp, ts.tv_nsec / 1000000, level_names[lvl], line);
	if (log_copy) {
		fprintf(log_copy, "%s.%03ldZ %s: %s\n", stamp, ts.tv_nsec / 1000000,
			level_names[lvl], line);
		fflush(log_copy);
	}
}

void xm_log(enum xm_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > xm_log_threshold)
		return;
	va_start(ap, fmt);
	vlog(lvl, fmt, ap);
	va_end(ap);
}

int xm_log_parse_level(const char *s, enum xm_log_level *out)
{
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcasecmp(s, level_names[i])) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf is chatty; its output only helps when debugging a load. */
	if (xm_log_threshold < XM_LOG_DEBUG)
		return 0;
	if (level == LIBBPF_DEBUG)
		return 0;
	vlog(XM_LOG_DEBUG, fmt, ap);
	return 0;
}

void xm_log_setup_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
