/* SPDX-License-Identifier: MIT */
/*
 * Services of several sources merged by key (VIP:port/proto): for each key
 * the source with the lowest index wins. The merge is kept up to date one key
 * at a time, so a change costs what it touches, not the size of the set (a
 * cluster of 1,000s of services changes one of them many times a second).
 *
 * Every xm_svc_merge_set() is undoable until the batch ends: the caller sets
 * what changed, reads the changed entries (m->changed), tries to apply them,
 * then keeps the batch (xm_svc_merge_commit()) or restores every entry as it
 * was before it (xm_svc_merge_rollback()). Pure: no I/O, no log.
 */
#ifndef XMESH_SVCMERGE_H
#define XMESH_SVCMERGE_H

#include <stdbool.h>
#include "lbconfig.h"

#define XM_SVC_MERGE_SRC 4 /* sources at most */

struct xm_svc_merge_ent {
	struct xm_lb_svc_key key;
	struct xm_lb_svc_conf *conf[XM_SVC_MERGE_SRC]; /* each source's (owned), NULL: none */
	void *tag[XM_SVC_MERGE_SRC]; /* the caller's, set with conf (owned, free()d), or NULL */
	struct xm_svc_merge_ent *next;         /* hash chain */
	struct xm_svc_merge_ent *next_changed; /* m->changed list */
	bool changed;
};

struct xm_svc_merge_undo;

struct xm_svc_merge {
	struct xm_svc_merge_ent **bucket;
	unsigned int mask;  /* buckets - 1 */
	unsigned int n;     /* entries */
	struct xm_svc_merge_ent *changed; /* entries set since the batch began */
	struct xm_svc_merge_undo *undo;   /* what the batch replaced, in order */
	unsigned int n_undo, cap_undo;
};

int xm_svc_merge_init(struct xm_svc_merge *m);
void xm_svc_merge_free(struct xm_svc_merge *m);
/*
 * Source src now defines key as s, with tag (both taken, even on error);
 * s NULL: src no longer has key. 0 or -ENOMEM (nothing changed then).
 */
int xm_svc_merge_set(struct xm_svc_merge *m, unsigned int src, const struct xm_lb_svc_key *key,
		     struct xm_lb_svc_conf *s, void *tag);
/* Every key of src out (in the batch): before a whole new set of src, or when src ends. */
int xm_svc_merge_drop_src(struct xm_svc_merge *m, unsigned int src);
struct xm_svc_merge_ent *xm_svc_merge_find(const struct xm_svc_merge *m,
					   const struct xm_lb_svc_key *key);
/* The source whose definition is used, or -1 (no source has the key any more). */
int xm_svc_merge_winner(const struct xm_svc_merge_ent *e);
/* Every entry, in no order: for (e = first(m); e; e = next(m, e)); set() adds none meanwhile. */
struct xm_svc_merge_ent *xm_svc_merge_first(const struct xm_svc_merge *m);
struct xm_svc_merge_ent *xm_svc_merge_next(const struct xm_svc_merge *m,
					   const struct xm_svc_merge_ent *e);
/* End the batch: keep it (what it replaced is freed) or undo it. */
void xm_svc_merge_commit(struct xm_svc_merge *m);
void xm_svc_merge_rollback(struct xm_svc_merge *m);

#endif
