// SPDX-License-Identifier: MIT
/*
 * The Kubernetes source (k8s.h): two list+watch resources and the node's own
 * object; once both lists are complete, every change is applied after a short
 * coalescing delay, through the service sources' merge and lbstate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
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

#define LABEL_ZONE "topology.kubernetes.io/zone"

unsigned long long xm_k8s_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

bool xm_k8s_ready(const struct xm_agent *a)
{
	return !a->k8s || __atomic_load_n(&a->k8s->ready, __ATOMIC_ACQUIRE);
}

static const struct xm_lb_svc_conf *prev_conf(void *arg, const struct xm_lb_svc_key *key)
{
	struct xm_k8s *k = arg;
	const struct xm_lb_svc_conf *p = k->have_last ? xm_lb_conf_find(&k->last.conf, key) : NULL;

	return p && p->params ? p : NULL; /* an entry moved to the new result: not there */
}

/* Notes (refused annotations, skipped ports) are logged when they first appear. */
static void log_new_notes(struct xm_k8s *k, const struct xm_k8s_result *r)
{
	for (unsigned int i = 0; i < r->conf.n_svc; i++) {
		const struct xm_k8s_svc_meta *m = &r->meta[i];
		bool known = false;

		if (!m->note[0] || (i && !strcmp(r->meta[i - 1].id, m->id)))
			continue;
		for (unsigned int j = 0; k->have_last && j < k->last.conf.n_svc && !known; j++)
			known = !strcmp(k->last.meta[j].id, m->id) &&
				!strcmp(k->last.meta[j].note, m->note);
		if (!known)
			pr_warn("k8s: service %s: %s", m->id, m->note);
	}
}

/*
 * Translate the Services whose objects changed; the others' entries are
 * moved over from the last result, which is dropped after this apply (a
 * change of one slice in 10,000 costs one Service's translation, not all).
 */
static int translate_changed(struct xm_k8s *k, struct xm_k8s_result *r)
{
	struct xm_k8s_node node = { .name = k->node_name, .zone = k->node_zone };
	json_t *by_svc, *v, *at;
	const char *key;
	char id[XM_K8S_ID_LEN], sid[XM_K8S_ID_LEN];
	int err = 0;

	if (k->all_dirty || !k->have_last) {
		/* whose slice is whose, for the changes to come */
		json_object_clear(k->slice_owner);
		json_object_foreach(k->eps.store, key, v)
			if (xm_k8s_slice_service(v, id, sizeof(id)))
				json_object_set_new(k->slice_owner, xm_k8s_object_id(v, sid, sizeof(sid)),
						    json_string(id));
		return xm_k8s_translate(k->svc.store, k->eps.store, &node, prev_conf, k, r);
	}
	memset(r, 0, sizeof(*r));
	by_svc = json_object();
	if (!by_svc)
		return -ENOMEM;
	json_object_foreach(k->eps.store, key, v) {
		json_t *arr;

		if (!xm_k8s_slice_service(v, id, sizeof(id)) || !json_object_get(k->dirty, id))
			continue;
		arr = json_object_get(by_svc, id);
		if (!arr && json_object_set_new(by_svc, id, arr = json_array()))
			err = -ENOMEM;
		if (err || json_array_append(arr, v)) {
			err = -ENOMEM;
			break;
		}
	}
	json_object_foreach(k->svc.store, key, v) {
		if (err)
			break;
		xm_k8s_object_id(v, id, sizeof(id));
		at = json_object_get(k->last_index, id);
		if (json_object_get(k->dirty, id) || !at) {
			err = xm_k8s_translate_service(v, json_object_get(by_svc, id), &node, prev_conf,
						       k, r);
			continue;
		}
		for (json_int_t i = json_integer_value(json_array_get(at, 0)),
				end = i + json_integer_value(json_array_get(at, 1));
		     i < end && !err; i++) {
			struct xm_lb_svc_conf *old = &k->last.conf.svc[i], s = *old;

			/* moved: last keeps the key for prev_conf(), not the backends */
			old->be = NULL;
			old->n_be = 0;
			old->params = NULL;
			err = xm_k8s_result_add(r, &s, &k->last.meta[i]);
		}
	}
	json_decref(by_svc);
	if (err) {
		xm_k8s_result_free(r);
		k->all_dirty = true; /* last lost entries to r: next time, everything */
	}
	return err;
}

/* Where each Service's entries are in r, for the next translate_changed(). */
static void index_result(struct xm_k8s *k, const struct xm_k8s_result *r)
{
	json_object_clear(k->last_index);
	for (unsigned int i = 0; i < r->conf.n_svc; i++) {
		json_t *at = json_object_get(k->last_index, r->meta[i].id);

		if (at)
			json_array_set_new(at, 1, json_integer(json_integer_value(json_array_get(at, 1)) + 1));
		else
			json_object_set_new(k->last_index, r->meta[i].id, json_pack("[ii]", i, 1));
	}
}

