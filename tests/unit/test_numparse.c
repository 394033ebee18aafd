// SPDX-License-Identifier: MIT
/*
 * Unit tests: the one strict number parser of agent flags and xmeshctl
 * arguments (user/lib/numparse.c). strtol(s, NULL, 10) took "5x" for 5 and
 * "abc" for 0 (xmeshctl top count abc ran forever); strtod took "nan".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <limits.h>
#include <cmocka.h>
#include "numparse.h"

static void takes_whole_numbers_in_range(void **state)
{
	unsigned int v = 7;

	assert_int_equal(xm_uint_parse("0", 0, 60000, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(xm_uint_parse("60000", 0, 60000, &v), 0);
	assert_int_equal(v, 60000);
	assert_int_equal(xm_uint_parse("8080", 1, 65535, &v), 0);
	assert_int_equal(v, 8080);
	assert_int_equal(xm_uint_parse("4294967295", 0, UINT_MAX, &v), 0);
	assert_int_equal(v, UINT_MAX);
}

static void refuses_junk_and_out_of_range(void **state)
{
	static const char *const bad[] = {
		"", "abc", "5x", "500ms", " 80", "80 ", "-1", "0", "65536", "1.5", "nan", "inf",
		"4294967296", "1e400", "--1",
	};
	unsigned int v = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (xm_uint_parse(bad[i], 1, 65535, &v) == 0)
			fail_msg("'%s' taken as %u", bad[i], v);
	assert_int_equal(v, 42); /* untouched on failure */
	assert_int_not_equal(xm_uint_parse(NULL, 0, 1, &v), 0);
}

static void numbers_are_finite(void **state)
{
	double d = 0;

	assert_int_equal(xm_number_parse("1.5", 0, 1e9, &d), 0);
	assert_true(d == 1.5);
	assert_int_equal(xm_number_parse("1e3", 0, 1e9, &d), 0);
	assert_true(d == 1000);
	assert_int_not_equal(xm_number_parse("nan", 0, 1e9, &d), 0);
	assert_int_not_equal(xm_number_parse("NaN", -1e9, 1e9, &d), 0);
	assert_int_not_equal(xm_number_parse("inf", 0, 1e9, &d), 0);
	assert_int_not_equal(xm_number_parse("1e300", 0, 1e9, &d), 0);
	assert_int_not_equal(xm_number_parse("2s", 0, 1e9, &d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(takes_whole_numbers_in_range),
		cmocka_unit_test(refuses_junk_and_out_of_range),
		cmocka_unit_test(numbers_are_finite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
