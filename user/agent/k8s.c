// SPDX-License-Identifier: MIT
/*
 * The Kubernetes source (k8s.h): two list+watch resources and the node's own
 * object; once both lists are complete, every change is applied after a short
 * coalescing delay, through the service sources' merge and lbstate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "k8s.h"
#include "lbtable.h"
#include "log.h"
#include "svcsources.h"
#include "monoclock.h"

#define LABEL_ZONE "topology.kubernetes.io/zone"

bool xm_k8s_ready(const struct xm_agent *a)
{
	return !a->k8s || __atomic_load_n(&a->k8s->ready, __ATOMIC_ACQUIRE);
}

/*
 * The view: one group per Service id, holding the Service and the
 * EndpointSlices labelled with it as compact records (each object cut to
 * what the translation reads, xm_k8s_prune(), and kept as its compact JSON
 * text: one allocation per object, parsed again only when its Service is
 * translated) and the keys its translation gave the sources. The sources
 * hold the translated services themselves: the one copy besides lbstate's.
 */
struct xm_k8s_slice;

struct xm_k8s_group {
	char *id;                     /* "namespace/name" */
	char *svc;                    /* the Service, NULL: none (yet, or deleted) */
	struct xm_k8s_slice **slices; /* the EndpointSlices labelled with it */
	unsigned int n_slices, cap_slices;
	struct xm_lb_svc_key *keys;   /* what its last applied translation gave the sources */
	unsigned int n_keys;
	char *note;                   /* the note logged last, NULL: none */
	bool left_alone;              /* not ours (headless, ExternalName, other proxy) */
	struct xm_lb_svc_key *pending; /* keys of the translation the sources are given */
	unsigned int n_pending;
	bool pending_left_alone;
	struct xm_k8s_group *next_dirty;
	bool dirty;
};

struct xm_k8s_slice {
	char *id;                   /* "namespace/name" */
	char *text;
	struct xm_k8s_group *group; /* the Service it is labelled with, or NULL */
};

static void free_slice(void *p)
{
	struct xm_k8s_slice *sl = p;

	free(sl->id);
	free(sl->text);
	free(sl);
}

static void free_group(void *p)
{
	struct xm_k8s_group *g = p;

	free(g->id);
	free(g->svc);
	free(g->slices);
	free(g->keys);
	free(g->pending);
	free(g->note);
	free(g);
}

static int by_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b); /* id is each record's first field */
}

static void *tree_find(void *root, const char *id)
{
	void **hit = tfind(&id, &root, by_id);

	return hit ? *hit : NULL;
}

static void mark_dirty(struct xm_k8s *k, struct xm_k8s_group *g)
{
	if (g && !g->dirty) {
		g->dirty = true;
		g->next_dirty = k->dirty;
		k->dirty = g;
	}
}

static struct xm_k8s_group *group_get(struct xm_k8s *k, const char *id)
{
	struct xm_k8s_group *g = tree_find(k->groups, id);

	if (g)
		return g;
	g = calloc(1, sizeof(*g));
	if (!g || !(g->id = strdup(id)) || !tsearch(g, &k->groups, by_id)) {
		if (g)
			free(g->id);
		free(g);
		return NULL;
	}
	return g;
}

/* A group with nothing left goes (after an apply: its keys are gone from the sources). */
static void group_gc(struct xm_k8s *k, struct xm_k8s_group *g)
{
	if (g->svc || g->n_slices || g->n_keys || g->dirty)
		return;
	tdelete(g, &k->groups, by_id);
	free_group(g);
}

static void slice_detach(struct xm_k8s *k, struct xm_k8s_slice *sl)
{
	struct xm_k8s_group *g = sl->group;

	if (!g)
		return;
	for (unsigned int i = 0; i < g->n_slices; i++)
		if (g->slices[i] == sl)
			g->slices[i] = g->slices[--g->n_slices];
	sl->group = NULL;
	mark_dirty(k, g);
}

