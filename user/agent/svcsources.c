// SPDX-License-Identifier: MIT
/* The service sources and their merge (svcsources.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"
#include "lbstate.h"
#include "lbtable.h"
#include "log.h"
#include "pin.h"
#include "svcsources.h"
#include "weighting.h"

static const char *const src_names[XM_SRC_N] = {
	[XM_SRC_CTL] = "control",
	[XM_SRC_FILE] = "file",
	[XM_SRC_CLUSTER] = "cluster",
	[XM_SRC_ADOPTED] = "adopted",
};

/* A backend weight set through the control socket. */
struct weight_override {
	struct xm_lb_svc_key key;
	struct xm_lb_be_conf be; /* address, port, family; weight = the one set */
};

struct xm_svc_sources {
	struct xm_lb_conf layer[XM_SRC_N];
	struct weight_override *ov;
	unsigned int n_ov;
	struct xm_k8s_svc_meta *cluster_meta; /* parallel to layer[XM_SRC_CLUSTER].svc */
	bool cluster_on;
	json_t *clashes; /* "VIP:PORT/proto" already logged as a clash */
};

int xm_svc_sources_init(struct xm_agent *a, bool cluster_on)
{
	struct xm_lb_state *st = xm_services_state();

	a->sources = calloc(1, sizeof(*a->sources));
	if (!a->sources || !st)
		return -ENOMEM;
	a->sources->cluster_on = cluster_on;
	a->sources->clashes = json_object();
	return xm_lb_state_conf(st, &a->sources->layer[XM_SRC_ADOPTED]);
}

void xm_svc_sources_free(struct xm_agent *a)
{
	struct xm_svc_sources *ss = a->sources;

	if (!ss)
		return;
	for (int i = 0; i < XM_SRC_N; i++)
		xm_lb_conf_free(&ss->layer[i]);
	free(ss->cluster_meta);
	free(ss->ov);
	json_decref(ss->clashes);
	free(ss);
	a->sources = NULL;
}

static bool same_backend(const struct xm_lb_be_conf *a, const struct xm_lb_be_conf *b)
{
	return a->port == b->port && a->family == b->family &&
	       !memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

/* One applied service for the run file. */
static json_t *meta_json(const struct xm_lb_svc_key *key, const char *src,
			 const struct xm_k8s_svc_meta *m)
{
	char ks[96];
	json_t *o = json_pack("{s:s,s:s}", "service", xm_lb_svc_key_str(key, ks, sizeof(ks)),
			      "source", src);

	if (o && m) {
		json_object_set_new(o, "k8s", json_string(m->id));
		json_object_set_new(o, "generation", json_integer(m->generation));
		json_object_set_new(o, "slices", json_integer(m->n_slices));
		json_object_set_new(o, "note", json_string(m->note));
	}
	return o;
}

/* Written whole to a temporary name, then renamed: readers never see half a file. */
static void write_run_file(struct xm_agent *a, json_t *list)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *root = json_pack("{s:O}", "services", list);

	if (!root || xm_run_path(path, sizeof(path), a->pin_root, "services.json"))
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(root, tmp, JSON_COMPACT) || rename(tmp, path)) {
		pr_warn("cannot write %s: `xmeshctl service list` shows no sources", path);
		unlink(tmp);
	}
out:
	json_decref(root);
}

/* Merge the sources and apply the result. */
static int apply(struct xm_agent *a)
{
	struct xm_svc_sources *ss = a->sources;
	struct xm_lb_state *st = xm_services_state();
	struct xm_lb_conf merged = {};
	json_t *list = json_array(), *seen = json_object();
	unsigned int total = 0, n_copies = 0, *copies = NULL;
	int r = -ENOMEM;

	if (!st) {
		r = -ENODEV;
		goto out;
	}
	for (int i = 0; i < XM_SRC_N; i++)
		total += ss->layer[i].n_svc;
	merged.svc = calloc(total + 1, sizeof(*merged.svc));
	if (!merged.svc || !list || !seen)
		goto out;
	for (int i = 0; i < XM_SRC_N; i++) {
		for (unsigned int j = 0; j < ss->layer[i].n_svc; j++) {
			const struct xm_lb_svc_conf *s = &ss->layer[i].svc[j];
			char ks[96];
			const char *by;

			/* seen: a hash of the keys taken, so a merge is O(services) */
			by = json_string_value(
				json_object_get(seen, xm_lb_svc_key_str(&s->key, ks, sizeof(ks))));
			if (by) {
				/* lower precedence; a file/cluster clash is said once */

				if (i == XM_SRC_CLUSTER && by && !strcmp(by, "file") &&
				    !json_object_get(ss->clashes, ks)) {
					pr_warn("service %s is both in the config file and in the "
						"cluster (%s): the file's definition is used", ks,
						ss->cluster_meta[j].id);
					json_object_set_new(ss->clashes, ks, json_true());
				}
				continue;
			}
			merged.svc[merged.n_svc++] = *s; /* shallow: lbstate copies */
			json_object_set_new(seen, ks, json_string(src_names[i]));
			json_array_append_new(list, meta_json(&s->key, src_names[i],
							      i == XM_SRC_CLUSTER ? &ss->cluster_meta[j]
										  : NULL));
		}
	}
	/* weights set through the socket: on a copy of the service they apply to */
	copies = calloc(merged.n_svc + 1, sizeof(*copies));
	if (!copies)
		goto out;
	for (unsigned int j = 0; j < merged.n_svc && ss->n_ov; j++) {
		struct xm_lb_svc_conf *s = &merged.svc[j];
		bool copied = false;

		for (unsigned int o = 0; o < ss->n_ov; o++) {
			if (memcmp(&ss->ov[o].key, &s->key, sizeof(s->key)))
				continue;
			if (!copied) {
				struct xm_lb_svc_conf c;

				if (xm_lb_svc_conf_copy(&c, s))
					goto out;
				*s = c;
				copied = true;
				copies[n_copies++] = j;
			}
			for (unsigned int b = 0; b < s->n_be; b++)
				if (same_backend(&s->be[b], &ss->ov[o].be))
					s->be[b].weight = ss->ov[o].be.weight;
		}
	}
	r = xm_lb_state_apply(st, &merged);
	write_run_file(a, list);
	xm_weighting_topology_changed(a);
out:
	for (unsigned int c = 0; copies && c < n_copies; c++)
		xm_lb_svc_conf_free(&merged.svc[copies[c]]);
	free(copies);
	free(merged.svc);
	json_decref(list);
	json_decref(seen);
	return r;
}

