// SPDX-License-Identifier: MIT
/* The service sources and their merge (svcsources.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "lbstate.h"
#include "lbtable.h"
#include "log.h"
#include "pin.h"
#include "svcmerge.h"
#include "svcsources.h"
#include "weighting.h"
#include "monoclock.h"

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
	struct xm_svc_merge merge; /* every source's services by key; cluster tags: their origin */
	struct weight_override *ov;
	unsigned int n_ov;
	bool cluster_on;
	json_t *clashes; /* "VIP:PORT/proto" already logged as a clash */
	char why[256];   /* why the last merge did not fit the node */
	int run_tfd;     /* a run file write waiting for its turn */
	unsigned long long run_written_ms; /* CLOCK_MONOTONIC of the last write */
};

const char *xm_svc_sources_why(const struct xm_agent *a)
{
	return a->sources ? a->sources->why : "";
}

static void write_run_file(struct xm_agent *a);

static void on_run_timer(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	xm_loop_timer_arm(fd, 0);
	write_run_file(arg);
}

/* A source's service as the merge holds it: its own allocation (s is left empty). */
static int merge_set(struct xm_svc_sources *ss, enum xm_svc_src src, struct xm_lb_svc_conf *s,
		     void *tag)
{
	struct xm_lb_svc_key key = s->key;
	struct xm_lb_svc_conf *own;

	own = malloc(sizeof(*own));
	if (!own) {
		xm_lb_svc_conf_free(s);
		free(tag);
		return -ENOMEM;
	}
	*own = *s;
	memset(s, 0, sizeof(*s));
	return xm_svc_merge_set(&ss->merge, src, &key, own, tag);
}

int xm_svc_sources_init(struct xm_agent *a, bool cluster_on)
{
	struct xm_lb_state *st = xm_services_state(a);
	struct xm_svc_sources *ss;
	struct xm_lb_conf adopted;
	int r;

	a->sources = ss = calloc(1, sizeof(*a->sources));
	if (!ss || !st)
		return -ENOMEM;
	ss->run_tfd = -1;
	ss->cluster_on = cluster_on;
	ss->clashes = json_object();
	r = xm_svc_merge_init(&ss->merge);
	if (!r)
		r = xm_lb_state_conf(st, &adopted);
	if (r)
		return r;
	ss->run_tfd = xm_loop_timer_add(a->loop, on_run_timer, a);
	for (unsigned int i = 0; i < adopted.n_svc && !r; i++)
		r = merge_set(ss, XM_SRC_ADOPTED, &adopted.svc[i], NULL);
	xm_svc_merge_commit(&ss->merge);
	xm_lb_conf_free(&adopted);
	return ss->run_tfd < 0 ? ss->run_tfd : r;
}

void xm_svc_sources_free(struct xm_agent *a)
{
	struct xm_svc_sources *ss = a->sources;

	if (!ss)
		return;
	if (ss->run_tfd >= 0) {
		/* a write still waiting: what the next `service list` reads while we are down */
		if (xm_loop_timer_armed(ss->run_tfd))
			write_run_file(a);
		xm_loop_del(a->loop, ss->run_tfd);
		close(ss->run_tfd);
	}
	xm_svc_merge_free(&ss->merge);
	free(ss->ov);
	json_decref(ss->clashes);
	free(ss);
	a->sources = NULL;
}

const struct xm_lb_svc_conf *xm_svc_sources_get(const struct xm_agent *a, enum xm_svc_src src,
						const struct xm_lb_svc_key *key)
{
	struct xm_svc_merge_ent *e = a->sources ? xm_svc_merge_find(&a->sources->merge, key) : NULL;

	return e ? e->conf[src] : NULL;
}

