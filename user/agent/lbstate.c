// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "addr.h"
#include "lbstate.h"
#include "log.h"
#include "pin.h"
#include <xmesh/rebalance.h>
#include <xmesh/weight.h>

static int cluster_id(struct xm_lb_state *st, const char *name, __u16 *id)
{
	int free_id = -1;

	for (int i = 0; i < XM_LB_MAX_CLUSTERS; i++) {
		if (!strcmp(st->clusters[i], name)) {
			*id = i;
			return 0;
		}
		if (!st->clusters[i][0] && free_id < 0)
			free_id = i;
	}
	if (free_id < 0)
		return -ENOSPC;
	struct xm_lb_cluster c = {};
	__u32 k = free_id;

	snprintf(c.name, sizeof(c.name), "%s", name);
	if (bpf_map_update_elem(st->m.cluster, &k, &c, BPF_ANY))
		return -errno;
	snprintf(st->clusters[free_id], sizeof(st->clusters[0]), "%s", name);
	*id = free_id;
	return 0;
}

/*
 * The rows the weighting publishes per backend id (its filtered view, the
 * rebalancing counts) describe the backend the id was handed out to. The
 * weighting clears a row when it sees the id go, but ids freed and handed
 * out again before it looks (an agent restarted with another configuration
 * does both at start) kept the last holder's: `backend list` showed a new
 * backend with another service's retired connections.
 */
static void pub_row_reset(struct xm_lb_state *st, const char *map, __u32 id)
{
	static const union {
		struct xm_lb_wstate w;
		struct xm_lb_rstate r;
	} zero;
	int fd = xm_map_open(st->pin_root, map);

	if (fd < 0)
		return; /* not published yet: nothing stale */
	if (bpf_map_update_elem(fd, &id, &zero, BPF_ANY))
		pr_warn("LB: clear %s of backend %u: %s", map, id, strerror(errno));
	close(fd);
}

/* Zero what is counted per id about to be reused, so counts start from 0. */
static void probe_reset(struct xm_lb_state *st, __u32 id)
{
	int err = xm_lb_probe_zero(&st->m, id);

	if (err)
		pr_warn("LB: zero the probes of backend %u: %s", id, strerror(-err));
	pub_row_reset(st, "xm_lb_wstate", id);
	pub_row_reset(st, "xm_lb_rstate", id);
}

static int be_alloc(struct xm_lb_state *st, __u32 *id)
{
	for (__u32 n = 0; n < XM_LB_MAX_BACKENDS; n++) {
		__u32 i = (st->be_cursor + n) % XM_LB_MAX_BACKENDS;

		if (i == 0 || st->be_used[i])
			continue;
		st->be_used[i] = 1;
		st->be_cursor = i + 1;
		probe_reset(st, i);
		*id = i;
		return 0;
	}
	return -ENOSPC;
}

/* Not selectable any more; its counters stay readable until the id is reused. */
static void be_release(struct xm_lb_state *st, __u32 id)
{
	struct xm_lb_backend be;

	if (!bpf_map_lookup_elem(st->m.be, &id, &be)) {
		be.flags = XM_LB_BE_F_REMOVED;
		bpf_map_update_elem(st->m.be, &id, &be, BPF_ANY);
	}
	st->be_used[id] = 0;
}

static int svc_alloc(struct xm_lb_state *st, __u32 *id)
{
	for (__u32 i = 0; i < XM_LB_MAX_SERVICES; i++) {
		if (!st->svc_used[i]) {
			st->svc_used[i] = 1;
			*id = i;
			return 0;
		}
	}
	return -ENOSPC;
}

struct xm_lb_svc_rt *xm_lb_state_find(struct xm_lb_state *st, const struct xm_lb_svc_key *key)
{
	for (unsigned int i = 0; i < st->n_svc; i++)
		if (!memcmp(&st->svc[i].conf.key, key, sizeof(*key)))
			return &st->svc[i];
	return NULL;
}

static struct xm_lb_svc_rt *rt_add(struct xm_lb_state *st)
{
	struct xm_lb_svc_rt *n = realloc(st->svc, (st->n_svc + 1) * sizeof(*n));

