/* SPDX-License-Identifier: MIT */
/* One line per event to stderr, with levels. */
#ifndef XMESH_LOG_H
#define XMESH_LOG_H

#include <stdio.h>

enum xm_log_level { XM_LOG_ERROR, XM_LOG_WARN, XM_LOG_INFO, XM_LOG_DEBUG };

extern enum xm_log_level xm_log_threshold;

void xm_log(enum xm_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Also write every line to f (e.g. a log file of a short-lived tool); NULL stops. */
void xm_log_copy_to(FILE *f);
int xm_log_parse_level(const char *s, enum xm_log_level *out);
/* Route libbpf's messages through xm_log: warnings as debug unless asked. */
void xm_log_setup_libbpf(void);

#define pr_err(...) xm_log(XM_LOG_ERROR, __VA_ARGS__)
#define pr_warn(...) xm_log(XM_LOG_WARN, __VA_ARGS__)
#define pr_info(...) xm_log(XM_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) xm_log(XM_LOG_DEBUG, __VA_ARGS__)

#endif
