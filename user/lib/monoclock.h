/* SPDX-License-Identifier: MIT */
/*
 * CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns() and so of every time
 * the datapath writes (lb.h): ages computed against a map's stamps need
 * this clock, and so do durations, which must not jump with the wall clock.
 */
#ifndef XMESH_MONOCLOCK_H
#define XMESH_MONOCLOCK_H

#include <time.h>

static inline unsigned long long xm_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static inline unsigned long long xm_mono_ms(void)
{
	return xm_mono_ns() / 1000000;
}

static inline double xm_mono_s(void)
{
	return xm_mono_ns() / 1e9;
}

#endif
