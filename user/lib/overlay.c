// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "kfeatures.h"
#include "overlay.h"
#include "pin.h"
#include "stats.h"

static int prog_open(const char *pin_root, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (xm_pin_path(path, sizeof(path), pin_root, XM_PIN_PROGS, name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

bool xm_overlay_tcx(const char *pin_root)
{
	__u32 kf;

	/* An agent that did not record its choice ran with TCX. */
	return xm_kfeatures_of_pin_root(pin_root, &kf) || xm_kf_has(kf, XM_KF_TCX);
}

int xm_overlay_attach_pod(const char *pin_root, int host_ifindex, bool tcx)
{
	char name[64];
	int in, out, err;

	in = prog_open(pin_root, XM_OVL_PROG_POD_INGRESS);
	if (in < 0)
		return in;
	out = prog_open(pin_root, XM_OVL_PROG_POD_EGRESS);
	if (out < 0) {
		close(in);
		return out;
	}
	snprintf(name, sizeof(name), "ovl_pod_%d_in", host_ifindex);
	err = xm_tc_attach(pin_root, name, in, host_ifindex, true, tcx);
	if (err >= 0) {
		snprintf(name, sizeof(name), "ovl_pod_%d_out", host_ifindex);
		err = xm_tc_attach(pin_root, name, out, host_ifindex, false, tcx);
	}
	close(in);
	close(out);
	return err < 0 ? err : 0;
}

/* Collect every key of a pinned map (deleting while walking would restart the walk). */
static int map_keys(int fd, size_t key_size, void **keys_out, size_t *n_out)
{
	size_t n = 0, cap = 64;
	char *keys = malloc(cap * key_size), *prev = NULL;

	if (!keys)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			char *k = realloc(keys, 2 * cap * key_size);

			if (!k) {
				free(keys);
				return -ENOMEM;
			}
			keys = k;
			cap *= 2;
		}
		if (bpf_map_get_next_key(fd, n ? keys + (n - 1) * key_size : prev,
					 keys + n * key_size)) {
			if (errno == ENOENT)
				break;
			free(keys);
			return -errno;
		}
		n++;
	}
	*keys_out = keys;
	*n_out = n;
	return 0;
}

/* Delete the keys of map name for which pred(key, value, arg) holds (NULL: all). */
static int map_delete_if(const char *pin_root, const char *name, size_t key_size,
			 size_t value_size, bool (*pred)(const void *k, const void *v, void *arg),
			 void *arg)
{
	size_t n = 0;
	void *keys = NULL, *val;
	int fd, err, removed = 0;

	fd = xm_map_open(pin_root, name);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	val = malloc(value_size);
	err = val ? map_keys(fd, key_size, &keys, &n) : -ENOMEM;
	for (size_t i = 0; !err && i < n; i++) {
		void *k = (char *)keys + i * key_size;

		if (pred && (bpf_map_lookup_elem(fd, k, val) || !pred(k, val, arg)))
			continue;
		if (!bpf_map_delete_elem(fd, k))
			removed++;
	}
	free(keys);
	free(val);
	close(fd);
	return err ? err : removed;
}

/*
 * The flow cache is two maps (xmesh/overlay.h): TCP between IPv4 pods under
 * a 12-byte key, every other flow under the whole one. Everything in user
 * space sees one cache of whole keys: the deletes and walks over flows go
 * through flows_delete_if() and the flow walk, which widen the short keys.
 */
struct flow_map {
	const char *name;
	size_t key_size;
	void (*widen)(struct xm_ovl_flow_key *k, const void *raw); /* NULL: a whole key */
};

static void tcp4_widen(struct xm_ovl_flow_key *k, const void *raw)
{
	const struct xm_ovl_tcp4_key *k4 = raw;

	memset(k, 0, sizeof(*k));
	k->family = AF_INET;
	k->proto = IPPROTO_TCP;
	k->local.ip[0] = k4->local;
	k->remote.ip[0] = k4->remote;
	k->local_port = k4->local_port;
	k->remote_port = k4->remote_port;
}

static const struct flow_map flow_maps[] = {
	{ XM_OVL_MAP_TCP4, sizeof(struct xm_ovl_tcp4_key), tcp4_widen },
	{ XM_OVL_MAP_FLOWS, sizeof(struct xm_ovl_flow_key), NULL },
};
#define N_FLOW_MAPS (sizeof(flow_maps) / sizeof(flow_maps[0]))

/* A function of (whole key, flow, arg) called with one flow map's raw keys. */
struct flow_call {
	const struct flow_map *map;
	void *fn;
	void *arg;
};

static const void *flow_key_of(const struct flow_call *c, const void *raw,
			       struct xm_ovl_flow_key *buf)
{
	if (!c->map->widen)
		return raw;
	c->map->widen(buf, raw);
	return buf;
}

static bool flow_pred(const void *k, const void *v, void *arg)
{
	const struct flow_call *c = arg;
	struct xm_ovl_flow_key buf;
	bool (*pred)(const void *, const void *, void *) = c->fn;

	return pred(flow_key_of(c, k, &buf), v, c->arg);
}

/* map_delete_if() over every flow map, pred seeing whole keys (NULL: all). */
static int flows_delete_if(const char *pin_root,
			   bool (*pred)(const void *k, const void *v, void *arg), void *arg)
{
	int removed = 0;

	for (size_t i = 0; i < N_FLOW_MAPS; i++) {
		struct flow_call c = { .map = &flow_maps[i], .fn = pred, .arg = arg };
		int n = map_delete_if(pin_root, c.map->name, c.map->key_size,
				      sizeof(struct xm_ovl_flow), pred ? flow_pred : NULL, &c);

		if (n < 0)
			return n;
		removed += n;
	}
	if (removed)
		xm_stats_add(pin_root, XM_STAT_OVL_FLOWS_REMOVED, removed);
	return removed;
}

struct addr_match {
	__u8 family;
	struct xm_addr addr;
};

static bool addr_eq(__u8 fa, const struct xm_addr *a, const struct addr_match *m)
{
	return fa == m->family && !memcmp(a, &m->addr, sizeof(*a));
}

static bool flow_has_addr(const void *k, const void *v, void *arg)
{
	const struct xm_ovl_flow_key *fk = k;

	return addr_eq(fk->family, &fk->local, arg) || addr_eq(fk->family, &fk->remote, arg);
}

static bool key_is_addr(const void *k, const void *v, void *arg)
{
	const struct xm_ovl_addr_key *ak = k;

	return addr_eq(ak->family, &ak->addr, arg);
}

int xm_overlay_forget_addr(const char *pin_root, __u8 family, const struct xm_addr *addr)
{
	struct addr_match m = { .family = family, .addr = *addr };
	int a, b, c;

	a = map_delete_if(pin_root, "xm_ovl_local", sizeof(struct xm_ovl_addr_key),
			  sizeof(struct xm_ovl_local), key_is_addr, &m);
	b = map_delete_if(pin_root, "xm_ovl_remote", sizeof(struct xm_ovl_addr_key),
			  sizeof(struct xm_ovl_remote), key_is_addr, &m);
	c = flows_delete_if(pin_root, flow_has_addr, &m);
	if (a < 0 || b < 0 || c < 0)
		return a < 0 ? a : b < 0 ? b : c;
	if (a + b + c)
		xm_stats_add(pin_root, XM_STAT_OVL_INVALIDATIONS, a + b + c);
	return a + b + c;
}

struct prefix_match {
	__u8 family;
	int plen;
	struct xm_addr addr;
};

static bool in_prefix(__u8 family, const struct xm_addr *a, const struct prefix_match *p)
{
	int bits = p->plen;

	if (family != p->family)
		return false;
	for (int i = 0; i < 4 && bits > 0; i++, bits -= 32) {
		__u32 mask = bits >= 32 ? 0xffffffffU : htonl(~0U << (32 - bits));

		if ((a->ip[i] ^ p->addr.ip[i]) & mask)
			return false;
	}
	return true;
}

static bool remote_in_prefix(const void *k, const void *v, void *arg)
{
	const struct xm_ovl_addr_key *ak = k;
	const struct xm_ovl_remote *r = v;

	return in_prefix(ak->family, &ak->addr, arg) ||
	       in_prefix(r->outer_family, &r->outer_daddr, arg);
}

static bool key_in_prefix(const void *k, const void *v, void *arg)
{
	const struct xm_ovl_addr_key *ak = k;

	return in_prefix(ak->family, &ak->addr, arg);
}

/* The remote pod, or the remote node its copy of the outer header sends to. */
static bool flow_remote_in_prefix(const void *k, const void *v, void *arg)
{
	const struct xm_ovl_flow_key *fk = k;
	const struct xm_ovl_flow *f = v;
	struct xm_addr node = {};

	if (in_prefix(fk->family, &fk->remote, arg))
		return true;
	if (!f->ul_ifindex)
		return false;
	memcpy(&node.ip[0], f->hdr + XM_OVL_OUTER4_DADDR_OFF, 4);
	return in_prefix(AF_INET, &node, arg);
}

int xm_overlay_forget_prefix(const char *pin_root, __u8 family, const struct xm_addr *addr,
			     int plen)
{
	struct prefix_match p = { .family = family, .plen = plen, .addr = *addr };
	int a, b, c;

	a = map_delete_if(pin_root, "xm_ovl_remote", sizeof(struct xm_ovl_addr_key),
			  sizeof(struct xm_ovl_remote), remote_in_prefix, &p);
	b = flows_delete_if(pin_root, flow_remote_in_prefix, &p);
	c = map_delete_if(pin_root, "xm_ovl_local", sizeof(struct xm_ovl_addr_key),
			  sizeof(struct xm_ovl_local), key_in_prefix, &p);
	if (a < 0 || b < 0 || c < 0)
		return a < 0 ? a : b < 0 ? b : c;
	if (a + b + c)
		xm_stats_add(pin_root, XM_STAT_OVL_INVALIDATIONS, a + b + c);
	return a + b + c;
}

struct local_ifindex {
	int ifindex;
	struct addr_match addrs[16];
	int n;
};

static bool local_on_ifindex(const void *k, const void *v, void *arg)
{
	const struct xm_ovl_local *l = v;
	const struct xm_ovl_addr_key *ak = k;
	struct local_ifindex *li = arg;

	if ((int)l->ifindex != li->ifindex)
		return false;
	if (li->n < (int)(sizeof(li->addrs) / sizeof(li->addrs[0]))) {
		li->addrs[li->n].family = ak->family;
		li->addrs[li->n].addr = ak->addr;
		li->n++;
	}
	return true;
}

int xm_overlay_detach_pod(const char *pin_root, int host_ifindex)
{
	struct local_ifindex li = { .ifindex = host_ifindex };
	char name[64], path[PATH_MAX];
	int n;

	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "ovl_pod_%d_%s", host_ifindex, i ? "out" : "in");
		if (!xm_pin_path(path, sizeof(path), pin_root, XM_PIN_LINKS, name))
			unlink(path);
	}
	n = map_delete_if(pin_root, "xm_ovl_local", sizeof(struct xm_ovl_addr_key),
			  sizeof(struct xm_ovl_local), local_on_ifindex, &li);
	if (n < 0)
		return n;
	if (n)
		xm_stats_add(pin_root, XM_STAT_OVL_INVALIDATIONS, n);
	for (int i = 0; i < li.n; i++) {
		int r = xm_overlay_forget_addr(pin_root, li.addrs[i].family, &li.addrs[i].addr);

		if (r > 0)
			n += r;
	}
	return n;
}