	if (!n)
		return NULL;
	st->svc = n;
	memset(&n[st->n_svc], 0, sizeof(n[0]));
	return &n[st->n_svc++];
}

static void clusters_gc(struct xm_lb_state *st);

int xm_lb_state_init(struct xm_lb_state *st, const char *pin_root)
{
	struct xm_lb_svc_key key, next, *prev = NULL;
	struct xm_lb_cluster cl;
	int err;

	memset(st, 0, sizeof(*st));
	st->be_cursor = 1;
	st->pin_root = pin_root;
	err = xm_lb_maps_open(&st->m, pin_root);
	if (err)
		return err;
	for (__u32 i = 0; i < XM_LB_MAX_CLUSTERS; i++)
		if (!bpf_map_lookup_elem(st->m.cluster, &i, &cl))
			snprintf(st->clusters[i], sizeof(st->clusters[i]), "%s", cl.name);
	/* Adopt what is pinned: same ids, so live connections' probes stay attributed. */
	while (bpf_map_get_next_key(st->m.svc, prev, &next) == 0) {
		struct xm_lb_svc_rt *rt;
		struct xm_lb_svc svc;
		char ks[96];

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(st->m.svc, &key, &svc) || svc.id >= XM_LB_MAX_SERVICES)
			continue;
		rt = rt_add(st);
		if (!rt)
			return -ENOMEM;
		rt->id = svc.id;
		st->svc_used[svc.id] = 1;
		rt->conf.key = key;
		snprintf(rt->conf.algorithm, sizeof(rt->conf.algorithm), XM_LB_ALGO_STATIC);
		rt->conf.params = json_object();
		rt->conf.be = calloc(XM_LB_MAX_SVC_BACKENDS, sizeof(*rt->conf.be));
		rt->be_ids = calloc(XM_LB_MAX_SVC_BACKENDS, sizeof(*rt->be_ids));
		if (!rt->conf.be || !rt->be_ids)
			return -ENOMEM;
		pr_info("adopted service %s (id %u)", xm_lb_svc_key_str(&key, ks, sizeof(ks)), svc.id);
	}
	for (__u32 id = 1; id < XM_LB_MAX_BACKENDS; id++) {
		struct xm_lb_backend be;

		if (bpf_map_lookup_elem(st->m.be, &id, &be) || !(be.flags & XM_LB_BE_F_USED))
			continue;
		st->be_used[id] = 1;
		if (id >= st->be_cursor)
			st->be_cursor = id + 1;
		for (unsigned int i = 0; i < st->n_svc; i++) {
			struct xm_lb_svc_rt *rt = &st->svc[i];
			struct xm_lb_be_conf *bc;

			if (rt->id != be.svc_id || rt->conf.n_be >= XM_LB_MAX_SVC_BACKENDS)
				continue;
			bc = &rt->conf.be[rt->conf.n_be];
			bc->addr = be.addr;
			bc->port = be.port;
			bc->family = be.family;
			/*
			 * The weight the table in force was written from: the
			 * weighting loop's if the table is its own, so that a config
			 * that makes the service static writes the config's table
			 * (its weights differ from the loop's); else the configured
			 * one, so that an unchanged static service keeps its table.
			 */
			bc->weight = xm_lb_weight_shown(&st->m, id, &be);
			snprintf(bc->cluster, sizeof(bc->cluster), "%s",
				 be.cluster < XM_LB_MAX_CLUSTERS ? st->clusters[be.cluster] : "");
			rt->be_ids[rt->conf.n_be++] = id;
		}
	}
	/* Labels a previous agent left unused (or leaked) are free again. */
	clusters_gc(st);
	return 0;
}

static void rt_free(struct xm_lb_svc_rt *rt)
{
	xm_lb_svc_conf_free(&rt->conf);
	free(rt->be_ids);
	rt->be_ids = NULL;
}

void xm_lb_state_free(struct xm_lb_state *st)
{
	for (unsigned int i = 0; i < st->n_svc; i++)
		rt_free(&st->svc[i]);
	free(st->svc);
	st->svc = NULL;
	st->n_svc = 0;
	xm_lb_maps_close(&st->m);
}

