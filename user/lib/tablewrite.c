// SPDX-License-Identifier: MIT
/* When the weighting loop rewrites a table (tablewrite.h). */
#include <xmesh/lb.h>

#include "tablewrite.h"

bool xm_table_write_due(const __u32 *table, const __u32 *want, unsigned int n, double deadband,
			__u64 age_ns)
{
	bool waited = age_ns >= XM_TW_WAIT_NS, relative = false;
	__u32 most = 0, total = 0;
	__u64 moved2 = 0; /* twice the slots that change backend */

	for (unsigned int i = 0; i < n; i++) {
		total += table[i];
		if (!want[i] != !table[i])
			return true;
	}
	if (!total)
		total = XM_LB_SLOTS;
	for (unsigned int i = 0; i < n; i++) {
		__u32 d = want[i] > table[i] ? want[i] - table[i] : table[i] - want[i];

		most = d > most ? d : most;
		moved2 += d;
		/*
		 * To half or less, or to double or more, by at least half an equal
		 * share: a backend that carries little wobbles by a factor of two
		 * on noise alone.
		 */
		relative |= d >= XM_TW_SLOTS_NOW && (__u64)d * 2 * n >= total &&
			    (2 * (__u64)want[i] <= table[i] || want[i] >= 2 * (__u64)table[i]);
	}
	if (deadband <= 0)
		return most >= XM_TW_SLOTS_NOW || (most >= XM_TW_SLOTS_MIN && waited);
	if (relative || moved2 >= 2 * deadband * total)
		return true;
	return waited && moved2 >= deadband * total && most >= XM_TW_SLOTS_MIN;
}