int xm_overlay_cfg_read(const char *pin_root, struct xm_ovl_cfg *cfg)
{
	__u32 zero = 0;
	int fd, err = 0;

	fd = xm_map_open(pin_root, "xm_ovl_cfg");
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &zero, cfg))
		err = -errno;
	close(fd);
	return err;
}

/*
 * One map update retires every flow (the epoch) or every flow's copy of the
 * outer header (tmpl_gen, struct xm_ovl_flow: the flows keep their verdicts
 * and relearn their copies from their next slow-path packets).
 */
static int cfg_bump(const char *pin_root, bool header_copies)
{
	struct xm_ovl_cfg cfg;
	__u32 zero = 0;
	int fd, err = 0;

	fd = xm_map_open(pin_root, "xm_ovl_cfg");
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		err = -errno;
	else {
		if (header_copies)
			cfg.tmpl_gen++;
		else
			cfg.epoch++;
		if (bpf_map_update_elem(fd, &zero, &cfg, BPF_EXIST))
			err = -errno;
	}
	close(fd);
	return err;
}

int xm_overlay_flush(const char *pin_root, bool all)
{
	int n, m = 0, k = 0, err;

	/* Deleting the flows after the epoch bump is only housekeeping. */
	err = cfg_bump(pin_root, false);
	if (err)
		return err;
	n = flows_delete_if(pin_root, NULL, NULL);
	if (all) {
		m = map_delete_if(pin_root, "xm_ovl_remote", sizeof(struct xm_ovl_addr_key),
				  sizeof(struct xm_ovl_remote), NULL, NULL);
		k = map_delete_if(pin_root, "xm_ovl_local", sizeof(struct xm_ovl_addr_key),
				  sizeof(struct xm_ovl_local), NULL, NULL);
	}
	if (n < 0 || m < 0 || k < 0)
		return n < 0 ? n : m < 0 ? m : k;
	xm_stats_add(pin_root, XM_STAT_OVL_INVALIDATIONS, 1 + n + m + k);
	return n + m + k;
}

