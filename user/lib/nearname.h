/* SPDX-License-Identifier: MIT */
/*
 * "Did you mean X?" for a name that a config, an annotation or a request
 * does not know (a field, an algorithm, a protocol, a cmd): the known name
 * nearest to it by edit distance, when it is near enough to be a misspelling
 * of it. Every place that refuses an unknown name offers it its known names.
 */
#ifndef XMESH_NEARNAME_H
#define XMESH_NEARNAME_H

#include <stddef.h>

/*
 * Edits (insert, delete, substitute a character, swap two adjacent ones:
 * "wieght" is one from "weight") between a and b, ignoring ASCII case; at
 * most XM_NEARNAME_MAX_LEN characters of each are compared (a longer name
 * counts as far from any other).
 */
#define XM_NEARNAME_MAX_LEN 64
unsigned int xm_edit_distance(const char *a, const char *b);

/* The nearest known name so far to an unknown one. */
struct xm_nearname {
	const char *name; /* the unknown one */
	const char *best; /* the nearest known name offered, or NULL */
	unsigned int dist;
	const char *prefix; /* the first known name it is a prefix of, or that is its prefix */
	unsigned int n_prefix; /* how many known names are */
};

void xm_nearname_init(struct xm_nearname *n, const char *name);
/* One known name (NULL and "" are ignored); on a tie the first offered stays. */
void xm_nearname_offer(struct xm_nearname *n, const char *known);
/*
 * The nearest known name if it is near enough to be a misspelling: at most
 * a third of the shorter name's length in edits, at least 1, at most 3
 * ("tcpp" is "tcp"); else the one known name that it begins, or that begins
 * it, of 3 characters at least ("tick" is "tick_ms"; "tail" begins three
 * names, so none); else NULL.
 */
const char *xm_nearname_best(const struct xm_nearname *n);
/* "; did you mean \"X\"?" for the nearest name, or "" when none is near; returns buf. */
const char *xm_nearname_hint(const struct xm_nearname *n, char *buf, size_t len);
/* The same over a NULL-terminated list. */
const char *xm_nearname_hint_in(const char *name, const char *const *known, char *buf,
				size_t len);

#endif
