// SPDX-License-Identifier: MIT
/*
 * Config "probes" and "redirect_recv_counters" (user/lib/lbconfig.c), and
 * which algorithms need the probes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "lbconfig.h"

static int parse(const char *text, struct xm_lb_conf *c, char *err, size_t len)
{
	return xm_lb_conf_parse("f.json", text, strlen(text), c, err, len);
}

static void probes_default_all(void **state)
{
	struct xm_lb_conf c;
	char err[600];

	(void)state;
	assert_int_equal(parse("{\"services\": []}", &c, err, sizeof(err)), 0);
	assert_int_equal(c.probes, XM_LB_PROBES_ALL);
	xm_lb_conf_free(&c);
	assert_int_equal(parse("{\"probes\": \"all\"}", &c, err, sizeof(err)), 0);
	assert_int_equal(c.probes, XM_LB_PROBES_ALL);
	xm_lb_conf_free(&c);
	assert_int_equal(parse("{\"probes\": \"weighted\"}", &c, err, sizeof(err)), 0);
	assert_int_equal(c.probes, XM_LB_PROBES_WEIGHTED);
	xm_lb_conf_free(&c);
}

/* Each text (the bad value on its line 2) is rejected there, with this message. */
static void assert_rejected_on_line2(const char *const *bad, size_t n, const char *message)
{
	struct xm_lb_conf c;
	char err[600];

	for (size_t i = 0; i < n; i++) {
		assert_int_equal(parse(bad[i], &c, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "f.json:2:"));
		assert_non_null(strstr(err, message));
	}
}

static void probes_bad_values_located(void **state)
{
	static const char *const bad[] = { "{\n \"probes\": \"some\"}", "{\n \"probes\": true}",
					   "{\n \"probes\": 1}", "{\n \"probes\": \"Weighted\"}" };

	(void)state;
	assert_rejected_on_line2(bad, sizeof(bad) / sizeof(bad[0]), "\"probes\" must be \"all\"");
}

/* Off unless asked: the counters' program runs for every recvmsg of the node. */
static void recv_counters_off_by_default(void **state)
{
	struct xm_lb_conf c;
	char err[600];

	(void)state;
	assert_int_equal(parse("{\"services\": []}", &c, err, sizeof(err)), 0);
	assert_false(c.redirect_recv_counters);
	xm_lb_conf_free(&c);
	assert_int_equal(parse("{\"redirect_recv_counters\": true}", &c, err, sizeof(err)), 0);
	assert_true(c.redirect_recv_counters);
	xm_lb_conf_free(&c);
	assert_int_equal(parse("{\"redirect_recv_counters\": false}", &c, err, sizeof(err)), 0);
	assert_false(c.redirect_recv_counters);
	xm_lb_conf_free(&c);
}

static void recv_counters_bad_values_located(void **state)
{
	static const char *const bad[] = { "{\n \"redirect_recv_counters\": \"true\"}",
					   "{\n \"redirect_recv_counters\": 1}",
					   "{\n \"redirect_recv_counters\": null}" };

	(void)state;
	assert_rejected_on_line2(bad, sizeof(bad) / sizeof(bad[0]),
				 "\"redirect_recv_counters\" must be true");
}

static void algorithms_that_read_probes(void **state)
{
	(void)state;
	assert_false(xm_lb_algo_reads_probes("static"));
	assert_false(xm_lb_algo_reads_probes("round-robin"));
	assert_false(xm_lb_algo_reads_probes("nonsense"));
	assert_true(xm_lb_algo_reads_probes("l3"));
	assert_true(xm_lb_algo_reads_probes("l3-peak"));
	assert_true(xm_lb_algo_reads_probes("c3"));
	assert_true(xm_lb_algo_reads_probes("l3x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(probes_default_all),
		cmocka_unit_test(probes_bad_values_located),
		cmocka_unit_test(recv_counters_off_by_default),
		cmocka_unit_test(recv_counters_bad_values_located),
		cmocka_unit_test(algorithms_that_read_probes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
