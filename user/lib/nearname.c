// SPDX-License-Identifier: MIT
/* Near names for "did you mean" (nearname.h). */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "nearname.h"

unsigned int xm_edit_distance(const char *a, const char *b)
{
	/* three rows of the optimal string alignment distance (Damerau, restricted) */
	unsigned int rows[3][XM_NEARNAME_MAX_LEN + 1], *prev2 = rows[0], *prev = rows[1],
		*cur = rows[2];
	size_t n = strlen(a), m = strlen(b);

	if (n > XM_NEARNAME_MAX_LEN || m > XM_NEARNAME_MAX_LEN)
		return (unsigned int)(n > m ? n : m);
	for (size_t j = 0; j <= m; j++)
		prev[j] = (unsigned int)j;
	for (size_t i = 1; i <= n; i++) {
		unsigned int *t;

		cur[0] = (unsigned int)i;
		for (size_t j = 1; j <= m; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			unsigned int d = prev[j - 1] + (ca != cb);

			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < d)
				d = prev2[j - 2] + 1;
			cur[j] = d;
		}
		t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[m];
}

/* Whether a, 3 characters or more, begins b (ASCII case ignored). */
static bool begins(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n >= 3 && strlen(b) > n && !strncasecmp(a, b, n);
}

void xm_nearname_init(struct xm_nearname *n, const char *name)
{
	*n = (struct xm_nearname){ .name = name ? name : "" };
}

void xm_nearname_offer(struct xm_nearname *n, const char *known)
{
	unsigned int d;

	if (!known || !*known)
		return;
	d = xm_edit_distance(n->name, known);
	if (!n->best || d < n->dist) {
		n->best = known;
		n->dist = d;
	}
	if (begins(n->name, known) || begins(known, n->name)) {
		if (!n->n_prefix++)
			n->prefix = known;
	}
}

const char *xm_nearname_best(const struct xm_nearname *n)
{
	size_t a, b, shorter;
	unsigned int near;

	if (!n->best || !*n->name)
		return NULL;
	a = strlen(n->name);
	b = strlen(n->best);
	shorter = a < b ? a : b;
	near = (unsigned int)(shorter / 3);
	near = near < 1 ? 1 : near > 3 ? 3 : near;
	if (n->dist <= near)
		return n->best;
	return n->n_prefix == 1 ? n->prefix : NULL;
}

const char *xm_nearname_hint(const struct xm_nearname *n, char *buf, size_t len)
{
	const char *best = xm_nearname_best(n);

	if (!len)
		return buf;
	buf[0] = '\0';
	if (best)
		snprintf(buf, len, "; did you mean \"%s\"?", best);
	return buf;
}

const char *xm_nearname_hint_in(const char *name, const char *const *known, char *buf,
				size_t len)
{
	struct xm_nearname n;

	xm_nearname_init(&n, name);
	for (; known && *known; known++)
		xm_nearname_offer(&n, *known);
	return xm_nearname_hint(&n, buf, len);
}
