// SPDX-License-Identifier: MIT
/*
 * xm_rebal_quota_take (include/xmesh/rebalance.h): the quota the rebalancing
 * iterator and the read hook spend at once is never overspent and never
 * wraps, and every mark is counted with its unit. The kernel runs the same
 * inline function; here threads stand in for CPUs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <cmocka.h>
#include <linux/types.h>
#include <xmesh/rebalance.h>

#define TAKERS 4
#define UNITS 1000000

static struct xm_rebal_be be;
static pthread_barrier_t start;

struct taker {
	int mark;
	unsigned long taken;
};

static void *take_all(void *arg)
{
	struct taker *t = arg;

	pthread_barrier_wait(&start);
	/* until the quota is empty (or, wrapped, far past it); a lost exchange is retried */
	while (__atomic_load_n(&be.quota, __ATOMIC_RELAXED) && t->taken <= UNITS)
		t->taken += xm_rebal_quota_take((__u64 *)&be.quota, t->mark);
	return NULL;
}

static void test_empty_quota_stays_empty(void **state)
{
	(void)state;
	be = (struct xm_rebal_be){ .quota = 0, .marked = 7 };
	assert_int_equal(xm_rebal_quota_take((__u64 *)&be.quota, 1), 0);
	assert_int_equal(xm_rebal_quota_take((__u64 *)&be.quota, 0), 0);
	assert_int_equal(be.quota, 0);
	assert_int_equal(be.marked, 7);
}

static void test_one_unit_one_taker(void **state)
{
	(void)state;
	be = (struct xm_rebal_be){ .quota = 1, .held = 5 };
	assert_int_equal(xm_rebal_quota_take((__u64 *)&be.quota, 1), 1);
	assert_int_equal(xm_rebal_quota_take((__u64 *)&be.quota, 0), 0);
	assert_int_equal(be.quota, 0);
	assert_int_equal(be.marked, 1);
	assert_int_equal(be.held, 5); /* the neighbours of the word are not touched */
}

/* Passes and read marks racing: exactly the quota taken, the marks counted. */
static void test_racing_takers_never_overspend(void **state)
{
	struct taker t[TAKERS];
	pthread_t th[TAKERS];
	unsigned long taken = 0, marks = 0;

	(void)state;
	be = (struct xm_rebal_be){ .quota = UNITS };
	assert_int_equal(pthread_barrier_init(&start, NULL, TAKERS), 0);
	for (int i = 0; i < TAKERS; i++) {
		t[i] = (struct taker){ .mark = i & 1 };
		assert_int_equal(pthread_create(&th[i], NULL, take_all, &t[i]), 0);
	}
	for (int i = 0; i < TAKERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		taken += t[i].taken;
		marks += t[i].mark ? t[i].taken : 0;
	}
	pthread_barrier_destroy(&start);
	assert_int_equal(be.quota, 0);
	assert_int_equal(taken, UNITS);
	assert_int_equal(be.marked, marks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_quota_stays_empty),
		cmocka_unit_test(test_one_unit_one_taker),
		cmocka_unit_test(test_racing_takers_never_overspend),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
