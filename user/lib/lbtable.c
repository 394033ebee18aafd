// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "addr.h"
#include "lbtable.h"
#include "pin.h"

int xm_lb_maps_open(struct xm_lb_maps *m, const char *pin_root)
{
	const char *names[] = { "xm_lb_svc", "xm_lb_tables", "xm_lb_be",
				"xm_lb_probe", "xm_lb_hist", "xm_lb_cluster" };
	int *fds[] = { &m->svc, &m->tables, &m->be, &m->probe, &m->hist, &m->cluster };

	for (size_t i = 0; i < 6; i++)
		*fds[i] = -1;
	for (size_t i = 0; i < 6; i++) {
		*fds[i] = xm_map_open(pin_root, names[i]);
		if (*fds[i] < 0) {
			int err = *fds[i];

			xm_lb_maps_close(m);
			return err;
		}
	}
	return 0;
}

void xm_lb_maps_close(struct xm_lb_maps *m)
{
	int *fds[] = { &m->svc, &m->tables, &m->be, &m->probe, &m->hist, &m->cluster };

	for (size_t i = 0; i < 6; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

void xm_lb_slots_apportion(const double *weights, unsigned int n, __u32 *slots_out)
{
	double sum = 0, *rem;
	__u32 given = 0;

	for (unsigned int i = 0; i < n; i++) {
		slots_out[i] = 0;
		if (weights[i] > 0 && isfinite(weights[i]))
			sum += weights[i];
	}
	if (sum <= 0 || n == 0)
		return;
	rem = calloc(n, sizeof(*rem));
	for (unsigned int i = 0; i < n; i++) {
		double q = weights[i] > 0 && isfinite(weights[i]) ? weights[i] / sum * XM_LB_SLOTS : 0;

		slots_out[i] = (__u32)floor(q);
		if (rem)
			rem[i] = q - slots_out[i];
		given += slots_out[i];
	}
	/* Hand out what floor() left, largest remainder first (n is small: O(n * left)). */
	while (given < XM_LB_SLOTS) {
		unsigned int best = 0;

		for (unsigned int i = 1; i < n; i++)
			if (rem && rem[i] > rem[best])
				best = i;
		slots_out[best]++;
		if (rem)
			rem[best] = -1;
		given++;
	}
	free(rem);
}

void xm_lb_table_fill(struct xm_lb_table *t, const __u32 *ids, const __u32 *slots,
		      unsigned int n)
{
	__u32 pos = 0;

	/*
	 * Slots are drawn uniformly, so any layout gives the same shares;
	 * stepping by an odd stride just avoids long runs, which makes a table
	 * easier to eyeball in a dump.
	 */
	for (unsigned int i = 0; i < n; i++) {
		for (__u32 k = 0; k < slots[i]; k++) {
			t->backend[(pos * 389) & XM_LB_SLOT_MASK] = ids[i];
			pos++;
		}
	}
	for (; pos < XM_LB_SLOTS; pos++)
		t->backend[(pos * 389) & XM_LB_SLOT_MASK] = 0;
}

/*
 * The backend entries ids[0..n) into out. The weighting loop rewrites
 * hundreds of tables per tick, so this takes one batched read when the ids lie
 * close together (a service's backends are allocated together), and one
 * lookup per backend only otherwise.
 */
static int be_read_many(const struct xm_lb_maps *m, const __u32 *ids, unsigned int n,
			struct xm_lb_backend *out)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct xm_lb_backend *vals = NULL;
	__u32 lo = ~0u, hi = 0, span, count, cursor, *keys = NULL;
	bool done = false;

	for (unsigned int i = 0; i < n; i++) {
		lo = ids[i] < lo ? ids[i] : lo;
		hi = ids[i] > hi ? ids[i] : hi;
	}
	span = n ? hi - lo + 1 : 0;
	if (n > 1 && lo > 0 && span <= 4 * n) {
		keys = calloc(span, sizeof(*keys));
		vals = calloc(span, sizeof(*vals));
		count = span;
		cursor = lo - 1; /* the batch starts after this key */
		/* ENOENT: the map ended, fine if every entry asked for came */
		done = keys && vals &&
		       (!bpf_map_lookup_batch(m->be, &cursor, &cursor, keys, vals, &count, &opts) ||
			errno == ENOENT) && count == span;
		for (unsigned int i = 0; done && i < n; i++) {
			done = keys[ids[i] - lo] == ids[i];
			out[i] = vals[ids[i] - lo];
		}
	}
	free(keys);
	free(vals);
	if (done)
		return 0;
	for (unsigned int i = 0; i < n; i++)
		if (bpf_map_lookup_elem(m->be, &ids[i], &out[i]))
			return -errno;
	return 0;
}

/*
 * Write vals[0..n) back to ids[0..n): one batched update, else one each
 * (updates are idempotent, so a failed batch is redone from the start).
 * Batches take no BPF_EXIST (only BPF_F_LOCK): array entries always exist.
 */
static int be_write_many(const struct xm_lb_maps *m, const __u32 *ids, unsigned int n,
			 const struct xm_lb_backend *vals)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = n;

	if (!n || !bpf_map_update_batch(m->be, ids, vals, &count, &opts))
		return 0;
	for (unsigned int i = 0; i < n; i++)
		if (bpf_map_update_elem(m->be, &ids[i], &vals[i], BPF_EXIST))
			return -errno;
	return 0;
}