static void drop_overrides(struct xm_svc_sources *ss, const struct xm_lb_svc_key *key)
{
	for (unsigned int o = 0; o < ss->n_ov;)
		if (!key || !memcmp(&ss->ov[o].key, key, sizeof(*key)))
			ss->ov[o] = ss->ov[--ss->n_ov];
		else
			o++;
}

int xm_svc_sources_replace(struct xm_agent *a, enum xm_svc_src src, struct xm_lb_conf *c,
			   struct xm_k8s_svc_meta *meta)
{
	struct xm_svc_sources *ss = a->sources;

	xm_lb_conf_free(&ss->layer[src]);
	ss->layer[src] = *c;
	memset(c, 0, sizeof(*c));
	if (src == XM_SRC_CLUSTER) {
		free(ss->cluster_meta);
		ss->cluster_meta = meta;
	}
	if (src == XM_SRC_FILE) {
		xm_lb_conf_free(&ss->layer[XM_SRC_CTL]);
		drop_overrides(ss, NULL);
		json_object_clear(ss->clashes);
	}
	if (src == XM_SRC_CLUSTER || (src == XM_SRC_FILE && !ss->cluster_on))
		xm_lb_conf_free(&ss->layer[XM_SRC_ADOPTED]);
	return apply(a);
}

int xm_svc_sources_put(struct xm_agent *a, struct xm_lb_svc_conf *s)
{
	struct xm_lb_conf *ctl = &a->sources->layer[XM_SRC_CTL];
	struct xm_lb_svc_conf *old = xm_lb_conf_find(ctl, &s->key);

	if (old) {
		xm_lb_svc_conf_free(old);
		*old = *s;
	} else {
		struct xm_lb_svc_conf *n = realloc(ctl->svc, (ctl->n_svc + 1) * sizeof(*n));

		if (!n) {
			xm_lb_svc_conf_free(s);
			return -ENOMEM;
		}
		ctl->svc = n;
		ctl->svc[ctl->n_svc++] = *s;
	}
	memset(s, 0, sizeof(*s));
	return apply(a);
}

void xm_svc_sources_set_weight(struct xm_agent *a, const struct xm_lb_svc_key *key,
			       const struct xm_lb_be_conf *be, double weight)
{
	struct xm_svc_sources *ss = a->sources;
	struct weight_override *n;

	for (unsigned int o = 0; o < ss->n_ov; o++) {
		if (!memcmp(&ss->ov[o].key, key, sizeof(*key)) && same_backend(&ss->ov[o].be, be)) {
			ss->ov[o].be.weight = weight;
			return;
		}
	}
	n = realloc(ss->ov, (ss->n_ov + 1) * sizeof(*n));
	if (!n) {
		pr_warn("out of memory: the weight holds until the next change of the service");
		return;
	}
	ss->ov = n;
	ss->ov[ss->n_ov] = (struct weight_override){ .key = *key, .be = *be };
	ss->ov[ss->n_ov++].be.weight = weight;
}


int xm_svc_sources_del(struct xm_agent *a, const struct xm_lb_svc_key *key)
{
	struct xm_svc_sources *ss = a->sources;
	bool hit = false;

	drop_overrides(ss, key);
	/* from every source: until the file is reloaded or the cluster changes it */
	for (int i = 0; i < XM_SRC_N; i++) {
		struct xm_lb_conf *l = &ss->layer[i];
		struct xm_lb_svc_conf *s = xm_lb_conf_find(l, key);

		if (!s)
			continue;
		hit = true;
		xm_lb_svc_conf_free(s);
		*s = l->svc[--l->n_svc];
		if (i == XM_SRC_CLUSTER)
			ss->cluster_meta[s - l->svc] = ss->cluster_meta[l->n_svc];
	}
	return hit ? apply(a) : -ENOENT;
}
