/* SPDX-License-Identifier: MIT */
/*
 * When the weighting loop rewrites a service's selection table: the slots
 * its weights ask for against the slots of the table in the kernel.
 *
 * A table write costs a few syscalls (docs/benchmarks.md, "Weighting
 * loop"); estimates from a handful of requests wobble every tick, and
 * writing each wobble buys nothing. With a deadband D > 0 (the service's
 * "table_deadband", a share of the traffic) the table is rewritten at once
 * when some backend goes to or from zero slots, when at least D of the
 * traffic would move (total variation distance of the shares), or when a
 * backend's slots fall to a half or less, or grow to double or more, of the
 * table's (and by XM_TW_SLOTS_NOW or more): a replica turning bad moves that
 * much in one tick, whatever the size of the service. A smaller lasting
 * drift of D / 2 is written after XM_TW_WAIT_NS. So the table in force is
 * within D of what the weights ask (D / 2 after the wait).
 *
 * D = 0 is the rule before the deadband: any backend moving by
 * XM_TW_SLOTS_NOW slots at once, by XM_TW_SLOTS_MIN after XM_TW_WAIT_NS.
 */
#ifndef XMESH_TABLEWRITE_H
#define XMESH_TABLEWRITE_H

#include <stdbool.h>
#include <linux/types.h>

#define XM_TW_SLOTS_NOW 8
#define XM_TW_SLOTS_MIN 2
#define XM_TW_WAIT_NS 2000000000ULL

/*
 * table[0..n): slots of each backend in the table in force; want[0..n):
 * slots its weights ask for now (both sum to XM_LB_SLOTS, or 0); age_ns:
 * since the table was written; deadband: a share of the traffic, 0..1.
 */
bool xm_table_write_due(const __u32 *table, const __u32 *want, unsigned int n, double deadband,
			__u64 age_ns);

#endif