int xm_lb_table_write(const struct xm_lb_maps *m, const struct xm_lb_svc_key *key,
		      const __u32 *ids, const double *weights, unsigned int n)
{
	struct xm_lb_backend *be = NULL;
	struct xm_lb_table *t;
	struct xm_lb_svc svc;
	__u32 *slots, idx, count = 0;
	int err = 0;

	if (bpf_map_lookup_elem(m->svc, key, &svc))
		return -errno;
	t = calloc(1, sizeof(*t));
	slots = calloc(n ? n : 1, sizeof(*slots));
	if (!t || !slots) {
		err = -ENOMEM;
		goto out;
	}
	xm_lb_slots_apportion(weights, n, slots);
	xm_lb_table_fill(t, ids, slots, n);
	for (unsigned int i = 0; i < n; i++)
		count += slots[i] > 0;
	/* 1. the inactive table, which no connect() reads */
	idx = svc.id * 2 + (svc.active ^ 1);
	if (bpf_map_update_elem(m->tables, &idx, t, BPF_ANY)) {
		err = -errno;
		goto out;
	}
	/* 2. flip: one update of the service entry */
	svc.active ^= 1;
	svc.backend_count = count;
	if (bpf_map_update_elem(m->svc, key, &svc, BPF_EXIST)) {
		err = -errno;
		goto out;
	}
	/* 3. what each backend now holds, for xmeshctl and metrics */
	be = calloc(n ? n : 1, sizeof(*be));
	if (be && !be_read_many(m, ids, n, be)) {
		for (unsigned int i = 0; i < n; i++) {
			be[i].slots = slots[i];
			be[i].weight_milli = weights[i] > 0 ?
				(__u32)llround(fmin(weights[i], 4e6) * 1000) : 0;
		}
		be_write_many(m, ids, n, be);
	}
out:
	free(be);
	free(slots);
	free(t);
	return err;
}

