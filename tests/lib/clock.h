/* SPDX-License-Identifier: MIT */
/*
 * Clocks for the test tools: monotonic for durations and latencies, real
 * time where several processes share a start (scenario files, --start EPOCH)
 * or where the kernel's receive timestamps (CLOCK_REALTIME) are compared.
 */
#ifndef XT_CLOCK_H
#define XT_CLOCK_H

#include <stdint.h>

uint64_t xt_now_ns(void);	/* CLOCK_MONOTONIC, ns */
double xt_now(void);		/* CLOCK_MONOTONIC, s */
double xt_wall(void);		/* CLOCK_REALTIME, s since the epoch */
uint64_t xt_wall_ns(void);	/* CLOCK_REALTIME, ns since the epoch */

#endif