static int slice_attach(struct xm_k8s *k, struct xm_k8s_slice *sl, const char *owner)
{
	struct xm_k8s_group *g = owner ? group_get(k, owner) : NULL;

	if (sl->group == g) {
		mark_dirty(k, g);
		return 0;
	}
	slice_detach(k, sl);
	if (!owner)
		return 0;
	if (!g)
		return -ENOMEM;
	if (g->n_slices == g->cap_slices) {
		unsigned int cap = g->cap_slices ? g->cap_slices * 2 : 2;
		struct xm_k8s_slice **n = realloc(g->slices, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		g->slices = n;
		g->cap_slices = cap;
	}
	g->slices[g->n_slices++] = sl;
	sl->group = g;
	mark_dirty(k, g);
	return 0;
}

/* Set (text taken; NULL: delete) the object id of r; unchanged text changes nothing. */
static int object_set(struct xm_k8s *k, struct xm_k8s_res *r, const char *id, char *text,
		      const char *owner)
{
	if (r == &k->svc) {
		struct xm_k8s_group *g = text ? group_get(k, id) : tree_find(k->groups, id);

		if (!g || (g->svc && text && !strcmp(g->svc, text))) {
			free(text);
			return g || !text ? 0 : -ENOMEM;
		}
		free(g->svc);
		g->svc = text;
		mark_dirty(k, g);
		return 0;
	}
	struct xm_k8s_slice *sl = tree_find(k->slices, id);

	if (sl && text && !strcmp(sl->text, text)) {
		free(text);
		return 0;
	}
	if (!text) {
		if (sl) {
			slice_detach(k, sl);
			tdelete(sl, &k->slices, by_id);
			free_slice(sl);
		}
		return 0;
	}
	if (!sl) {
		sl = calloc(1, sizeof(*sl));
		if (!sl || !(sl->id = strdup(id)) || !tsearch(sl, &k->slices, by_id)) {
			if (sl)
				free(sl->id);
			free(sl);
			free(text);
			return -ENOMEM;
		}
	}
	free(sl->text);
	sl->text = text;
	return slice_attach(k, sl, owner);
}

/* obj as its compact record: pruned, as JSON text (malloc'd), and the Service it belongs to. */
static char *compact(struct xm_k8s *k, struct xm_k8s_res *r, json_t *obj, char *owner,
		     size_t len)
{
	if (r == &k->eps ? !xm_k8s_slice_service(obj, owner, len) : true)
		owner[0] = '\0';
	return json_dumps(xm_k8s_prune(obj), JSON_COMPACT);
}

static void schedule(struct xm_k8s *k);

void xm_k8s_object(struct xm_k8s *k, struct xm_k8s_res *r, json_t *obj, bool deleted)
{
	char id[XM_K8S_ID_LEN], owner[XM_K8S_ID_LEN] = "";
	char *text = deleted ? NULL : compact(k, r, obj, owner, sizeof(owner));

	xm_k8s_object_id(obj, id, sizeof(id));
	if ((!deleted && !text) || object_set(k, r, id, text, owner[0] ? owner : NULL)) {
		/* the view lost this change: the next complete list brings it */
		pr_err("k8s: %s %s: out of memory: this change is lost until the next list", r->kind,
		       id);
	}
	k->changes_pending++;
	schedule(k);
}

int xm_k8s_stage(struct xm_k8s_res *r, json_t *obj)
{
	char id[XM_K8S_ID_LEN], owner[XM_K8S_ID_LEN];
	char *text = compact(r->k, r, obj, owner, sizeof(owner));
	json_t *rec = text ? json_pack("[s,s]", text, owner) : NULL;

	free(text);
	return json_object_set_new(r->staging, xm_k8s_object_id(obj, id, sizeof(id)), rec) ? -ENOMEM
											     : 0;
}

struct listed_walk {
	struct xm_k8s *k;
	struct xm_k8s_res *r;
	const char **gone; /* ids not in the new list */
	unsigned int n_gone, cap_gone;
};

static void collect_gone(const void *node, VISIT which, void *arg)
{
	struct listed_walk *w = arg;
	const struct xm_k8s_group *g = *(const struct xm_k8s_group *const *)node;
	const char *id = *(char *const *)*(void *const *)node;

	if (which != postorder && which != leaf)
		return;
	if (w->r == &w->k->svc && !g->svc)
		return;
	if (json_object_get(w->r->staging, id))
		return;
	if (w->n_gone == w->cap_gone) {
		unsigned int cap = w->cap_gone ? w->cap_gone * 2 : 64;
		const char **n = realloc(w->gone, cap * sizeof(*n));

		if (!n)
			return;
		w->gone = n;
		w->cap_gone = cap;
	}
	w->gone[w->n_gone++] = id;
}

/* A complete list replaces r's objects: those not in it are deleted, the others set. */
void xm_k8s_listed(struct xm_k8s *k, struct xm_k8s_res *r)
{
	struct listed_walk w = { .k = k, .r = r };
	const char *id;
	json_t *rec;
	int err = 0;

	twalk_r(r == &k->svc ? k->groups : k->slices, collect_gone, &w);
	for (unsigned int i = 0; i < w.n_gone; i++) {
		char gone[XM_K8S_ID_LEN];

		/* the record and its id go with the delete */
		snprintf(gone, sizeof(gone), "%s", w.gone[i]);
		object_set(k, r, gone, NULL, NULL);
	}
	free(w.gone);
	json_object_foreach(r->staging, id, rec) {
		const char *owner = json_string_value(json_array_get(rec, 1));
		char *text = strdup(json_string_value(json_array_get(rec, 0)));

		if (!text || object_set(k, r, id, text, *owner ? owner : NULL))
			err = -ENOMEM;
	}
	json_decref(r->staging);
	r->staging = NULL;
	if (err)
		pr_err("k8s: %s: out of memory while taking the list: some objects are missing", r->kind);
	k->changes_pending++;
	schedule(k);
}

static void mark_all(const void *node, VISIT which, void *k)
{
	if (which == postorder || which == leaf)
		mark_dirty(k, *(struct xm_k8s_group *const *)node);
}

static const struct xm_lb_svc_conf *prev_conf(void *arg, const struct xm_lb_svc_key *key)
{
	struct xm_k8s *k = arg;
	const struct xm_lb_svc_conf *p = xm_svc_sources_get(k->a, XM_SRC_CLUSTER, key);

	return p && p->params ? p : NULL;
}

/* One group's translation: its objects parsed back from their records. */
static int translate_group(struct xm_k8s *k, struct xm_k8s_group *g, struct xm_k8s_result *r)
{
	struct xm_k8s_node node = { .name = k->node_name, .zone = k->node_zone };
	json_t *svc, *slices;
	int err = 0;

	memset(r, 0, sizeof(*r));
	if (!g->svc)
		return 0;
	svc = json_loads(g->svc, 0, NULL);
	slices = json_array();
	if (!svc || !slices)
		err = -ENOMEM;
	for (unsigned int i = 0; i < g->n_slices && !err; i++)
		if (json_array_append_new(slices, json_loads(g->slices[i]->text, 0, NULL)))
			err = -ENOMEM;
	if (!err)
		err = xm_k8s_translate_service(svc, slices, &node, prev_conf, k, r);
	json_decref(svc);
	json_decref(slices);
	if (err)
		xm_k8s_result_free(r);
	return err;
}

/*
 * Notes (refused annotations, skipped ports) are logged when they first
 * appear, also for a Service that gave no entry at all (SCTP only, no usable
 * port): there the log is the only place that says why.
 */
static void log_new_note(struct xm_k8s_group *g, const struct xm_k8s_result *r)
{
	const char *note = r->conf.n_svc ? r->meta[0].note
			   : r->n_unusable ? r->unusable[0].note : "";

	if (!*note) {
		free(g->note); /* gone: said again if it comes back */
		g->note = NULL;
		return;
	}
	if (g->note && !strcmp(g->note, note))
		return;
	pr_warn("k8s: service %s: %s", g->id, note);
	free(g->note);
	g->note = strdup(note);
}

/* A group's updates: a removal for each key it no longer has, and its entries (r's, taken). */
static int group_updates(struct xm_k8s_group *g, struct xm_k8s_result *r, struct xm_svc_update **u,
			 unsigned int *n, unsigned int *cap)
{
	unsigned int need = *n + g->n_keys + r->conf.n_svc;

	if (need > *cap) {
		unsigned int c = *cap ? *cap : 64;
		struct xm_svc_update *nu;

		while (c < need)
			c *= 2;
		nu = realloc(*u, c * sizeof(*nu));
		if (!nu)
			return -ENOMEM;
		*u = nu;
		*cap = c;
	}
	for (unsigned int i = 0; i < g->n_keys; i++) {
		bool kept = false;

		for (unsigned int j = 0; j < r->conf.n_svc && !kept; j++)
			kept = !memcmp(&g->keys[i], &r->conf.svc[j].key, sizeof(g->keys[i]));
		if (!kept)
			(*u)[(*n)++] = (struct xm_svc_update){ .key = g->keys[i] };
	}
	for (unsigned int j = 0; j < r->conf.n_svc; j++) {
		struct xm_svc_update *x = &(*u)[*n];

		x->key = r->conf.svc[j].key;
		x->conf = malloc(sizeof(*x->conf));
		x->meta = xm_svc_origin_new(&r->meta[j]);
		if (!x->conf || !x->meta) {
			free(x->conf);
			free(x->meta);
			return -ENOMEM;
		}
		*x->conf = r->conf.svc[j];
		memset(&r->conf.svc[j], 0, sizeof(r->conf.svc[j]));
		(*n)++;
	}
	return 0;
}

/* The keys a group's translation gives the sources, until the sources took them. */
static int group_pending_keys(struct xm_k8s_group *g, const struct xm_k8s_result *r)
{
	unsigned int n = r->conf.n_svc;

	g->pending = n ? malloc(n * sizeof(*g->pending)) : NULL;
	if (n && !g->pending)
		return -ENOMEM;
	for (unsigned int j = 0; j < n; j++)
		g->pending[j] = r->conf.svc[j].key;
	g->n_pending = n;
	return 0;
}

static void free_updates(struct xm_svc_update *u, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (u[i].conf)
			xm_lb_svc_conf_free(u[i].conf);
		free(u[i].conf);
		free(u[i].meta);
	}
	free(u);
}