int xm_lb_probe_read(const struct xm_lb_maps *m, __u32 id, struct xm_lb_probe_snap *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct xm_lb_probe *pc;
	struct xm_lb_hist *h;
	int err = 0;

	if (ncpu <= 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	pc = calloc(ncpu, sizeof(*pc));
	h = malloc(sizeof(*h));
	if (!pc || !h) {
		err = -ENOMEM;
		goto out;
	}
	if (bpf_map_lookup_elem(m->probe, &id, pc) || bpf_map_lookup_elem(m->hist, &id, h)) {
		err = -errno;
		goto out;
	}
	for (int c = 0; c < ncpu; c++) {
		const __u64 *src = (const __u64 *)&pc[c];
		__u64 *dst = (__u64 *)&out->c;

		for (size_t k = 0; k < sizeof(out->c) / sizeof(__u64); k++)
			dst[k] += src[k];
	}
	memcpy(out->hist, h->bucket, sizeof(out->hist));
out:
	free(pc);
	free(h);
	return err;
}

void xm_lb_probe_delta(const struct xm_lb_probe_snap *prev, const struct xm_lb_probe_snap *cur,
		       struct xm_lb_probe_snap *out)
{
	const __u64 *a = (const __u64 *)&prev->c, *b = (const __u64 *)&cur->c;
	__u64 *d = (__u64 *)&out->c;

	for (size_t k = 0; k < sizeof(out->c) / sizeof(__u64); k++)
		d[k] = b[k] - a[k];
	for (size_t i = 0; i < XM_LB_HIST_BUCKETS; i++)
		out->hist[i] = cur->hist[i] - prev->hist[i];
}

__u64 xm_lb_hist_count(const __u64 *hist)
{
	__u64 n = 0;

	for (size_t i = 0; i < XM_LB_HIST_BUCKETS; i++)
		n += hist[i];
	return n;
}

double xm_lb_hist_quantile_sparse(const __u16 *idx, const __u64 *cnt, unsigned int n, double q)
{
	__u64 total = 0, rank, seen = 0;

	for (unsigned int k = 0; k < n; k++)
		total += cnt[k];
	if (total == 0)
		return -1;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	/* rank of the q-quantile among total sorted samples, 1-based */
	rank = (__u64)ceil(q * (double)total);
	if (rank < 1)
		rank = 1;
	for (unsigned int k = 0; k < n; k++) {
		seen += cnt[k];
		if (seen >= rank)
			return (double)xm_lb_hist_lower(idx[k]) +
			       (double)(xm_lb_hist_width(idx[k]) - 1) / 2.0;
	}
	return -1;
}

double xm_lb_hist_quantile(const __u64 *hist, double q)
{
	__u16 idx[XM_LB_HIST_BUCKETS];
	__u64 cnt[XM_LB_HIST_BUCKETS];
	unsigned int n = 0;

	for (__u32 i = 0; i < XM_LB_HIST_BUCKETS; i++) {
		if (!hist[i])
			continue;
		idx[n] = i;
		cnt[n++] = hist[i];
	}
	return xm_lb_hist_quantile_sparse(idx, cnt, n, q);
}

__u64 xm_lb_hist_sparse_delta(const __u16 *pidx, const __u32 *pcnt, unsigned int pn,
			      const __u16 *cidx, const __u32 *ccnt, unsigned int cn, __u64 *dlt)
{
	__u64 total = 0;
	unsigned int j = 0;

	for (unsigned int k = 0; k < cn; k++) {
		while (j < pn && pidx[j] < cidx[k])
			j++;
		dlt[k] = (__u32)(ccnt[k] - (j < pn && pidx[j] == cidx[k] ? pcnt[j] : 0));
		total += dlt[k];
	}
	return total;
}

__s64 xm_lb_in_flight(const struct xm_lb_probe *c)
{
	__s64 v = (__s64)(c->req_started - c->req_completed - c->req_aborted);

	return v < 0 ? 0 : v;
}

__u64 xm_lb_failures(const struct xm_lb_probe *c)
{
	return c->http_5xx + c->req_aborted + c->conn_refused + c->conn_timeout;
}

double xm_lb_success_rate(const struct xm_lb_probe *c)
{
	__u64 attempts = c->req_completed + c->req_aborted + c->conn_refused + c->conn_timeout;
	__u64 ok = c->req_completed - (c->http_5xx < c->req_completed ? c->http_5xx : c->req_completed);

	return attempts ? (double)ok / (double)attempts : 1.0;
}

__u8 xm_lb_proto_parse(const char *s)
{
	if (!strcmp(s, "tcp"))
		return IPPROTO_TCP;
	if (!strcmp(s, "udp"))
		return IPPROTO_UDP;
	return 0;
}

const char *xm_lb_proto_str(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

const char *xm_lb_svc_key_str(const struct xm_lb_svc_key *k, char *buf, size_t len)
{
	char a[XM_ADDR_STRLEN];

	xm_addr_str(k->family, &k->vip, a, sizeof(a));
	snprintf(buf, len, k->family == AF_INET6 ? "[%s]:%u/%s" : "%s:%u/%s", a, k->port,
		 xm_lb_proto_str(k->proto));
	return buf;
}

int xm_lb_backend_foreach(const struct xm_lb_maps *m, const struct xm_lb_svc_key *svc,
			  int (*fn)(const struct xm_lb_backend_info *bi, void *arg), void *arg)
{
	struct xm_lb_svc_key keys[64], key, next, *prev = NULL;
	struct xm_lb_svc vals[64];
	struct xm_lb_backend *bes;
	unsigned int nk = 0;
	int ret = 0;

	bes = calloc(XM_LB_MAX_BACKENDS, sizeof(*bes));
	if (!bes)
		return -ENOMEM;
	for (__u32 id = 1; id < XM_LB_MAX_BACKENDS; id++)
		if (bpf_map_lookup_elem(m->be, &id, &bes[id]))
			bes[id].flags = 0;
	/* services in batches of 64 to keep the stack small */
	for (;;) {
		nk = 0;
		while (nk < 64 && bpf_map_get_next_key(m->svc, prev, &next) == 0) {
			key = next;
			prev = &key;
			if (svc && memcmp(svc, &key, sizeof(key)))
				continue;
			if (bpf_map_lookup_elem(m->svc, &key, &vals[nk]))
				continue;
			keys[nk++] = key;
		}
		if (nk == 0)
			break;
		for (unsigned int k = 0; k < nk && !ret; k++) {
			for (__u32 id = 1; id < XM_LB_MAX_BACKENDS && !ret; id++) {
				struct xm_lb_backend_info bi = { .id = id };
				struct xm_lb_cluster cl;
				__u32 cid;

				if (!(bes[id].flags & XM_LB_BE_F_USED) || bes[id].svc_id != vals[k].id)
					continue;
				bi.be = bes[id];
				bi.svc = keys[k];
				bi.svc_val = vals[k];
				cid = bes[id].cluster;
				if (!bpf_map_lookup_elem(m->cluster, &cid, &cl))
					memcpy(bi.cluster, cl.name, sizeof(bi.cluster));
				bi.cluster[sizeof(bi.cluster) - 1] = '\0';
				ret = fn(&bi, arg);
			}
		}
		if (ret || nk < 64)
			break;
	}
	free(bes);
	return ret;
}
