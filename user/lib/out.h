/* SPDX-License-Identifier: MIT */
/*
 * CLI output, bpftool style: every command builds one JSON value; -j prints
 * it, otherwise the command's plain printer formats the same value. Errors go
 * to stderr as "Error: ..." or, in JSON mode, to stdout as {"error": "..."}.
 */
#ifndef XMESH_OUT_H
#define XMESH_OUT_H

#include <stdbool.h>
#include <jansson.h>

extern bool xm_out_json;
extern bool xm_out_pretty;

void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print v as JSON (compact, or indented with -p) and release it. */
void xm_out_print_json(json_t *v);

#endif
