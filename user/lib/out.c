// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include "out.h"

bool xm_out_json;
bool xm_out_pretty;

void p_err(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (xm_out_json) {
		json_t *o = json_pack("{s:s}", "error", msg);

		/* JSON strings are UTF-8: bytes of an argument that are not go out as '?'. */
		if (!o) {
			for (char *p = msg; *p; p++)
				if ((unsigned char)*p >= 0x80)
					*p = '?';
			o = json_pack("{s:s}", "error", msg);
		}
		xm_out_print_json(o);
	} else {
		fprintf(stderr, "Error: %s\n", msg);
	}
}

void xm_out_print_json(json_t *v)
{
	size_t flags = JSON_SORT_KEYS | JSON_ENCODE_ANY |
		       (xm_out_pretty ? JSON_INDENT(2) : JSON_COMPACT);

	json_dumpf(v, stdout, flags);
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(v);
}