/* Groups taken for an apply that did not happen (next_dirty-linked): on the dirty list again. */
static void requeue(struct xm_k8s *k, struct xm_k8s_group *g)
{
	for (struct xm_k8s_group *next; g; g = next) {
		next = g->next_dirty;
		free(g->pending);
		g->pending = NULL;
		g->n_pending = 0;
		g->dirty = false;
		mark_dirty(k, g);
	}
}

/*
 * Translate the Services whose objects changed and hand the sources their
 * entries, and only those: an apply costs what changed, not the cluster.
 */
static void apply(struct xm_k8s *k)
{
	unsigned long long t0 = xm_mono_ms(), t1;
	struct xm_svc_update *u = NULL;
	struct xm_k8s_group *done = NULL, *g, *next;
	unsigned int n = 0, cap = 0, n_groups = 0;
	bool first = !k->ready;
	int err = 0;

	if (k->all_dirty) {
		twalk_r(k->groups, mark_all, k);
		k->all_dirty = false;
	}
	for (g = k->dirty, k->dirty = NULL; g; g = next) {
		struct xm_k8s_result r;

		next = g->next_dirty;
		err = translate_group(k, g, &r);
		if (!err) {
			log_new_note(g, &r);
			g->pending_left_alone = r.left_alone > 0;
			err = group_pending_keys(g, &r) ?: group_updates(g, &r, &u, &n, &cap);
			xm_k8s_result_free(&r);
		}
		g->next_dirty = done;
		done = g;
		if (err)
			break;
		n_groups++;
	}
	t1 = xm_mono_ms();
	if (err) {
		pr_err("k8s: translating the cluster's services: %s: tables kept", strerror(-err));
		free_updates(u, n);
		requeue(k, next); /* the groups not reached */
		requeue(k, done);
		return;
	}
	k->applies++;
	err = xm_svc_sources_update(k->a, XM_SRC_CLUSTER, u, n, first);
	free(u);
	k->applied_ms = xm_mono_ms();
	if (err == -E2BIG) {
		/* the sources kept what they had: with the next change, again */
		requeue(k, done);
		done = NULL;
	}
	for (g = done; g; g = next) {
		next = g->next_dirty;
		g->next_dirty = NULL;
		g->dirty = false;
		k->n_entries += g->n_pending - g->n_keys;
		k->n_left_alone += (int)g->pending_left_alone - (int)g->left_alone;
		g->left_alone = g->pending_left_alone;
		free(g->keys);
		g->keys = g->pending;
		g->n_keys = g->n_pending;
		g->pending = NULL;
		g->n_pending = 0;
		group_gc(k, g);
	}
	pr_info("k8s: applied %u services from the cluster (apply %lu, %lu changes, %u Services "
		"translated, %u left alone; translate %llu ms, apply %llu ms)%s", k->n_entries,
		k->applies, k->changes_pending, n_groups, k->n_left_alone, t1 - t0,
		k->applied_ms - t1, err ? ": with errors, see above" : "");
	k->changes_pending = 0;
	if (!k->ready) {
		pr_info("k8s: initial sync done: ready");
		/* the lists' pages were parsed and freed: give that heap back */
		malloc_trim(0);
	}
	__atomic_store_n(&k->ready, 1, __ATOMIC_RELEASE);
}