/*
 * A table written from the config is in force: what readers show as these
 * backends' weights is the configured one again (weight_milli), not the last
 * the weighting loop wrote a table from, until the loop writes its own
 * (XM_WSTATE_F_TABLE, include/xmesh/weight.h). One lookup and update per
 * backend, only when the agent applies a change.
 */
static void loop_table_forget(struct xm_lb_state *st, const __u32 *ids, unsigned int n)
{
	int fd = xm_map_open(st->pin_root, "xm_lb_wstate");

	if (fd < 0)
		return; /* no loop has published: nothing to forget */
	for (unsigned int i = 0; i < n; i++) {
		struct xm_lb_wstate w;

		if (bpf_map_lookup_elem(fd, &ids[i], &w) || !(w.flags & XM_WSTATE_F_TABLE))
			continue;
		w.flags &= ~XM_WSTATE_F_TABLE;
		if (bpf_map_update_elem(fd, &ids[i], &w, BPF_EXIST))
			pr_warn("LB: backend %u: clear the weighting's table flag: %s", ids[i],
				strerror(errno));
	}
	close(fd);
}

/* Write a service's table from weights (the config's, or a control request's). */
static int table_write_conf(struct xm_lb_state *st, const struct xm_lb_svc_key *key,
			    const __u32 *ids, const double *w, unsigned int n)
{
	int err = xm_lb_table_write(&st->m, key, ids, w, n);

	if (!err)
		loop_table_forget(st, ids, n);
	return err;
}

int xm_lb_state_set_weights(struct xm_lb_state *st, struct xm_lb_svc_rt *rt, const double *w)
{
	return table_write_conf(st, &rt->conf.key, rt->be_ids, w, rt->conf.n_be);
}

