// SPDX-License-Identifier: MIT
/* Unit tests: the test tools' shared library (tests/lib). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "lib/addr.h"
#include "lib/http1.h"
#include "lib/pctl.h"

static void pctl_is_nearest_rank(void **state)
{
	struct xt_samples s = { 0 };

	assert_true(isnan(xt_pctl(&s, 0.5)));
	for (int i = 100; i >= 1; i--)
		xt_samples_add(&s, i);
	/* the smallest sample with at least q*n samples at or below it */
	assert_true(xt_pctl(&s, 0.5) == 50);
	assert_true(xt_pctl(&s, 0.99) == 99);
	assert_true(xt_pctl(&s, 0.999) == 100);
	assert_true(xt_pctl(&s, 0) == 1);
	assert_true(xt_max(&s) == 100);
	xt_samples_add(&s, 0.5); /* unsorted again: 101 samples */
	assert_true(xt_pctl(&s, 0.5) == 50);
	assert_true(xt_pctl(&s, 0.01) == 1);
	xt_samples_free(&s);
}

static void endpoints(void **state)
{
	struct sockaddr_storage ss, o;
	socklen_t len, olen;
	char buf[80];

	assert_int_equal(xt_endpoint(&ss, &len, "10.1.2.3:80", false), 0);
	assert_string_equal(xt_endpoint_str(&ss, buf, sizeof(buf)), "10.1.2.3:80");
	assert_int_equal(xt_endpoint(&ss, &len, "[fd00::1]:8080", false), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_string_equal(xt_endpoint_str(&ss, buf, sizeof(buf)), "[fd00::1]:8080");
	/* v4-mapped stays IPv6: tests use it for IPv4-mapped sockets */
	assert_int_equal(xt_endpoint(&ss, &len, "[::ffff:10.0.0.1]:1", false), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(xt_endpoint(&ss, &len, "unix:/tmp/x", false), 0);
	assert_string_equal(xt_endpoint_str(&ss, buf, sizeof(buf)), "unix:/tmp/x");
	assert_int_equal(xt_endpoint(&ss, &len, "8080", true), 0);
	assert_string_equal(xt_endpoint_str(&ss, buf, sizeof(buf)), "0.0.0.0:8080");
	assert_int_equal(xt_endpoint(&ss, &len, ":8080", true), 0);
	assert_int_equal(xt_endpoint(&ss, &len, "8080", false), -1);
	assert_int_equal(xt_endpoint(&ss, &len, "fd00::1:80", false), -1);
	assert_int_equal(xt_endpoint(&ss, &len, "10.0.0.1:99999", false), -1);
	assert_int_equal(xt_endpoint(&ss, &len, "10.0.0.1:", false), -1);
	assert_int_equal(xt_endpoint(&ss, &len, "host:80", false), -1);
	assert_int_equal(xt_endpoint(&ss, &len, "10.0.0.1:80", false), 0);
	assert_int_equal(xt_sockaddr(&o, &olen, "10.0.0.1", 80), 0);
	assert_true(xt_same_endpoint(&ss, &o));
	assert_int_equal(xt_sockaddr(&o, &olen, "10.0.0.1", 81), 0);
	assert_false(xt_same_endpoint(&ss, &o));
}

static void http_heads(void **state)
{
	static const char req[] = "GET /64 HTTP/1.1\r\nHost: x\r\nconnection:  Close\r\n\r\nGET /1";
	static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\nX-Backend: 3\r\n"
				   "Content-Length: 12\r\n\r\nbody";
	struct xt_http_req rq;
	struct xt_http_resp rs;
	size_t n;

	assert_int_equal(xt_http_head_len(req, 20), 0);
	n = xt_http_head_len(req, sizeof(req) - 1);
	assert_int_equal(n, sizeof(req) - 1 - 6);
	assert_int_equal(xt_http_parse_request(req, n, &rq), 0);
	assert_string_equal(rq.method, "GET");
	assert_string_equal(rq.path, "/64");
	assert_true(rq.close);
	n = xt_http_head_len(resp, sizeof(resp) - 1);
	assert_int_equal(xt_http_parse_response(resp, n, &rs), 0);
	assert_int_equal(rs.status, 503);
	assert_int_equal(rs.content_length, 12);
	assert_string_equal(rs.backend, "3");
	assert_false(rs.close);
	assert_int_equal(xt_http_parse_response("HTTP/1.1 2000 OK\r\n\r\n", 20, &rs), -1);
	assert_int_equal(xt_http_parse_response("SSH-2.0 x\r\n\r\n", 13, &rs), -1);
	assert_int_equal(xt_http_parse_request("GET /\r\n\r\n", 9, &rq), -1);
	/* a header name that is only a prefix of another does not match */
	assert_int_equal(xt_http_parse_response("HTTP/1.0 200 OK\r\nX-Backend-Id: 9\r\n\r\n", 36,
						&rs), 0);
	assert_string_equal(rs.backend, "");
	assert_int_equal(rs.content_length, -1);
	assert_int_equal(rs.sent_ns, 0);
	/* X-Sent-Ns: the server's send time, a number or the head is malformed */
	assert_int_equal(xt_http_parse_response("HTTP/1.1 200 OK\r\nX-Sent-Ns: 1796400000123456789\r\n\r\n",
						51, &rs), 0);
	assert_true(rs.sent_ns == 1796400000123456789LL);
	assert_int_equal(xt_http_parse_response("HTTP/1.1 200 OK\r\nX-Sent-Ns: 12x\r\n\r\n", 35, &rs),
			 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pctl_is_nearest_rank),
		cmocka_unit_test(endpoints),
		cmocka_unit_test(http_heads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