static bool same_backend(const struct xm_lb_be_conf *a, const struct xm_lb_be_conf *b)
{
	return a->port == b->port && a->family == b->family &&
	       !memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

struct xm_svc_origin *xm_svc_origin_new(const struct xm_k8s_svc_meta *m)
{
	size_t id_len = strlen(m->id) + 1, note_len = strlen(m->note) + 1;
	struct xm_svc_origin *o = malloc(sizeof(*o) + id_len + note_len);

	if (!o)
		return NULL;
	o->generation = m->generation;
	o->n_slices = m->n_slices;
	memcpy(o->id, m->id, id_len);
	memcpy(o->id + id_len, m->note, note_len);
	o->note = o->id + id_len;
	return o;
}

/* One applied service for the run file. */
static json_t *meta_json(const struct xm_lb_svc_key *key, const char *src,
			 const struct xm_svc_origin *m)
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
static void write_run_file(struct xm_agent *a)
{
	struct xm_svc_sources *ss = a->sources;
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *list = json_array(), *root = json_pack("{s:o}", "services", list);

	ss->run_written_ms = xm_mono_ms();
	if (!root || xm_run_path(path, sizeof(path), a->pin_root, "services.json"))
		goto out;
	for (struct xm_svc_merge_ent *e = xm_svc_merge_first(&ss->merge); e;
	     e = xm_svc_merge_next(&ss->merge, e)) {
		int w = xm_svc_merge_winner(e);

		if (w >= 0)
			json_array_append_new(list, meta_json(&e->key, src_names[w], e->tag[w]));
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(root, tmp, JSON_COMPACT) || rename(tmp, path)) {
		pr_warn("cannot write %s: `xmeshctl service list` shows no sources", path);
		unlink(tmp);
	}
out:
	json_decref(root);
}

/*
 * At once, or (the cluster's changes) from the loop, never in the apply
 * whose latency counts, and XM_RUN_FILE_MIN_MS after the last write at the
 * earliest: the file is every service's line, the change may be one.
 */
static void run_file_changed(struct xm_agent *a, bool soon)
{
	struct xm_svc_sources *ss = a->sources;
	unsigned long long due = ss->run_written_ms + XM_RUN_FILE_MIN_MS, now = xm_mono_ms();

	if (!soon || ss->run_tfd < 0) {
		xm_loop_timer_arm(ss->run_tfd, 0);
		write_run_file(a);
	} else if (!xm_loop_timer_armed(ss->run_tfd)) {
		xm_loop_timer_arm(ss->run_tfd, due > now ? (long)(due - now) : 1);
	}
}

/* s with the weights set through the socket, in *copy; s itself when it has none. */
static const struct xm_lb_svc_conf *with_overrides(struct xm_svc_sources *ss,
						   const struct xm_lb_svc_conf *s,
						   struct xm_lb_svc_conf *copy, bool *copied)
{
	*copied = false;
	for (unsigned int o = 0; s && o < ss->n_ov; o++) {
		if (memcmp(&ss->ov[o].key, &s->key, sizeof(s->key)))
			continue;
		if (!*copied) {
			if (xm_lb_svc_conf_copy(copy, s))
				return NULL;
			*copied = true;
		}
		for (unsigned int b = 0; b < copy->n_be; b++)
			if (same_backend(&copy->be[b], &ss->ov[o].be))
				copy->be[b].weight = ss->ov[o].be.weight;
	}
	return *copied ? copy : s;
}

/*
 * Apply the keys the merge's batch changed, and only those; a batch that
 * does not fit the node is undone (-E2BIG, why kept for the caller).
 */
static int apply(struct xm_agent *a, bool soon)
{
	struct xm_svc_sources *ss = a->sources;
	struct xm_lb_state *st = xm_services_state(a);
	struct xm_lb_change *ch = NULL;
	struct xm_lb_svc_conf *copies = NULL;
	unsigned int n = 0, n_copies = 0;
	int r = -ENOMEM;

	if (!st) {
		xm_svc_merge_rollback(&ss->merge);
		return -ENODEV;
	}
	for (struct xm_svc_merge_ent *e = ss->merge.changed; e; e = e->next_changed)
		n++;
	ch = calloc(n + 1, sizeof(*ch));
	copies = calloc(n + 1, sizeof(*copies));
	if (!ch || !copies)
		goto out;
	n = 0;
	for (struct xm_svc_merge_ent *e = ss->merge.changed; e; e = e->next_changed) {
		int w = xm_svc_merge_winner(e);
		const struct xm_lb_svc_conf *s = w < 0 ? NULL : e->conf[w];
		bool copied;

		/* lower precedence; a file/cluster clash is said once */
		if (e->conf[XM_SRC_FILE] && e->conf[XM_SRC_CLUSTER] && w == XM_SRC_FILE) {
			char ks[96];
			const struct xm_svc_origin *m = e->tag[XM_SRC_CLUSTER];

			xm_lb_svc_key_str(&e->key, ks, sizeof(ks));
			if (!json_object_get(ss->clashes, ks)) {
				pr_warn("service %s is both in the config file and in the cluster (%s): "
					"the file's definition is used", ks, m ? m->id : "?");
				json_object_set_new(ss->clashes, ks, json_true());
			}
		}
		ch[n].key = e->key;
		ch[n].conf = with_overrides(ss, s, &copies[n_copies], &copied);
		if (s && !ch[n].conf)
			goto out; /* -ENOMEM, nothing written */
		n_copies += copied;
		n++;
	}
	/* Nothing is written unless the change fits the node; why is kept for the caller. */
	r = xm_lb_state_apply_changes(st, ch, n, ss->why, sizeof(ss->why));
	if (r == -E2BIG)
		goto out;
	/* applied (a service that failed to apply keeps its table and says why) */
	xm_svc_merge_commit(&ss->merge);
	if (n)
		run_file_changed(a, soon);
	xm_weighting_topology_changed(a);
	xm_lb_probes_sync(a);
	goto done;
out:
	xm_svc_merge_rollback(&ss->merge);
done:
	for (unsigned int c = 0; c < n_copies; c++)
		xm_lb_svc_conf_free(&copies[c]);
	free(copies);
	free(ch);
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

int xm_svc_sources_replace(struct xm_agent *a, enum xm_svc_src src, struct xm_lb_conf *c)
{
	struct xm_svc_sources *ss = a->sources;
	struct weight_override *old_ov = ss->ov;
	unsigned int old_n_ov = ss->n_ov;
	int r;

	/*
	 * A new file ends the control socket's changes (and its weights); a file
	 * when there is no cluster ends what was adopted from the pins. What is
	 * replaced is kept until the change fits the node.
	 */
	r = xm_svc_merge_drop_src(&ss->merge, src);
	if (!r && src == XM_SRC_FILE)
		r = xm_svc_merge_drop_src(&ss->merge, XM_SRC_CTL);
	if (!r && (src == XM_SRC_CLUSTER || (src == XM_SRC_FILE && !ss->cluster_on)))
		r = xm_svc_merge_drop_src(&ss->merge, XM_SRC_ADOPTED);
	for (unsigned int i = 0; i < c->n_svc && !r; i++)
		r = merge_set(ss, src, &c->svc[i], NULL);
	xm_lb_conf_free(c);
	if (r) {
		xm_svc_merge_rollback(&ss->merge);
		return r;
	}
	if (src == XM_SRC_FILE) {
		ss->ov = NULL;
		ss->n_ov = 0;
	}
	r = apply(a, false);
	if (r == -E2BIG) {
		if (src == XM_SRC_FILE) {
			ss->ov = old_ov;
			ss->n_ov = old_n_ov;
		}
		return r;
	}
	if (src == XM_SRC_FILE) {
		free(old_ov);
		json_object_clear(ss->clashes);
	}
	return r;
}

int xm_svc_sources_update(struct xm_agent *a, enum xm_svc_src src, struct xm_svc_update *u,
			  unsigned int n, bool first_view)
{
	struct xm_svc_sources *ss = a->sources;
	int r = first_view ? xm_svc_merge_drop_src(&ss->merge, XM_SRC_ADOPTED) : 0;

	/* removals first: a key that moves from one Service to another ends with the new one */
	for (unsigned int i = 0; i < n && !r; i++)
		if (!u[i].conf)
			r = xm_svc_merge_set(&ss->merge, src, &u[i].key, NULL, NULL);
	for (unsigned int i = 0; i < n; i++) {
		if (u[i].conf && !r) {
			r = merge_set(ss, src, u[i].conf, u[i].meta);
		} else {
			if (u[i].conf)
				xm_lb_svc_conf_free(u[i].conf);
			free(u[i].meta);
		}
		free(u[i].conf);
		u[i].conf = NULL;
		u[i].meta = NULL;
	}
	if (r) {
		xm_svc_merge_rollback(&ss->merge);
		return r;
	}
	return apply(a, src == XM_SRC_CLUSTER);
}

int xm_svc_sources_put(struct xm_agent *a, struct xm_lb_svc_conf *s)
{
	int r = merge_set(a->sources, XM_SRC_CTL, s, NULL);

	return r ?: apply(a, false);
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
	struct xm_svc_merge_ent *e = xm_svc_merge_find(&ss->merge, key);
	int r = 0;

	if (!e || xm_svc_merge_winner(e) < 0)
		return -ENOENT;
	drop_overrides(ss, key);
	/* from every source: until the file is reloaded or the cluster changes that service */
	for (int i = 0; i < XM_SRC_N && !r; i++)
		if (e->conf[i])
			r = xm_svc_merge_set(&ss->merge, i, key, NULL, NULL);
	if (r) {
		xm_svc_merge_rollback(&ss->merge);
		return r;
	}
	return apply(a, false);
}