static int be_match(const struct xm_lb_be_conf *a, const struct xm_lb_be_conf *b)
{
	return a->port == b->port && a->family == b->family && !memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

/*
 * The service is applied as s says already. Sources re-send every service on
 * each change of any (the cluster's, many a second); rewriting an unchanged
 * table would cost map writes and throw away what the weighting loop wrote.
 */
static bool same_conf(const struct xm_lb_svc_conf *a, const struct xm_lb_svc_conf *b)
{
	if (a->n_be != b->n_be || strcmp(a->algorithm, b->algorithm) || strcmp(a->name, b->name) ||
	    !json_equal(a->params, b->params))
		return false;
	for (unsigned int i = 0; i < a->n_be; i++)
		if (!be_match(&a->be[i], &b->be[i]) || a->be[i].weight != b->be[i].weight ||
		    strcmp(a->be[i].cluster, b->be[i].cluster))
			return false;
	return true;
}

/*
 * Bring one service to s: backends first, then its table, then drop the old
 * ones; rt is its applied state (xm_lb_state_find()), NULL when it is new.
 */
static int apply_service(struct xm_lb_state *st, const struct xm_lb_svc_conf *s,
			 struct xm_lb_svc_rt *rt)
{
	struct xm_lb_svc_conf copy;
	bool *fresh = NULL, *taken = NULL, have_copy = false;
	__u32 *ids = NULL;
	double *w = NULL;
	char ks[96];
	int err;

	if (rt && same_conf(&rt->conf, s))
		return 0;
	xm_lb_svc_key_str(&s->key, ks, sizeof(ks));
	if (!rt) {
		struct xm_lb_svc svc = {};

		rt = rt_add(st);
		if (!rt)
			return -ENOMEM;
		err = svc_alloc(st, &rt->id);
		if (!err) {
			/* no backends yet: a connect() now is refused, never half-served */
			svc.id = rt->id;
			if (bpf_map_update_elem(st->m.svc, &s->key, &svc, BPF_NOEXIST))
				err = -errno;
		}
		if (err) {
			st->n_svc--;
			pr_err("service %s: %s", ks, strerror(-err));
			return err;
		}
		rt->conf.key = s->key;
		pr_info("service %s added (id %u)", ks, rt->id);
	}
	ids = calloc(s->n_be + 1, sizeof(*ids));
	w = calloc(s->n_be + 1, sizeof(*w));
	fresh = calloc(s->n_be + 1, sizeof(*fresh));
	taken = calloc(rt->conf.n_be + 1, sizeof(*taken));
	if (!ids || !w || !fresh || !taken) {
		err = -ENOMEM;
		goto out;
	}
	err = xm_lb_svc_conf_copy(&copy, s);
	if (err)
		goto out;
	have_copy = true;
	for (unsigned int j = 0; j < s->n_be; j++) {
		const struct xm_lb_be_conf *bc = &s->be[j];
		struct xm_lb_backend be = {};
		bool reused = false;

		for (unsigned int k = 0; k < rt->conf.n_be; k++) {
			if (!taken[k] && rt->be_ids[k] && be_match(&rt->conf.be[k], bc)) {
				ids[j] = rt->be_ids[k];
				taken[k] = true;
				reused = true;
				break;
			}
		}
		if (!reused) {
			err = be_alloc(st, &ids[j]);
			if (err) {
				pr_err("service %s: no backend id left (max %u)", ks,
				       XM_LB_MAX_BACKENDS - 1);
				goto out;
			}
			fresh[j] = true;
		}
		if (reused)
			bpf_map_lookup_elem(st->m.be, &ids[j], &be);
		be.addr = bc->addr;
		be.port = bc->port;
		be.family = bc->family;
		be.proto = s->key.proto;
		be.svc_id = rt->id;
		be.flags = XM_LB_BE_F_USED;
		err = cluster_id(st, bc->cluster, &be.cluster);
		if (!err && bpf_map_update_elem(st->m.be, &ids[j], &be, BPF_ANY))
			err = -errno;
		if (err) {
			pr_err("service %s: backend entry: %s", ks, strerror(-err));
			goto out;
		}
	}
	xm_lb_conf_weights(s, w);
	err = table_write_conf(st, &s->key, ids, w, s->n_be);
	if (err) {
		pr_err("service %s: write table: %s", ks, strerror(-err));
		goto out;
	}
	/* Backends that left: no slot any more; their connections keep running. */
	for (unsigned int k = 0; k < rt->conf.n_be; k++) {
		if (rt->be_ids[k] && !taken[k]) {
			char a[XM_ADDR_STRLEN];

			pr_info("service %s: backend %s:%u removed", ks,
				xm_addr_str(rt->conf.be[k].family, &rt->conf.be[k].addr, a, sizeof(a)),
				rt->conf.be[k].port);
			be_release(st, rt->be_ids[k]);
		}
	}
	rt_free(rt);
	rt->conf = copy;
	rt->be_ids = ids;
	have_copy = false;
	ids = NULL;
	pr_debug("service %s: %u backends, algorithm %s", ks, s->n_be, s->algorithm);
out:
	/* on failure the service keeps its table; ids handed out for it go back */
	for (unsigned int j = 0; ids && fresh && j < s->n_be; j++)
		if (fresh[j] && ids[j])
			be_release(st, ids[j]);
	if (have_copy)
		xm_lb_svc_conf_free(&copy);
	free(ids);
	free(w);
	free(fresh);
	free(taken);
	return err;
}

static void remove_service(struct xm_lb_state *st, unsigned int i)
{
	struct xm_lb_svc_rt *rt = &st->svc[i];
	char ks[96];

	bpf_map_delete_elem(st->m.svc, &rt->conf.key);
	for (unsigned int k = 0; k < rt->conf.n_be; k++)
		if (rt->be_ids[k])
			be_release(st, rt->be_ids[k]);
	st->svc_used[rt->id] = 0;
	pr_info("service %s removed", xm_lb_svc_key_str(&rt->conf.key, ks, sizeof(ks)));
	rt_free(rt);
	st->svc[i] = st->svc[--st->n_svc];
}

static bool name_in(const char (*names)[XM_LB_CLUSTER_NAME_LEN], unsigned int n, const char *name)
{
	for (unsigned int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* Add name to a set of at most XM_LB_MAX_CLUSTERS + 1 names; false when it is full. */
static bool name_add(char (*names)[XM_LB_CLUSTER_NAME_LEN], unsigned int *n, const char *name)
{
	if (name_in((const char (*)[XM_LB_CLUSTER_NAME_LEN])names, *n, name))
		return true;
	if (*n > XM_LB_MAX_CLUSTERS)
		return false;
	snprintf(names[(*n)++], XM_LB_CLUSTER_NAME_LEN, "%s", name);
	return true;
}

/* A change list's entry for each applied service at key, or -1; 0 or -ENOMEM. */
static int changes_index(const struct xm_lb_change *ch, unsigned int n, struct xm_lb_key_index *ix)
{
	return xm_lb_key_index_init(ix, &ch[0].key, n, sizeof(ch[0]));
}

/*
 * The cluster labels of the node after the change (desired alone and with the
 * applied ones that stay until their backends move), as at most
 * XM_LB_MAX_CLUSTERS + 1 names: the slow path, taken only when a change
 * brings a label the node does not have.
 */
static int check_labels(const struct xm_lb_state *st, const struct xm_lb_change *ch,
			unsigned int n, const struct xm_lb_key_index *changed, char *why, size_t len)
{
	char (*names)[XM_LB_CLUSTER_NAME_LEN] = calloc(XM_LB_MAX_CLUSTERS + 1, sizeof(*names));
	unsigned int n_names = 0;
	int err = 0;

	if (!names)
		return -ENOMEM;
	for (unsigned int i = 0; i < n && !err; i++)
		for (unsigned int j = 0; ch[i].conf && j < ch[i].conf->n_be && !err; j++)
			if (!name_add(names, &n_names, ch[i].conf->be[j].cluster))
				err = -E2BIG;
	for (unsigned int i = 0; i < st->n_svc && !err; i++)
		for (unsigned int j = 0; xm_lb_key_index_find(changed, &st->svc[i].conf.key) < 0 &&
					 j < st->svc[i].conf.n_be && !err; j++)
			if (!name_add(names, &n_names, st->svc[i].conf.be[j].cluster))
				err = -E2BIG;
	if (err) {
		snprintf(why, len, "more than %u distinct cluster labels", XM_LB_MAX_CLUSTERS);
		goto out;
	}
	for (unsigned int i = 0; i < st->n_svc && !err; i++)
		for (unsigned int j = 0; j < st->svc[i].conf.n_be && !err; j++)
			if (!name_add(names, &n_names, st->svc[i].conf.be[j].cluster))
				err = -E2BIG;
	if (err)
		snprintf(why, len, "the new cluster labels and the ones in use make more than %u: "
			 "apply the change in two steps", XM_LB_MAX_CLUSTERS);
out:
	free(names);
	return err;
}

/* Whether every label the change brings is one the node has (or none): the fast path. */
static bool labels_known(const struct xm_lb_state *st, const struct xm_lb_change *ch, unsigned int n)
{
	unsigned int in_use = 1; /* "" (no label) takes a slot too */

	for (unsigned int c = 0; c < XM_LB_MAX_CLUSTERS; c++)
		in_use += !!st->clusters[c][0];
	if (in_use > XM_LB_MAX_CLUSTERS)
		return false;
	for (unsigned int i = 0; i < n; i++) {
		for (unsigned int j = 0; ch[i].conf && j < ch[i].conf->n_be; j++) {
			const char *name = ch[i].conf->be[j].cluster;
			bool known = !name[0];

			for (unsigned int c = 0; c < XM_LB_MAX_CLUSTERS && !known; c++)
				known = !strcmp(st->clusters[c], name);
			if (!known)
				return false;
		}
	}
	return true;
}

int xm_lb_state_check_changes(const struct xm_lb_state *st, const struct xm_lb_change *ch,
			      unsigned int n, char *why, size_t len)
{
	struct xm_lb_key_index changed = {}, have = {};
	unsigned int used = 0, peak, n_svc = st->n_svc, n_be = 0;
	int err = 0;

	if (changes_index(ch, n, &changed) ||
	    xm_lb_key_index_init(&have, &st->svc[0].conf.key, st->n_svc, sizeof(st->svc[0]))) {
		err = -ENOMEM;
		goto out;
	}
	/* services and backends after the change: the applied ones, with the changed ones swapped */
	for (unsigned int i = 0; i < st->n_svc; i++)
		n_be += st->svc[i].conf.n_be;
	for (unsigned int i = 0; i < n; i++) {
		long at = xm_lb_key_index_find(&have, &ch[i].key);

		n_svc += (at < 0) - !ch[i].conf;
		n_be += ch[i].conf ? ch[i].conf->n_be : 0;
		n_be -= at < 0 ? 0 : st->svc[at].conf.n_be;
	}
	if (n_svc > XM_LB_MAX_SERVICES) {
		snprintf(why, len, "%u services: a node holds at most %u", n_svc, XM_LB_MAX_SERVICES);
		err = -E2BIG;
		goto out;
	}
	if (!labels_known(st, ch, n)) {
		err = check_labels(st, ch, n, &changed, why, len);
		if (err)
			goto out;
	}
	if (n_be > XM_LB_MAX_BACKENDS - 1) {
		snprintf(why, len, "%u backends in all services: a node holds at most %u", n_be,
			 XM_LB_MAX_BACKENDS - 1);
		err = -E2BIG;
		goto out;
	}
	/*
	 * Backend ids, in the order xm_lb_state_apply_changes() takes and frees
	 * them: services that go free theirs first; then each service takes ids
	 * for its new backends before it frees those that left.
	 */
	for (unsigned int i = 1; i < XM_LB_MAX_BACKENDS; i++)
		used += st->be_used[i];
	for (unsigned int i = 0; i < n; i++) {
		long at = xm_lb_key_index_find(&have, &ch[i].key);

		if (!ch[i].conf && at >= 0)
			used -= st->svc[at].conf.n_be;
	}
	peak = used;
	for (unsigned int i = 0; i < n; i++) {
		const struct xm_lb_svc_conf *s = ch[i].conf;
		long at = xm_lb_key_index_find(&have, &ch[i].key);
		const struct xm_lb_svc_rt *rt = at < 0 ? NULL : &st->svc[at];
		unsigned int kept = 0;

		if (!s)
			continue;
		for (unsigned int j = 0; rt && j < s->n_be; j++)
			for (unsigned int k = 0; k < rt->conf.n_be; k++)
				if (be_match(&rt->conf.be[k], &s->be[j])) {
					kept++;
					break;
				}
		used += s->n_be - kept;
		peak = used > peak ? used : peak;
		used -= rt ? rt->conf.n_be - kept : 0;
	}
	if (peak > XM_LB_MAX_BACKENDS - 1) {
		snprintf(why, len, "the change needs %u backend entries at once: a node holds at most "
			 "%u (remove services first, then add)", peak, XM_LB_MAX_BACKENDS - 1);
		err = -E2BIG;
	}
out:
	xm_lb_key_index_free(&changed);
	xm_lb_key_index_free(&have);
	return err;
}

/* desired as a change list: every service of it, and a removal for each applied one not in it. */
static struct xm_lb_change *changes_to(const struct xm_lb_state *st, const struct xm_lb_conf *desired,
				       unsigned int *n)
{
	struct xm_lb_change *ch = calloc(desired->n_svc + st->n_svc + 1, sizeof(*ch));
	struct xm_lb_key_index want = {};

	if (!ch || xm_lb_key_index_init(&want, &desired->svc[0].key, desired->n_svc,
					sizeof(desired->svc[0]))) {
		free(ch);
		return NULL;
	}
	*n = 0;
	for (unsigned int i = 0; i < st->n_svc; i++)
		if (xm_lb_key_index_find(&want, &st->svc[i].conf.key) < 0)
			ch[(*n)++].key = st->svc[i].conf.key;
	for (unsigned int i = 0; i < desired->n_svc; i++)
		ch[(*n)++] = (struct xm_lb_change){ desired->svc[i].key, &desired->svc[i] };
	xm_lb_key_index_free(&want);
	return ch;
}

int xm_lb_state_check(const struct xm_lb_state *st, const struct xm_lb_conf *desired, char *why,
		      size_t len)
{
	unsigned int n;
	struct xm_lb_change *ch;
	int err;

	if (desired->n_svc > XM_LB_MAX_SERVICES) {
		snprintf(why, len, "%u services: a node holds at most %u", desired->n_svc,
			 XM_LB_MAX_SERVICES);
		return -E2BIG;
	}
	ch = changes_to(st, desired, &n);
	if (!ch)
		return -ENOMEM;
	err = xm_lb_state_check_changes(st, ch, n, why, len);
	free(ch);
	return err;
}

/* Free the cluster labels no applied backend uses (a removed backend keeps its index only). */
static void clusters_gc(struct xm_lb_state *st)
{
	for (__u32 i = 0; i < XM_LB_MAX_CLUSTERS; i++) {
		bool used = false;

		if (!st->clusters[i][0])
			continue;
		for (unsigned int k = 0; k < st->n_svc && !used; k++)
			for (unsigned int j = 0; j < st->svc[k].conf.n_be && !used; j++)
				used = !strcmp(st->svc[k].conf.be[j].cluster, st->clusters[i]);
		if (!used) {
			struct xm_lb_cluster none = {};

			pr_debug("cluster label \"%s\" is no longer used: freed", st->clusters[i]);
			bpf_map_update_elem(st->m.cluster, &i, &none, BPF_ANY);
			st->clusters[i][0] = '\0';
		}
	}
}

int xm_lb_state_apply_changes(struct xm_lb_state *st, const struct xm_lb_change *ch,
			      unsigned int n, char *why, size_t len)
{
	struct xm_lb_key_index have = {};
	long *at;
	int err, r;

	/* Nothing is written unless the whole change fits. */
	err = xm_lb_state_check_changes(st, ch, n, why, len);
	if (err) {
		pr_err("services not applied: %s", why);
		return err;
	}
	at = calloc(n + 1, sizeof(*at));
	if (!at)
		return -ENOMEM;
	for (unsigned int j = 0; j < n; j++) {
		struct xm_lb_svc_rt *rt = ch[j].conf ? NULL : xm_lb_state_find(st, &ch[j].key);

		if (rt)
			remove_service(st, rt - st->svc);
	}
	/* where each service is now: adding one may move the list, never its indices */
	if (xm_lb_key_index_init(&have, &st->svc[0].conf.key, st->n_svc, sizeof(st->svc[0]))) {
		free(at);
		return -ENOMEM;
	}
	for (unsigned int j = 0; j < n; j++)
		at[j] = xm_lb_key_index_find(&have, &ch[j].key);
	xm_lb_key_index_free(&have);
	for (unsigned int j = 0; j < n; j++) {
		if (!ch[j].conf)
			continue;
		r = apply_service(st, ch[j].conf, at[j] < 0 ? NULL : &st->svc[at[j]]);
		if (r && !err)
			err = r;
	}
	free(at);
	clusters_gc(st);
	return err;
}

int xm_lb_state_apply(struct xm_lb_state *st, const struct xm_lb_conf *desired)
{
	unsigned int n;
	struct xm_lb_change *ch;
	char why[256];
	int err;

	if (desired->n_svc > XM_LB_MAX_SERVICES) {
		pr_err("services not applied: %u services: a node holds at most %u", desired->n_svc,
		       XM_LB_MAX_SERVICES);
		return -E2BIG;
	}
	ch = changes_to(st, desired, &n);
	if (!ch)
		return -ENOMEM;
	err = xm_lb_state_apply_changes(st, ch, n, why, sizeof(why));
	free(ch);
	return err;
}

int xm_lb_state_conf(const struct xm_lb_state *st, struct xm_lb_conf *out)
{
	memset(out, 0, sizeof(*out));
	out->svc = calloc(st->n_svc + 1, sizeof(*out->svc));
	if (!out->svc)
		return -ENOMEM;
	for (unsigned int i = 0; i < st->n_svc; i++) {
		int err = xm_lb_svc_conf_copy(&out->svc[i], &st->svc[i].conf);

		out->n_svc = i + 1;
		if (err) {
			xm_lb_conf_free(out);
			return err;
		}
	}
	return 0;
}
