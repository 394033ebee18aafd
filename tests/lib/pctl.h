/* SPDX-License-Identifier: MIT */
/*
 * The one percentile definition of the test tools: nearest rank. The q-th
 * quantile of n samples is the smallest sample with at least q*n samples at
 * or below it (sorted index ceil(q*n) - 1), so p99 of 100 samples is the
 * 99th, never an interpolation between two. Samples are sorted in place.
 */
#ifndef XT_PCTL_H
#define XT_PCTL_H

#include <stddef.h>

struct xt_samples {
	double *v;
	size_t n, cap;
	int sorted;
};

/* Appends; exits with a message when out of memory. */
void xt_samples_add(struct xt_samples *s, double v);
/* q in [0, 1]; NAN when there is no sample. */
double xt_pctl(struct xt_samples *s, double q);
double xt_max(struct xt_samples *s);
void xt_samples_free(struct xt_samples *s);

#endif