int xm_overlay_flush_remote(const char *pin_root)
{
	int err = cfg_bump(pin_root, true);
	int n = map_delete_if(pin_root, "xm_ovl_remote", sizeof(struct xm_ovl_addr_key),
			      sizeof(struct xm_ovl_remote), NULL, NULL);

	if (err)
		return err;
	if (n > 0)
		xm_stats_add(pin_root, XM_STAT_OVL_INVALIDATIONS, n);
	return n;
}

static int map_foreach(const char *pin_root, const char *name, size_t key_size,
		       size_t value_size, int (*fn)(const void *k, const void *v, void *arg),
		       void *arg)
{
	size_t n = 0;
	void *keys = NULL, *val;
	int fd, err;

	fd = xm_map_open(pin_root, name);
	if (fd < 0)
		return fd;
	val = malloc(value_size);
	err = val ? map_keys(fd, key_size, &keys, &n) : -ENOMEM;
	for (size_t i = 0; !err && i < n; i++) {
		void *k = (char *)keys + i * key_size;

		if (bpf_map_lookup_elem(fd, k, val))
			continue; /* gone meanwhile */
		err = fn(k, val, arg);
	}
	free(keys);
	free(val);
	close(fd);
	return err;
}

static int flow_visit(const void *k, const void *v, void *arg)
{
	const struct flow_call *c = arg;
	struct xm_ovl_flow_key buf;
	int (*fn)(const struct xm_ovl_flow_key *, const struct xm_ovl_flow *, void *) = c->fn;

	return fn(flow_key_of(c, k, &buf), v, c->arg);
}

