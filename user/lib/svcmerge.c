// SPDX-License-Identifier: MIT
/* Services of several sources merged by key, one key at a time (svcmerge.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "svcmerge.h"

/* One replaced definition: put back by a rollback, freed by a commit. */
struct xm_svc_merge_undo {
	struct xm_svc_merge_ent *e;
	unsigned int src;
	struct xm_lb_svc_conf *conf;
	void *tag;
};

int xm_svc_merge_init(struct xm_svc_merge *m)
{
	memset(m, 0, sizeof(*m));
	m->mask = 63;
	m->bucket = calloc(m->mask + 1, sizeof(*m->bucket));
	return m->bucket ? 0 : -ENOMEM;
}

static void conf_free(struct xm_lb_svc_conf *s)
{
	if (s)
		xm_lb_svc_conf_free(s);
	free(s);
}

static void ent_free(struct xm_svc_merge_ent *e)
{
	for (unsigned int i = 0; i < XM_SVC_MERGE_SRC; i++) {
		conf_free(e->conf[i]);
		free(e->tag[i]);
	}
	free(e);
}

void xm_svc_merge_free(struct xm_svc_merge *m)
{
	xm_svc_merge_commit(m);
	for (unsigned int b = 0; m->bucket && b <= m->mask; b++) {
		for (struct xm_svc_merge_ent *e = m->bucket[b], *n; e; e = n) {
			n = e->next;
			ent_free(e);
		}
	}
	free(m->bucket);
	free(m->undo);
	memset(m, 0, sizeof(*m));
}

struct xm_svc_merge_ent *xm_svc_merge_find(const struct xm_svc_merge *m,
					   const struct xm_lb_svc_key *key)
{
	struct xm_svc_merge_ent *e = m->bucket[xm_lb_svc_key_hash(key) & m->mask];

	while (e && memcmp(&e->key, key, sizeof(*key)))
		e = e->next;
	return e;
}

int xm_svc_merge_winner(const struct xm_svc_merge_ent *e)
{
	for (int i = 0; i < XM_SVC_MERGE_SRC; i++)
		if (e->conf[i])
			return i;
	return -1;
}

struct xm_svc_merge_ent *xm_svc_merge_next(const struct xm_svc_merge *m,
					   const struct xm_svc_merge_ent *e)
{
	unsigned int b = 0;

	if (e) {
		if (e->next)
			return e->next;
		b = (xm_lb_svc_key_hash(&e->key) & m->mask) + 1;
	}
	for (; b <= m->mask; b++)
		if (m->bucket[b])
			return m->bucket[b];
	return NULL;
}

struct xm_svc_merge_ent *xm_svc_merge_first(const struct xm_svc_merge *m)
{
	return xm_svc_merge_next(m, NULL);
}

/* Twice the buckets when there are as many entries as buckets: chains stay short. */
static void grow(struct xm_svc_merge *m)
{
	unsigned int mask = m->mask * 2 + 1;
	struct xm_svc_merge_ent **b = calloc(mask + 1, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (unsigned int i = 0; i <= m->mask; i++) {
		for (struct xm_svc_merge_ent *e = m->bucket[i], *n; e; e = n) {
			unsigned int h = xm_lb_svc_key_hash(&e->key) & mask;

			n = e->next;
			e->next = b[h];
			b[h] = e;
		}
	}
	free(m->bucket);
	m->bucket = b;
	m->mask = mask;
}

int xm_svc_merge_set(struct xm_svc_merge *m, unsigned int src, const struct xm_lb_svc_key *key,
		     struct xm_lb_svc_conf *s, void *tag)
{
	struct xm_svc_merge_ent *e = xm_svc_merge_find(m, key);
	struct xm_svc_merge_undo *u;

	if (src >= XM_SVC_MERGE_SRC || (!e && !s)) {
		conf_free(s);
		free(tag);
		return src >= XM_SVC_MERGE_SRC ? -EINVAL : 0;
	}
	if (m->n_undo == m->cap_undo) {
		unsigned int cap = m->cap_undo ? m->cap_undo * 2 : 64;

		u = realloc(m->undo, cap * sizeof(*u));
		if (!u)
			goto nomem;
		m->undo = u;
		m->cap_undo = cap;
	}
	if (!e) {
		unsigned int h;

		if (m->n >= m->mask + 1)
			grow(m);
		e = calloc(1, sizeof(*e));
		if (!e)
			goto nomem;
		e->key = *key;
		h = xm_lb_svc_key_hash(key) & m->mask;
		e->next = m->bucket[h];
		m->bucket[h] = e;
		m->n++;
	}
	m->undo[m->n_undo++] = (struct xm_svc_merge_undo){ e, src, e->conf[src], e->tag[src] };
	e->conf[src] = s;
	e->tag[src] = tag;
	if (!e->changed) {
		e->changed = true;
		e->next_changed = m->changed;
		m->changed = e;
	}
	return 0;
nomem:
	conf_free(s);
	free(tag);
	return -ENOMEM;
}

int xm_svc_merge_drop_src(struct xm_svc_merge *m, unsigned int src)
{
	int r = 0;

	/* a set() to NULL adds no entry: the walk stays valid */
	for (struct xm_svc_merge_ent *e = xm_svc_merge_first(m); e && !r; e = xm_svc_merge_next(m, e))
		if (e->conf[src])
			r = xm_svc_merge_set(m, src, &e->key, NULL, NULL);
	return r;
}

/* The batch is over: entries no source has any more go. */
static void batch_end(struct xm_svc_merge *m)
{
	for (struct xm_svc_merge_ent *e = m->changed, *n; e; e = n) {
		n = e->next_changed;
		e->changed = false;
		e->next_changed = NULL;
		if (xm_svc_merge_winner(e) < 0) {
			struct xm_svc_merge_ent **p = &m->bucket[xm_lb_svc_key_hash(&e->key) & m->mask];

			while (*p != e)
				p = &(*p)->next;
			*p = e->next;
			m->n--;
			ent_free(e);
		}
	}
	m->changed = NULL;
	m->n_undo = 0;
}

void xm_svc_merge_commit(struct xm_svc_merge *m)
{
	for (unsigned int i = 0; i < m->n_undo; i++) {
		conf_free(m->undo[i].conf);
		free(m->undo[i].tag);
	}
	batch_end(m);
}

void xm_svc_merge_rollback(struct xm_svc_merge *m)
{
	/* newest first: a key set twice in the batch gets its first value back */
	for (unsigned int i = m->n_undo; i-- > 0;) {
		struct xm_svc_merge_undo *u = &m->undo[i];

		conf_free(u->e->conf[u->src]);
		free(u->e->tag[u->src]);
		u->e->conf[u->src] = u->conf;
		u->e->tag[u->src] = u->tag;
	}
	batch_end(m);
}
