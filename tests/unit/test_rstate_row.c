// SPDX-License-Identifier: MIT
/*
 * The published rebalancing row (user/lib/rstaterow.c): a pass that changes
 * nothing leaves the row as it was (no write to the shared page), a change
 * is written at once, and the retired rate does not depend on how long the
 * row stayed unchanged before.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rstaterow.h"

#define S 1000000000ULL
#define TICK 0.5

static void unchanged_pass_writes_nothing(void **state)
{
	struct xm_lb_rstate o = { 0 };
	struct xm_rebal_tally c = { .held = 3, .idle = 1 };

	(void)state;
	/* Never written: written, even with nothing to say. */
	assert_false(xm_rstate_row_update(&o, &c, XM_RSTATE_F_ENABLED, TICK, 10 * S));
	assert_int_equal(o.updated_ns, 10 * S);
	assert_int_equal(o.held, 3);
	/* The same counts a tick later: the row (and its updated_ns) stays. */
	xm_rstate_row_update(&o, &c, XM_RSTATE_F_ENABLED, TICK, 10 * S + S / 2);
	assert_int_equal(o.updated_ns, 10 * S);
	/* A change of a count, or of the flags, is written in its pass. */
	c.idle = 2;
	xm_rstate_row_update(&o, &c, XM_RSTATE_F_ENABLED, TICK, 11 * S);
	assert_int_equal(o.updated_ns, 11 * S);
	assert_int_equal(o.idle, 2);
	xm_rstate_row_update(&o, &c, 0, TICK, 12 * S);
	assert_int_equal(o.updated_ns, 12 * S);
	assert_int_equal(o.flags, 0);
	/* Nothing held or retired: quiet, so the loop may skip the row after it. */
	c = (struct xm_rebal_tally){ 0 };
	assert_true(xm_rstate_row_update(&o, &c, 0, TICK, 13 * S));
	assert_int_equal(o.held, 0);
}

static void rate_after_a_quiet_stretch(void **state)
{
	struct xm_lb_rstate early = { 0 }, late = { 0 };
	struct xm_rebal_tally quiet = { .held = 4 }, burst = { .held = 4, .retired = 2 };

	(void)state;
	/* Two rows, the same history: one weighed long after it last changed. */
	xm_rstate_row_update(&early, &quiet, 0, TICK, 1 * S);
	xm_rstate_row_update(&late, &quiet, 0, TICK, 1 * S);
	xm_rstate_row_update(&early, &burst, 0, TICK, 1 * S + S / 2);
	for (int t = 1; t <= 40; t++)
		xm_rstate_row_update(&late, &quiet, 0, TICK, 1 * S + t * S / 2);
	assert_int_equal(late.updated_ns, 1 * S); /* unchanged all along */
	xm_rstate_row_update(&late, &burst, 0, TICK, 1 * S + 41 * S / 2);
	/* 2 retired over the last tick's 0.5 s: the same rate for both rows. */
	assert_true(early.retired_milli_s > 0);
	assert_int_equal(late.retired_milli_s, early.retired_milli_s);
	assert_int_equal(late.retired_total, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unchanged_pass_writes_nothing),
		cmocka_unit_test(rate_after_a_quiet_stretch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
