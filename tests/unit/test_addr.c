// SPDX-License-Identifier: MIT
/* Unit tests: address parsing and normalisation (user/lib/addr.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "addr.h"

static void parses_ipv4(void **state)
{
	struct xm_addr a;
	__u8 fam;

	assert_int_equal(xm_addr_parse("10.1.2.3", &fam, &a), 0);
	assert_int_equal(fam, AF_INET);
	assert_int_equal(a.ip[0], htonl(0x0a010203));
	assert_int_equal(a.ip[1] | a.ip[2] | a.ip[3], 0);
}

static void normalises_v4_mapped(void **state)
{
	struct xm_addr a, b;
	__u8 fa, fb;

	assert_int_equal(xm_addr_parse("::ffff:10.1.2.3", &fa, &a), 0);
	assert_int_equal(xm_addr_parse("10.1.2.3", &fb, &b), 0);
	assert_int_equal(fa, AF_INET);
	/* the same key bytes as the plain IPv4 form: both ends meet in the map */
	assert_memory_equal(&a, &b, sizeof(a));
}

static void keeps_ipv6(void **state)
{
	char buf[XM_ADDR_STRLEN];
	struct xm_addr a;
	__u8 fam;

	assert_int_equal(xm_addr_parse("fd00::1", &fam, &a), 0);
	assert_int_equal(fam, AF_INET6);
	assert_string_equal(xm_addr_str(fam, &a, buf, sizeof(buf)), "fd00::1");
	assert_false(xm_addr_is_loopback(fam, &a));
	assert_int_equal(xm_addr_parse("::1", &fam, &a), 0);
	assert_true(xm_addr_is_loopback(fam, &a));
}

static void rejects_garbage(void **state)
{
	const char *bad[] = { "", "10.0.0.256", "10.0.0", "fd00:::1", "hello", "10.0.0.1/24", NULL };
	struct xm_addr a;
	__u8 fam;

	for (int i = 0; bad[i]; i++)
		assert_int_equal(xm_addr_parse(bad[i], &fam, &a), -EINVAL);
}

static void parses_addr_port(void **state)
{
	struct xm_addr a;
	__u16 port;
	__u8 fam;

	assert_int_equal(xm_addr_port_parse("10.96.0.10:80", &fam, &a, &port), 0);
	assert_int_equal(port, 80);
	assert_int_equal(fam, AF_INET);
	assert_int_equal(xm_addr_port_parse("[fd00::10]:443", &fam, &a, &port), 0);
	assert_int_equal(port, 443);
	assert_int_equal(fam, AF_INET6);
	assert_int_equal(xm_addr_port_parse("fd00::10:443", &fam, &a, &port), -EINVAL);
	assert_int_equal(xm_addr_port_parse("10.0.0.1:0", &fam, &a, &port), -EINVAL);
	assert_int_equal(xm_addr_port_parse("10.0.0.1:65536", &fam, &a, &port), -EINVAL);
	assert_int_equal(xm_addr_port_parse("10.0.0.1:", &fam, &a, &port), -EINVAL);
	assert_int_equal(xm_addr_port_parse("10.0.0.1", &fam, &a, &port), -EINVAL);
	assert_int_equal(xm_addr_port_parse("[fd00::1]80", &fam, &a, &port), -EINVAL);
}

static void loopback_ipv4_is_slash8(void **state)
{
	struct xm_addr a;
	__u8 fam;

	xm_addr_parse("127.5.6.7", &fam, &a);
	assert_true(xm_addr_is_loopback(fam, &a));
	xm_addr_parse("128.0.0.1", &fam, &a);
	assert_false(xm_addr_is_loopback(fam, &a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_ipv4),
		cmocka_unit_test(normalises_v4_mapped),
		cmocka_unit_test(keeps_ipv6),
		cmocka_unit_test(rejects_garbage),
		cmocka_unit_test(parses_addr_port),
		cmocka_unit_test(loopback_ipv4_is_slash8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
