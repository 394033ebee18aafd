// SPDX-License-Identifier: MIT
/*
 * Unit tests: the sources' merge kept up to date key by key (user/lib/svcmerge.c):
 * a change touches its key only, deletes, a relist that drops services, a
 * clash between the file and the cluster, and a batch undone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "svcmerge.h"

enum { CTL, FILE_SRC, CLUSTER, ADOPTED };
#define N 1000

static void key_of(struct xm_lb_svc_key *k, unsigned int i)
{
	char s[64];

	memset(k, 0, sizeof(*k));
	snprintf(s, sizeof(s), "10.96.%u.%u:80", i / 250, i % 250);
	assert_int_equal(xm_lb_svc_key_parse(s, k), 0);
}

/* A service at key i with n_be backends (n_be tells two versions apart). */
static struct xm_lb_svc_conf *svc(unsigned int i, unsigned int n_be)
{
	struct xm_lb_svc_conf *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	key_of(&s->key, i);
	snprintf(s->name, sizeof(s->name), "svc-%u", i);
	s->params = json_object();
	s->be = calloc(n_be + 1, sizeof(*s->be));
	s->n_be = n_be;
	return s;
}

static unsigned int n_changed(const struct xm_svc_merge *m)
{
	unsigned int n = 0;

	for (const struct xm_svc_merge_ent *e = m->changed; e; e = e->next_changed)
		n++;
	return n;
}

static struct xm_svc_merge_ent *at(const struct xm_svc_merge *m, unsigned int i)
{
	struct xm_lb_svc_key k;

	key_of(&k, i);
	return xm_svc_merge_find(m, &k);
}

/* N cluster services, committed; conf pointers kept in seen[]. */
static void cluster_of_n(struct xm_svc_merge *m, const struct xm_lb_svc_conf **seen)
{
	assert_int_equal(xm_svc_merge_init(m), 0);
	for (unsigned int i = 0; i < N; i++) {
		struct xm_lb_svc_conf *s = svc(i, 10);
		struct xm_lb_svc_key k = s->key;

		seen[i] = s;
		assert_int_equal(xm_svc_merge_set(m, CLUSTER, &k, s, strdup("meta")), 0);
	}
	assert_int_equal(n_changed(m), N);
	xm_svc_merge_commit(m);
	assert_int_equal(n_changed(m), 0);
	assert_int_equal(m->n, N);
}

static void one_change_touches_one_key(void **state)
{
	static const struct xm_lb_svc_conf *seen[N];
	struct xm_svc_merge m;
	struct xm_lb_svc_conf *s = svc(500, 3);
	struct xm_lb_svc_key k = s->key;

	cluster_of_n(&m, seen);
	assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, s, NULL), 0);
	/* the apply gets that key alone */
	assert_int_equal(n_changed(&m), 1);
	assert_memory_equal(&m.changed->key, &k, sizeof(k));
	assert_int_equal(xm_svc_merge_winner(m.changed), CLUSTER);
	assert_ptr_equal(m.changed->conf[CLUSTER], s);
	xm_svc_merge_commit(&m);
	for (unsigned int i = 0; i < N; i++) {
		struct xm_svc_merge_ent *e = at(&m, i);

		assert_non_null(e);
		assert_false(e->changed);
		if (i != 500) /* the others: the very same definitions, untouched */
			assert_ptr_equal(e->conf[CLUSTER], seen[i]);
	}
	assert_int_equal(at(&m, 500)->conf[CLUSTER]->n_be, 3);
	assert_int_equal(m.n, N);
	xm_svc_merge_free(&m);
}

static void delete_removes_the_key(void **state)
{
	static const struct xm_lb_svc_conf *seen[N];
	struct xm_svc_merge m;
	struct xm_lb_svc_key k;

	cluster_of_n(&m, seen);
	key_of(&k, 7);
	assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, NULL, NULL), 0);
	assert_int_equal(n_changed(&m), 1);
	/* no source has it: the apply removes the service */
	assert_int_equal(xm_svc_merge_winner(m.changed), -1);
	xm_svc_merge_commit(&m);
	assert_null(at(&m, 7));
	assert_int_equal(m.n, N - 1);
	assert_ptr_equal(at(&m, 8)->conf[CLUSTER], seen[8]);
	/* deleting what is not there changes nothing */
	assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, NULL, NULL), 0);
	assert_int_equal(n_changed(&m), 0);
	xm_svc_merge_free(&m);
}

