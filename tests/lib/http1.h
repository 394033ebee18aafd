/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.x heads as the test servers and load generators exchange them:
 * enough of RFC 9112 for one request line or status line and header fields,
 * no folding, no chunked bodies (every answer has Content-Length).
 */
#ifndef XT_HTTP1_H
#define XT_HTTP1_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of the head through its blank line; 0 while incomplete. */
size_t xt_http_head_len(const char *buf, size_t len);

struct xt_http_req {
	char method[16];
	char path[256];
	bool close; /* "Connection: close" */
};

struct xt_http_resp {
	int status;
	long content_length; /* -1: absent */
	bool close;
	char backend[64]; /* X-Backend, "" when absent */
	long long sent_ns; /* X-Sent-Ns (the server's CLOCK_REALTIME at send), 0 when absent */
};

/* Parse a complete head (xt_http_head_len bytes); 0, or -1 when malformed. */
int xt_http_parse_request(const char *head, size_t len, struct xt_http_req *r);
int xt_http_parse_response(const char *head, size_t len, struct xt_http_resp *r);
/* The value of header NAME (case-insensitive) into out; 0, or -1 when absent. */
int xt_http_header(const char *head, size_t len, const char *name, char *out, size_t outlen);

#endif
