// SPDX-License-Identifier: MIT
/* Unit tests: the test tools' one option table (xm-load and xm-serve) (tests/lib/loadopt) and one result format (tests/lib/result). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "lib/loadopt.h"
#include "lib/result.h"

static const struct xt_load_mode rr = {
	.name = "rr", .summary = "test",
	.accepts = XO(XO_TARGET) | XO(XO_PROTO) | XO(XO_SIZE) | XO(XO_RATE) | XO(XO_CONNS) |
		   XO(XO_NEW) | XO(XO_REQUESTS) | XO(XO_DURATION),
};
static const struct xt_load_mode udp = {
	.name = "udp-send", .summary = "test", .accepts = XO(XO_TARGET) | XO(XO_SIZE),
	.size_range = true,
};

static int parse(struct xt_load_opts *o, const struct xt_load_mode *m, char *err, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)m->name;
	va_start(ap, err);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	*o = (struct xt_load_opts){ 0 };
	err[0] = 0;
	return xt_load_parse(o, m, argc, argv, err, 256);
}

static void options_long_and_short_are_one(void **state)
{
	struct xt_load_opts o;
	char err[256];

	assert_int_equal(parse(&o, &rr, err, "--target", "10.0.0.1:80", "--proto", "http",
			       "--size", "4K", "--rate", "100", "--conns", "3", "--new", NULL), 0);
	assert_int_equal(o.proto, XT_P_HTTP);
	assert_int_equal(o.size, 4096);
	assert_true(o.rate == 100);
	assert_int_equal(o.conns, 3);
	assert_true(o.newconn);
	assert_int_equal(o.to.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&o.to)->sin_port), 80);
	assert_true(o.given & XO(XO_CONNS));
	assert_false(o.given & XO(XO_DURATION));
	assert_int_equal(parse(&o, &rr, err, "-t", "[fd00::1]:8080", "-P", "tcp", "-s", "64",
			       "-c", "2", "-n", "1000", "-d", "1.5", "-j", NULL), 0);
	assert_int_equal(o.to.ss_family, AF_INET6);
	assert_int_equal(o.requests, 1000);
	assert_true(o.duration == 1.5);
	assert_true(o.json); /* --json: every mode */
	assert_int_equal(parse(&o, &rr, err, "-t", "unix:/tmp/xm-x.sock", NULL), 0);
	assert_int_equal(o.to.ss_family, AF_UNIX);
}

static void bad_usage_says_what_to_do(void **state)
{
	struct xt_load_opts o;
	char err[256];

	assert_int_equal(parse(&o, &rr, err, "-r", "10", NULL), -1);
	assert_non_null(strstr(err, "--target"));
	assert_int_equal(parse(&o, &rr, err, "-t", "10.0.0.1", NULL), -1);
	assert_non_null(strstr(err, "IP:PORT"));
	/* an option of another mode: named, with where to look */
	assert_int_equal(parse(&o, &rr, err, "-t", "10.0.0.1:1", "--flows", "3", NULL), -1);
	assert_non_null(strstr(err, "--flows is not an option of xm-load rr"));
	assert_non_null(strstr(err, "--help"));
	assert_int_equal(parse(&o, &rr, err, "-t", "10.0.0.1:1", "--nonsense", NULL), -1);
	assert_non_null(strstr(err, "unknown option '--nonsense'"));
	assert_int_equal(parse(&o, &rr, err, "-t", "10.0.0.1:1", "--rate", "fast", NULL), -1);
	assert_non_null(strstr(err, "--rate wants a number"));
	assert_int_equal(parse(&o, &rr, err, "-t", "10.0.0.1:1", "-P", "quic", NULL), -1);
	assert_non_null(strstr(err, "--proto"));
	/* the old positional "VIP PORT" */
	assert_int_equal(parse(&o, &rr, err, "10.0.0.1", "80", NULL), -1);
	assert_non_null(strstr(err, "--target"));
	assert_int_equal(parse(&o, &rr, err, "-t", "10.0.0.1:1", "--size", "8-64", NULL), -1);
	assert_int_equal(parse(&o, &udp, err, "-t", "10.0.0.1:1", "--size", "8-64", NULL), 0);
	assert_int_equal(o.size, 8);
	assert_int_equal(o.size_max, 64);
	assert_int_equal(parse(&o, &udp, err, "-t", "10.0.0.1:1", "--size", "64-8", NULL), -1);
}

static const struct xt_load_mode serve_http = {
	.tool = "xm-serve", .name = "http", .summary = "test",
	.accepts = XO(XO_LISTEN) | XO(XO_LABEL) | XO(XO_DELAY) | XO(XO_ERROR_RATE) | XO(XO_RESET),
	.was = "-l L -> --label L",
};