static void on_apply_timer(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	xm_loop_timer_arm(fd, 0);
	apply(arg);
}

/*
 * Nothing is applied before both lists are complete: never a half view.
 * Then a change is applied once the watches have been quiet for
 * XM_K8S_QUIET_MS (what arrives meanwhile rides along), and never later
 * than XM_K8S_MAX_WAIT_MS after the first change waiting: a lone change goes
 * out within a few ms, a burst of 1,000 is a handful of applies.
 */
static void schedule(struct xm_k8s *k)
{
	unsigned long long now = xm_mono_ms(), due = now + XM_K8S_QUIET_MS;

	if (!k->svc.synced || !k->eps.synced)
		return;
	if (!xm_loop_timer_armed(k->apply_tfd))
		k->first_pending_ms = now;
	if (due > k->first_pending_ms + XM_K8S_MAX_WAIT_MS)
		due = k->first_pending_ms + XM_K8S_MAX_WAIT_MS;
	xm_loop_timer_arm(k->apply_tfd, due > now ? (long)(due - now) : 1);
}

void xm_k8s_node_changed(struct xm_k8s *k)
{
	const char *z = json_string_value(json_object_get(
		json_object_get(json_object_get(k->node.store, "metadata"), "labels"), LABEL_ZONE));

	/* the node is read again now and then: only a new zone changes locality */
	if (k->node_seen && !strcmp(z ?: "", k->node_zone))
		return;
	pr_info("k8s: node %s, zone %s%s", k->node_name, z ?: "(none)",
		k->node_seen ? ": the zone changed, locality follows" : "");
	k->node_seen = true;
	snprintf(k->node_zone, sizeof(k->node_zone), "%s", z ?: "");
	k->all_dirty = true;
	if (!k->ready)
		return;
	k->changes_pending++;
	schedule(k);
}