int xm_overlay_foreach_flow(const char *pin_root,
			    int (*fn)(const struct xm_ovl_flow_key *k, const struct xm_ovl_flow *f,
				      void *arg),
			    void *arg)
{
	int err = 0;

	for (size_t i = 0; i < N_FLOW_MAPS && !err; i++) {
		struct flow_call c = { .map = &flow_maps[i], .fn = (void *)fn, .arg = arg };

		err = map_foreach(pin_root, c.map->name, c.map->key_size,
				  sizeof(struct xm_ovl_flow), flow_visit, &c);
	}
	return err;
}

int xm_overlay_foreach_remote(const char *pin_root,
			      int (*fn)(const struct xm_ovl_addr_key *k,
					const struct xm_ovl_remote *r, void *arg),
			      void *arg)
{
	return map_foreach(pin_root, "xm_ovl_remote", sizeof(struct xm_ovl_addr_key),
			   sizeof(struct xm_ovl_remote), (void *)fn, arg);
}

int xm_overlay_foreach_local(const char *pin_root,
			     int (*fn)(const struct xm_ovl_addr_key *k,
				       const struct xm_ovl_local *l, void *arg),
			     void *arg)
{
	return map_foreach(pin_root, "xm_ovl_local", sizeof(struct xm_ovl_addr_key),
			   sizeof(struct xm_ovl_local), (void *)fn, arg);
}

int xm_overlay_evictions_update(const char *pin_root)
{
	const char *const maps[] = { XM_OVL_MAP_TCP4, XM_OVL_MAP_FLOWS, NULL };

	return xm_lru_evictions_update_maps(pin_root, maps, XM_STAT_OVL_FLOWS_NEW,
					    XM_STAT_OVL_FLOWS_ENDED, XM_STAT_OVL_FLOWS_REMOVED,
					    XM_STAT_OVL_EVICTIONS);
}
