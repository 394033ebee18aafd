// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1.h"

size_t xt_http_head_len(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);

	return end ? (size_t)(end + 4 - buf) : 0;
}

int xt_http_header(const char *head, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = memmem(head, len, "\r\n", 2), *end = head + len;

	while (p && p + 2 < end) {
		const char *line = p + 2, *eol = memmem(line, end - line, "\r\n", 2);

		if (!eol || eol == line)
			break;
		if ((size_t)(eol - line) > nlen && line[nlen] == ':' && !strncasecmp(line, name, nlen)) {
			const char *v = line + nlen + 1;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			snprintf(out, outlen, "%.*s", (int)(eol - v), v);
			return 0;
		}
		p = eol;
	}
	return -1;
}

static bool wants_close(const char *head, size_t len)
{
	char v[32];

	return !xt_http_header(head, len, "Connection", v, sizeof(v)) && !strcasecmp(v, "close");
}

int xt_http_parse_request(const char *head, size_t len, struct xt_http_req *r)
{
	const char *sp1, *sp2, *eol = memmem(head, len, "\r\n", 2);

	memset(r, 0, sizeof(*r));
	if (!eol)
		return -1;
	sp1 = memchr(head, ' ', eol - head);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', eol - sp1 - 1) : NULL;
	if (!sp1 || !sp2 || sp1 == head || (size_t)(sp1 - head) >= sizeof(r->method) ||
	    (size_t)(sp2 - sp1 - 1) >= sizeof(r->path) || eol - sp2 - 1 < 8 ||
	    strncmp(sp2 + 1, "HTTP/1.", 7))
		return -1;
	memcpy(r->method, head, sp1 - head);
	memcpy(r->path, sp1 + 1, sp2 - sp1 - 1);
	r->close = wants_close(head, len);
	return 0;
}

int xt_http_parse_response(const char *head, size_t len, struct xt_http_resp *r)
{
	char v[32], *end;

	memset(r, 0, sizeof(*r));
	if (len < 12 || strncmp(head, "HTTP/1.", 7) || head[8] != ' ')
		return -1;
	r->status = (int)strtol(head + 9, &end, 10);
	if (end != head + 12 || r->status < 100 || r->status > 599)
		return -1;
	r->content_length = -1;
	if (!xt_http_header(head, len, "Content-Length", v, sizeof(v))) {
		r->content_length = strtol(v, &end, 10);
		if (end == v || *end || r->content_length < 0)
			return -1;
	}
	r->close = wants_close(head, len);
	xt_http_header(head, len, "X-Backend", r->backend, sizeof(r->backend));
	if (!xt_http_header(head, len, "X-Sent-Ns", v, sizeof(v))) {
		r->sent_ns = strtoll(v, &end, 10);
		if (end == v || *end || r->sent_ns < 0)
			return -1;
	}
	return 0;
}
