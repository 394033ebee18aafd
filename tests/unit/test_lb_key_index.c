// SPDX-License-Identifier: MIT
/* Unit tests: services by key (xm_lb_key_index, user/lib/lbconfig.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "lbconfig.h"

/* A list whose entries hold the key away from their start, as the agent's do. */
struct entry {
	char before[40];
	struct xm_lb_svc_key key;
	int after;
};

static void key_of(struct xm_lb_svc_key *k, unsigned int i)
{
	char s[64];

	snprintf(s, sizeof(s), "10.%u.%u.1:%u%s", i / 250, i % 250, 80 + i % 3,
		 i % 2 ? "/udp" : "");
	assert_int_equal(xm_lb_svc_key_parse(s, k), 0);
}

static void finds_every_key_and_only_those(void **state)
{
	enum { N = 3000 };
	struct entry *e = calloc(N, sizeof(*e));
	struct xm_lb_key_index ix;
	struct xm_lb_svc_key k;

	assert_non_null(e);
	for (unsigned int i = 0; i < N; i++)
		key_of(&e[i].key, i);
	assert_int_equal(xm_lb_key_index_init(&ix, &e[0].key, N, sizeof(e[0])), 0);
	for (unsigned int i = 0; i < N; i++) {
		key_of(&k, i);
		assert_int_equal(xm_lb_key_index_find(&ix, &k), i);
	}
	key_of(&k, N + 1);
	assert_int_equal(xm_lb_key_index_find(&ix, &k), -1);
	k = e[7].key;
	k.proto = k.proto == IPPROTO_TCP ? IPPROTO_UDP : IPPROTO_TCP;
	assert_int_equal(xm_lb_key_index_find(&ix, &k), -1);
	xm_lb_key_index_free(&ix);
	free(e);
}

static void empty_list_and_duplicates(void **state)
{
	struct entry e[3] = {};
	struct xm_lb_key_index ix;

	assert_int_equal(xm_lb_key_index_init(&ix, NULL, 0, sizeof(e[0])), 0);
	key_of(&e[0].key, 5);
	assert_int_equal(xm_lb_key_index_find(&ix, &e[0].key), -1);
	xm_lb_key_index_free(&ix);
	e[1].key = e[0].key;
	key_of(&e[2].key, 6);
	assert_int_equal(xm_lb_key_index_init(&ix, &e[0].key, 3, sizeof(e[0])), 0);
	assert_int_equal(xm_lb_key_index_find(&ix, &e[1].key), 0); /* the first */
	assert_int_equal(xm_lb_key_index_find(&ix, &e[2].key), 2);
	xm_lb_key_index_free(&ix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(finds_every_key_and_only_those),
		cmocka_unit_test(empty_list_and_duplicates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