/* A relist as the sources take it: everything of the source out, the new list in. */
static void relist_drops_the_missing(void **state)
{
	static const struct xm_lb_svc_conf *seen[N];
	struct xm_svc_merge m;
	unsigned int gone = 0, kept = 0;

	cluster_of_n(&m, seen);
	assert_int_equal(xm_svc_merge_drop_src(&m, CLUSTER), 0);
	for (unsigned int i = 0; i < N; i += 2) {
		struct xm_lb_svc_conf *s = svc(i, 10);
		struct xm_lb_svc_key k = s->key;

		assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, s, NULL), 0);
	}
	for (const struct xm_svc_merge_ent *e = m.changed; e; e = e->next_changed) {
		gone += xm_svc_merge_winner(e) < 0;
		kept += xm_svc_merge_winner(e) == CLUSTER;
	}
	assert_int_equal(gone, N / 2);
	assert_int_equal(kept, N / 2);
	xm_svc_merge_commit(&m);
	assert_int_equal(m.n, N / 2);
	for (unsigned int i = 0; i < N; i++)
		if (i % 2)
			assert_null(at(&m, i));
		else
			assert_int_equal(xm_svc_merge_winner(at(&m, i)), CLUSTER);
	xm_svc_merge_free(&m);
}

static void file_wins_a_clash(void **state)
{
	static const struct xm_lb_svc_conf *seen[N];
	struct xm_svc_merge m;
	struct xm_lb_svc_conf *f = svc(3, 1), *c = svc(3, 5);
	struct xm_lb_svc_key k = f->key;
	struct xm_svc_merge_ent *e;

	cluster_of_n(&m, seen);
	assert_int_equal(xm_svc_merge_set(&m, FILE_SRC, &k, f, NULL), 0);
	xm_svc_merge_commit(&m);
	e = at(&m, 3);
	assert_int_equal(xm_svc_merge_winner(e), FILE_SRC);
	assert_ptr_equal(e->conf[FILE_SRC], f);
	/* the cluster changes it: still the file's */
	assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, c, NULL), 0);
	assert_int_equal(n_changed(&m), 1);
	assert_int_equal(xm_svc_merge_winner(e), FILE_SRC);
	assert_ptr_equal(e->conf[FILE_SRC], f);
	xm_svc_merge_commit(&m);
	/* the cluster drops it: the file's stays */
	assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, NULL, NULL), 0);
	xm_svc_merge_commit(&m);
	assert_ptr_equal(at(&m, 3), e);
	assert_int_equal(xm_svc_merge_winner(e), FILE_SRC);
	/* the cluster has it again and the file drops it: the cluster's is used */
	c = svc(3, 5);
	assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, c, NULL), 0);
	assert_int_equal(xm_svc_merge_set(&m, FILE_SRC, &k, NULL, NULL), 0);
	assert_int_equal(n_changed(&m), 1);
	assert_int_equal(xm_svc_merge_winner(e), CLUSTER);
	assert_ptr_equal(e->conf[CLUSTER], c);
	xm_svc_merge_commit(&m);
	assert_int_equal(m.n, N);
	xm_svc_merge_free(&m);
}

/* A change that does not fit the node is undone: every entry as before, pointers too. */
static void rollback_restores_everything(void **state)
{
	static const struct xm_lb_svc_conf *seen[N];
	struct xm_svc_merge m;
	struct xm_lb_svc_key k;

	cluster_of_n(&m, seen);
	assert_int_equal(xm_svc_merge_drop_src(&m, CLUSTER), 0);
	for (unsigned int i = N; i < 2 * N; i++) {
		struct xm_lb_svc_conf *s = svc(i, 1);

		k = s->key;
		assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, s, NULL), 0);
	}
	/* one key set twice in the batch gets its first value back */
	key_of(&k, 4);
	assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, svc(4, 2), NULL), 0);
	assert_int_equal(xm_svc_merge_set(&m, CLUSTER, &k, svc(4, 3), NULL), 0);
	xm_svc_merge_rollback(&m);
	assert_int_equal(n_changed(&m), 0);
	assert_int_equal(m.n, N);
	for (unsigned int i = 0; i < 2 * N; i++)
		if (i < N)
			assert_ptr_equal(at(&m, i)->conf[CLUSTER], seen[i]);
		else
			assert_null(at(&m, i));
	xm_svc_merge_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_change_touches_one_key),
		cmocka_unit_test(delete_removes_the_key),
		cmocka_unit_test(relist_drops_the_missing),
		cmocka_unit_test(file_wins_a_clash),
		cmocka_unit_test(rollback_restores_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
