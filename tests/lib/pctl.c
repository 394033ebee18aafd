// SPDX-License-Identifier: MIT
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "pctl.h"

void xt_samples_add(struct xt_samples *s, double v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		double *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv) {
			fprintf(stderr, "out of memory for %zu samples\n", cap);
			exit(1);
		}
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	s->sorted = 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double xt_pctl(struct xt_samples *s, double q)
{
	double rank;
	size_t i;

	if (!s->n)
		return NAN;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_double);
		s->sorted = 1;
	}
	rank = ceil(q * s->n);
	i = rank < 1 ? 0 : (size_t)rank - 1;
	return s->v[i < s->n ? i : s->n - 1];
}

double xt_max(struct xt_samples *s)
{
	return xt_pctl(s, 1);
}

void xt_samples_free(struct xt_samples *s)
{
	free(s->v);
	*s = (struct xt_samples){ 0 };
}