static void apply(struct xm_k8s *k)
{
	unsigned long long t0 = xm_k8s_now_ms(), t1;
	struct xm_k8s_result r;
	struct xm_k8s_svc_meta *meta;
	struct xm_lb_conf c;
	unsigned int n;
	int err;

	err = translate_changed(k, &r);
	t1 = xm_k8s_now_ms();
	if (err) {
		pr_err("k8s: translating the cluster's services: %s: tables kept", strerror(-err));
		return;
	}
	log_new_notes(k, &r);
	/* the sources take the services; we keep a copy for the next translation's prev */
	n = r.conf.n_svc;
	meta = calloc(n + 1, sizeof(*meta));
	c.svc = calloc(n + 1, sizeof(*c.svc));
	c.n_svc = 0;
	c.tick_ms = 0;
	if (!meta || !c.svc) {
		free(meta);
		free(c.svc);
		xm_k8s_result_free(&r);
		pr_err("k8s: out of memory: tables kept");
		return;
	}
	memcpy(meta, r.meta, n * sizeof(*meta));
	for (unsigned int i = 0; i < n; i++) {
		if (xm_lb_svc_conf_copy(&c.svc[i], &r.conf.svc[i]))
			break;
		c.n_svc++;
	}
	k->applies++;
	err = xm_svc_sources_replace(k->a, XM_SRC_CLUSTER, &c, meta);
	k->applied_ms = xm_k8s_now_ms();
	pr_info("k8s: applied %u services from the cluster (apply %lu, %lu changes, %u Services "
		"left alone; translate %llu ms, apply %llu ms)%s", n, k->applies, k->changes_pending,
		r.left_alone, t1 - t0, k->applied_ms - t1, err ? ": with errors, see above" : "");
	k->changes_pending = 0;
	if (k->have_last)
		xm_k8s_result_free(&k->last);
	k->last = r;
	k->have_last = true;
	index_result(k, &r);
	json_object_clear(k->dirty);
	k->all_dirty = false;
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

/* Which Services obj's change touches: itself, or the slice's Service now and before. */
static void mark_dirty(struct xm_k8s *k, struct xm_k8s_res *r, json_t *obj)
{
	char id[XM_K8S_ID_LEN], sid[XM_K8S_ID_LEN];
	const char *before;

	if (!obj || r == &k->node) {
		k->all_dirty = true;
		return;
	}
	if (r == &k->svc) {
		json_object_set_new(k->dirty, xm_k8s_object_id(obj, id, sizeof(id)), json_true());
		return;
	}
	xm_k8s_object_id(obj, sid, sizeof(sid));
	before = json_string_value(json_object_get(k->slice_owner, sid));
	if (before)
		json_object_set_new(k->dirty, before, json_true());
	if (xm_k8s_slice_service(obj, id, sizeof(id))) {
		json_object_set_new(k->dirty, id, json_true());
		json_object_set_new(k->slice_owner, sid, json_string(id));
	} else {
		json_object_del(k->slice_owner, sid);
	}
}

void xm_k8s_changed(struct xm_k8s *k, struct xm_k8s_res *r, json_t *obj)
{
	if (r == &k->node) {
		const char *z = json_string_value(json_object_get(
			json_object_get(json_object_get(r->store, "metadata"), "labels"), LABEL_ZONE));

		/* the node is read again now and then: only a new zone changes locality */
		if (k->node_seen && !strcmp(z ?: "", k->node_zone))
			return;
		pr_info("k8s: node %s, zone %s%s", k->node_name, z ?: "(none)",
			k->node_seen ? ": the zone changed, locality follows" : "");
		k->node_seen = true;
		snprintf(k->node_zone, sizeof(k->node_zone), "%s", z ?: "");
	}
	mark_dirty(k, r, obj);
	if (r == &k->node && !k->ready)
		return;
	k->changes_pending++;
	/* nothing is applied before both lists are complete: never a half view */
	if (!k->svc.synced || !k->eps.synced)
		return;
	/*
	 * The first change arms the timer and the ones until it fires ride along.
	 * Applies are at least XM_K8S_COALESCE_MS apart: after a quiet spell a
	 * change goes out at once (what arrived in the same read with it, too),
	 * in a burst one apply takes everything of the last 50 ms.
	 */
	if (!xm_loop_timer_armed(k->apply_tfd)) {
		long long wait = (long long)(k->applied_ms + XM_K8S_COALESCE_MS) - (long long)xm_k8s_now_ms();

		xm_loop_timer_arm(k->apply_tfd, wait > 1 ? wait : 1);
	}
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
	k->last_index = json_object();
	k->dirty = json_object();
	k->slice_owner = json_object();
	if (!k->last_index || !k->dirty || !k->slice_owner)
		return -ENOMEM;
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
	if (k->have_last)
		xm_k8s_result_free(&k->last);
	json_decref(k->last_index);
	json_decref(k->dirty);
	json_decref(k->slice_owner);
	xm_k8s_conn_free(&k->conn);
	curl_global_cleanup();
	free(k);
	a->k8s = NULL;
}
