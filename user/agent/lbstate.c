// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "addr.h"
#include "lbstate.h"
#include "log.h"

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

/* Zero the probes of an id about to be reused, so counts start from 0. */
static void probe_reset(struct xm_lb_state *st, __u32 id)
{
	int ncpu = libbpf_num_possible_cpus();
	struct xm_lb_probe *zero = calloc(ncpu > 0 ? ncpu : 1, sizeof(*zero));
	struct xm_lb_hist *h = calloc(1, sizeof(*h));

	if (zero && h) {
		bpf_map_update_elem(st->m.probe, &id, zero, BPF_ANY);
		bpf_map_update_elem(st->m.hist, &id, h, BPF_ANY);
	}
	free(zero);
	free(h);
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
		be.slots = 0;
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

int xm_lb_state_init(struct xm_lb_state *st, const char *pin_root)
{
	struct xm_lb_svc_key key, next, *prev = NULL;
	struct xm_lb_cluster cl;
	int err;

	memset(st, 0, sizeof(*st));
	st->be_cursor = 1;
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
		snprintf(rt->conf.algorithm, sizeof(rt->conf.algorithm), "static");
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
			bc->weight = be.weight_milli / 1000.0;
			snprintf(bc->cluster, sizeof(bc->cluster), "%s",
				 be.cluster < XM_LB_MAX_CLUSTERS ? st->clusters[be.cluster] : "");
			rt->be_ids[rt->conf.n_be++] = id;
		}
	}
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

int xm_lb_state_set_weights(struct xm_lb_state *st, struct xm_lb_svc_rt *rt, const double *w)
{
	return xm_lb_table_write(&st->m, &rt->conf.key, rt->be_ids, w, rt->conf.n_be);
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

/* Bring one service to s: backends first, then its table, then drop the old ones. */
static int apply_service(struct xm_lb_state *st, const struct xm_lb_svc_conf *s)
{
	struct xm_lb_svc_rt *rt = xm_lb_state_find(st, &s->key);
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
	err = xm_lb_table_write(&st->m, &s->key, ids, w, s->n_be);
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

int xm_lb_state_apply(struct xm_lb_state *st, const struct xm_lb_conf *desired)
{
	int err = 0, r;

	for (unsigned int i = 0; i < st->n_svc;) {
		bool wanted = false;

		for (unsigned int j = 0; j < desired->n_svc; j++)
			wanted |= !memcmp(&desired->svc[j].key, &st->svc[i].conf.key,
					  sizeof(struct xm_lb_svc_key));
		if (wanted)
			i++;
		else
			remove_service(st, i);
	}
	for (unsigned int j = 0; j < desired->n_svc; j++) {
		r = apply_service(st, &desired->svc[j]);
		if (r && !err)
			err = r;
	}
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