int xm_k8s_start(struct xm_agent *a)
{
	struct xm_k8s *k;
	char err[600], path[320];
	const char *node = a->node_name ?: getenv("NODE_NAME");
	int r;

	if (!a->k8s_enabled)
		return 0;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->a = a;
	k->curl_tfd = k->apply_tfd = -1;
	a->k8s = k;
	r = a->kubeconfig ? xm_k8s_conn_kubeconfig(&k->conn, a->kubeconfig, err, sizeof(err))
			  : xm_k8s_conn_in_cluster(&k->conn, err, sizeof(err));
	if (!r && a->k8s_api)
		r = xm_k8s_conn_set_api(&k->conn, a->k8s_api, err, sizeof(err));
	if (r) {
		pr_err("%s", err);
		return r;
	}
	if (node && *node)
		snprintf(k->node_name, sizeof(k->node_name), "%s", node);
	else if (gethostname(k->node_name, sizeof(k->node_name)))
		k->node_name[0] = '\0';
	k->watch_timeout_s = a->k8s_watch_timeout ?: 300;
	srandom(time(NULL) ^ getpid());
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return -ENOMEM;
	r = xm_k8s_http_init(k);
	if (r)
		return r;
	k->apply_tfd = xm_loop_timer_add(a->loop, on_apply_timer, k);
	if (k->apply_tfd < 0)
		return k->apply_tfd;
	xm_k8s_res_init(k, &k->svc, "services", "/api/v1/services", true);
	xm_k8s_res_init(k, &k->eps, "endpointslices", "/apis/discovery.k8s.io/v1/endpointslices",
			true);
	snprintf(path, sizeof(path), "/api/v1/nodes/%s", k->node_name);
	xm_k8s_res_init(k, &k->node, "node", strdup(path), false);
	pr_info("k8s: API server %s (%s), node %s; nothing is applied before Services and "
		"EndpointSlices are both listed", k->conn.server, k->conn.source, k->node_name);
	r = xm_k8s_res_start(&k->svc);
	if (!r)
		r = xm_k8s_res_start(&k->eps);
	if (!r && k->node.path)
		r = xm_k8s_res_start(&k->node);
	return r;
}

void xm_k8s_stop(struct xm_agent *a)
{
	struct xm_k8s *k = a->k8s;

	if (!k)
		return;
	xm_k8s_res_free(&k->svc);
	xm_k8s_res_free(&k->eps);
	free((char *)k->node.path);
	xm_k8s_res_free(&k->node);
	xm_k8s_http_free(k);
	if (k->apply_tfd >= 0) {
		xm_loop_del(a->loop, k->apply_tfd);
		close(k->apply_tfd);
	}
	tdestroy(k->slices, free_slice);
	tdestroy(k->groups, free_group);
	xm_k8s_conn_free(&k->conn);
	curl_global_cleanup();
	free(k);
	a->k8s = NULL;
}
