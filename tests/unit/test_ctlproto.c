// SPDX-License-Identifier: MIT
/*
 * Unit tests: the agent's control protocol parser (user/lib/ctlproto.c).
 * What xmeshctl sends parses; a member a command does not take, or a line
 * with a NUL in it, is an error that names what is wrong instead of being
 * dropped (a misspelt "wieght" or a "{...}\0junk" line used to pass).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>
#include "ctlproto.h"

static int parse(const char *line, size_t len, char *err, size_t errlen)
{
	struct xm_ctl_request r;
	int ret = xm_ctl_request_parse(line, len, &r, err, errlen);

	if (!ret)
		xm_ctl_request_free(&r);
	return ret;
}

static void takes_what_xmeshctl_sends(void **state)
{
	static const char *const ok[] = {
		"{\"cmd\":\"reload\"}",
		"{\"cmd\":\"service-del\",\"service\":\"10.96.0.10:80\"}",
		"{\"cmd\":\"backend-weight\",\"service\":\"10.96.0.10:80/udp\","
		"\"backend\":\"10.0.0.3:8080\",\"weight\":2.5}",
		"{\"cmd\":\"service-add\",\"service\":{\"vip\":\"10.96.0.10\",\"port\":80,"
		"\"backends\":[{\"address\":\"10.0.0.3\",\"port\":8080}]}}",
	};
	char err[600];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (parse(ok[i], strlen(ok[i]), err, sizeof(err)))
			fail_msg("'%s' refused: %s", ok[i], err);
}

static void refuses_members_a_cmd_does_not_take(void **state)
{
	static const struct {
		const char *in, *says;
	} cases[] = {
		{ "{\"cmd\":\"reload\",\"force\":true}", "cmd \"reload\" takes no \"force\"" },
		{ "{\"cmd\":\"service-del\",\"service\":\"10.96.0.10:80\",\"backend\":\"x\"}",
		  "takes no \"backend\"; it takes: service" },
		{ "{\"cmd\":\"backend-weight\",\"service\":\"10.96.0.10:80\","
		  "\"backend\":\"10.0.0.3:8080\",\"weight\":2,\"wieght\":3}",
		  "takes no \"wieght\"; it takes: service, backend, weight" },
		{ "{\"cmd\":\"service-add\",\"service\":{},\"services\":[]}", "takes no \"services\"" },
		/* a prefix or an extension of a known name is not that name */
		{ "{\"cmd\":\"service-del\",\"serv\":\"10.96.0.10:80\"}", "takes no \"serv\"" },
	};
	char err[600];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse(cases[i].in, strlen(cases[i].in), err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' accepted", cases[i].in);
		if (!strstr(err, cases[i].says))
			fail_msg("'%s': error '%s' does not say '%s'", cases[i].in, err,
				 cases[i].says);
	}
}

static void a_nul_is_not_the_end_of_the_request(void **state)
{
	static const char line[] = "{\"cmd\":\"reload\"}\0{\"cmd\":\"service-del\"}";
	char err[600];

	assert_int_equal(parse(line, sizeof(line) - 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL byte at offset 16"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(takes_what_xmeshctl_sends),
		cmocka_unit_test(refuses_members_a_cmd_does_not_take),
		cmocka_unit_test(a_nul_is_not_the_end_of_the_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