/* A server takes its address the one way: --listen IP:PORT | [IPv6]:PORT | unix:PATH | PORT. */
static void servers_listen_one_way(void **state)
{
	struct xt_load_opts o;
	char err[256];

	assert_int_equal(parse(&o, &serve_http, err, "--listen", "10.0.0.1:80", "--label", "b1",
			       "--delay", "0.02", "--error-rate", "0.1", "--reset", NULL), 0);
	assert_int_equal(o.at.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&o.at)->sin_port), 80);
	assert_string_equal(o.label, "b1");
	assert_true(o.delay == 0.02 && o.error_rate == 0.1 && o.reset);
	assert_int_equal(parse(&o, &serve_http, err, "-l", "[fd00::1]:8080", NULL), 0);
	assert_int_equal(o.at.ss_family, AF_INET6);
	assert_int_equal(parse(&o, &serve_http, err, "-l", "unix:/tmp/xm-x.sock", NULL), 0);
	assert_int_equal(o.at.ss_family, AF_UNIX);
	assert_int_equal(parse(&o, &serve_http, err, "-l", "8080", NULL), 0);
	assert_int_equal(ntohs(((struct sockaddr_in *)&o.at)->sin_port), 8080);
	/* the old spellings: positional ADDR PORT, -l LABEL, -e; refused with the rename */
	assert_int_equal(parse(&o, &serve_http, err, "10.0.0.1", "80", "-l", "b1", NULL), -1);
	assert_non_null(strstr(err, "--listen ADDR:PORT"));
	assert_non_null(strstr(err, "-l L -> --label L"));
	assert_int_equal(parse(&o, &serve_http, err, "-l", "b1", NULL), -1);
	assert_non_null(strstr(err, "--listen wants"));
	assert_int_equal(parse(&o, &serve_http, err, "-l", "10.0.0.1:80", "-e", "0.1", NULL), -1);
	assert_non_null(strstr(err, "xm-serve http --help"));
	assert_int_equal(parse(&o, &serve_http, err, "--label", "b1", NULL), -1);
	assert_non_null(strstr(err, "wants --listen"));
	/* a client option on a server, and a server's --json (it prints no result) */
	assert_int_equal(parse(&o, &serve_http, err, "-l", "80", "--target", "10.0.0.1:80", NULL), -1);
	assert_non_null(strstr(err, "--target is not an option of xm-serve http"));
	assert_int_equal(parse(&o, &serve_http, err, "-l", "80", "-j", NULL), -1);
	/* whole long names only: "--id" (scenario's old --label) is not --idle-timeout */
	assert_int_equal(parse(&o, &rr, err, "-t", "10.0.0.1:1", "--id", "x", NULL), -1);
	assert_non_null(strstr(err, "unknown option '--id'"));
}

/* Print r to a string. */
static char *printed(struct xt_result *r, bool json)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	xt_res_print(f, r, json);
	fclose(f);
	return buf;
}

static void result_line_and_json_have_the_same_keys(void **state)
{
	struct xt_result r = { .mode = "rr" };
	struct xt_samples s = { 0 };
	char *line;

	for (int i = 1; i <= 100; i++)
		xt_samples_add(&s, i);
	xt_res_counts(&r, 100, 97);
	xt_res_set(&r, XK_ERR_TIMEOUT, 3);
	xt_res_latency(&r, &s);
	xt_res_backend(&r, "b1", 60);
	xt_res_backend(&r, "b 2", 37); /* a space would split the line */
	xt_res_backend(&r, "b1", 1);
	line = printed(&r, false);
	assert_string_equal(line, "mode=rr requests=100 ok=97 errors=3 err.timeout=3 success=0.97 "
			    "p50_us=50 p90_us=90 p99_us=99 p999_us=100 max_us=100 "
			    "backend.b1=61 backend.b_2=37\n");
	line = printed(&r, true);
	assert_string_equal(line, "{\"mode\":\"rr\",\"requests\":100,\"ok\":97,\"errors\":3,"
			    "\"err\":{\"timeout\":3},\"success\":0.97,\"p50_us\":50,\"p90_us\":90,"
			    "\"p99_us\":99,\"p999_us\":100,\"max_us\":100,"
			    "\"backend\":{\"b1\":61,\"b_2\":37}}\n");
	xt_samples_free(&s);
}

/*
 * One name per quantity: every key is unique, lower case, latencies end in
 * _us (one unit), and no key but the latency ones names a unit of time.
 */
static void keys_are_unique_and_in_one_unit(void **state)
{
	for (int a = 0; a < XK__COUNT; a++) {
		const char *n = xt_key_name(a);

		assert_non_null(n);
		assert_non_null(xt_key_help(a));
		for (const char *p = n; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				    *p == '_' || *p == '.');
		assert_null(strstr(n, "_ms"));
		assert_null(strstr(n, "latency"));
		for (int b = a + 1; b < XK__COUNT; b++)
			assert_string_not_equal(n, xt_key_name(b));
	}
	assert_string_equal(xt_key_name(XK_P99_US), "p99_us");
	assert_string_equal(xt_key_name(XK_REQUESTS), "requests");
	assert_string_equal(xt_key_name(XK_CONNS), "conns");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options_long_and_short_are_one),
		cmocka_unit_test(bad_usage_says_what_to_do),
		cmocka_unit_test(servers_listen_one_way),
		cmocka_unit_test(result_line_and_json_have_the_same_keys),
		cmocka_unit_test(keys_are_unique_and_in_one_unit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
