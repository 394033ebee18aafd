// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "addr.h"
#include "lbtable.h"
#include "pin.h"
#include <xmesh/weight.h>

int xm_lb_maps_open(struct xm_lb_maps *m, const char *pin_root)
{
	const char *names[] = { "xm_lb_svc", "xm_lb_tables", "xm_lb_be",
				"xm_lb_probe", "xm_lb_hist", "xm_lb_cluster" };
	int *fds[] = { &m->svc, &m->tables, &m->be, &m->probe, &m->hist, &m->cluster };

	for (size_t i = 0; i < 6; i++)
		*fds[i] = -1;
	/* Optional: it comes with the agent's weighting loop, not with the datapath. */
	m->wstate = xm_map_open(pin_root, "xm_lb_wstate");
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
	int *fds[] = { &m->svc, &m->tables, &m->be, &m->probe, &m->hist, &m->cluster, &m->wstate };

	for (size_t i = 0; i < 7; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Services up to this many backends apportion without an allocation (the loop: every tick). */
#define XM_APPORTION_ON_STACK 64

void xm_lb_slots_apportion(const double *weights, unsigned int n, __u32 *slots_out)
{
	double sum = 0, *rem, rem_small[XM_APPORTION_ON_STACK];
	__u32 given = 0;

	for (unsigned int i = 0; i < n; i++) {
		slots_out[i] = 0;
		if (weights[i] > 0 && isfinite(weights[i]))
			sum += weights[i];
	}
	if (sum <= 0 || n == 0)
		return;
	rem = n <= XM_APPORTION_ON_STACK ? rem_small : calloc(n, sizeof(*rem));
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
	if (rem != rem_small)
		free(rem);
}

void xm_lb_table_fill(struct xm_lb_table *t, const __u32 *ids, const __u32 *slots,
		      unsigned int n)
{
	__u32 pos = 0;

	/*
	 * Slots are drawn uniformly, so any layout gives the same shares: one
	 * run per backend, the cheapest to fill (the weighting loop fills
	 * hundreds of tables a tick; a scattered layout took 3-4 % of it).
	 */
	_Static_assert(sizeof(wchar_t) == sizeof(t->backend[0]), "runs are filled by wmemset");
	for (unsigned int i = 0; i < n && pos < XM_LB_SLOTS; i++) {
		__u32 k = slots[i] < XM_LB_SLOTS - pos ? slots[i] : XM_LB_SLOTS - pos;

		/* libc's vectorised fill of 32-bit values: a store per slot was ~4 % of a busy tick */
		wmemset((wchar_t *)&t->backend[pos], (wchar_t)ids[i], k);
		pos += k;
	}
	memset(&t->backend[pos], 0, (XM_LB_SLOTS - pos) * sizeof(t->backend[0]));
}

/*
 * Ids are grouped while the group's span stays within the buffer and at most
 * this many times the ids in it (plus a little): gaps are read and dropped,
 * which is cheaper than a syscall per id as long as they are short.
 */
#define XM_IDS_SPAN_PER_ID 4
#define XM_IDS_SPAN_SLACK 8

int xm_array_lookup_ids(int fd, const __u32 *ids, unsigned int n, size_t vsize, void *out,
			const struct xm_batch_buf *buf)
{
	unsigned int i = 0, j;

	while (i < n) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 lo = ids[i], hi = ids[i], span, count, cursor;
		bool done = false;

		for (j = i + 1; j < n; j++) {
			__u32 nlo = ids[j] < lo ? ids[j] : lo, nhi = ids[j] > hi ? ids[j] : hi;
			__u32 nspan = nhi - nlo + 1;

			if (nspan > buf->cap ||
			    nspan > XM_IDS_SPAN_PER_ID * (j - i + 1) + XM_IDS_SPAN_SLACK)
				break;
			lo = nlo;
			hi = nhi;
		}
		span = hi - lo + 1;
		if (j - i > 1) {
			count = span;
			cursor = lo - 1; /* the batch starts after this key */
			/* ENOENT: the map ended, fine if every entry asked for came */
			done = (!bpf_map_lookup_batch(fd, lo ? &cursor : NULL, &cursor, buf->keys,
						      buf->vals, &count, &opts) ||
				errno == ENOENT) && count == span;
			for (unsigned int k = i; done && k < j; k++) {
				done = buf->keys[ids[k] - lo] == ids[k];
				memcpy((char *)out + (size_t)k * vsize,
				       (char *)buf->vals + (size_t)(ids[k] - lo) * vsize, vsize);
			}
		}
		for (unsigned int k = i; !done && k < j; k++)
			if (bpf_map_lookup_elem(fd, &ids[k], (char *)out + (size_t)k * vsize))
				return -errno;
		i = j;
	}
	return 0;
}

int xm_array_update_ids(int fd, const __u32 *ids, unsigned int n, const void *vals, size_t vsize)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = n;

	if (!n || !bpf_map_update_batch(fd, ids, vals, &count, &opts))
		return 0;
	/* Updates are idempotent, so a failed batch is redone from the start. */
	for (unsigned int i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, &ids[i], (const char *)vals + i * vsize, BPF_EXIST))
			return -errno;
	return 0;
}

int xm_lb_be_write(const struct xm_lb_maps *m, const __u32 *ids, unsigned int n,
		   const struct xm_lb_backend *vals)
{
	return xm_array_update_ids(m->be, ids, n, vals, sizeof(*vals));
}

/* Batches of backend entries read at once when recording weights. */
#define XM_BE_BATCH 4096

int xm_lb_be_show(const struct xm_lb_maps *m, const __u32 *ids, const double *weights,
		  unsigned int n)
{
	struct xm_batch_buf buf = { .cap = n * XM_IDS_SPAN_PER_ID + XM_IDS_SPAN_SLACK };
	struct xm_lb_backend *be;
	int err = -ENOMEM;

	if (!n)
		return 0;
	if (buf.cap > XM_BE_BATCH)
		buf.cap = XM_BE_BATCH;
	be = calloc(n, sizeof(*be));
	buf.keys = calloc(buf.cap, sizeof(*buf.keys));
	buf.vals = calloc(buf.cap, sizeof(*be));
	if (be && buf.keys && buf.vals)
		err = xm_array_lookup_ids(m->be, ids, n, sizeof(*be), be, &buf);
	if (!err) {
		for (unsigned int i = 0; i < n; i++) {
			double w = weights[i];

			be[i].weight_milli = w > 0 ? (__u32)llround(fmin(w, 4e6) * 1000) : 0;
			be[i].slots_retired = 0;
		}
		err = xm_lb_be_write(m, ids, n, be);
	}
	free(buf.vals);
	free(buf.keys);
	free(be);
	return err;
}

int xm_lb_tables_write(const struct xm_lb_maps *m, const __u32 *idx,
		       const struct xm_lb_table *tables, unsigned int n)
{
	return xm_array_update_ids(m->tables, idx, n, tables, sizeof(*tables));
}

int xm_lb_svc_flip(const struct xm_lb_maps *m, const struct xm_lb_svc_key *key,
		   struct xm_lb_svc *svc, __u32 backend_count)
{
	struct xm_lb_svc next = *svc;

	next.active ^= 1;
	next.backend_count = backend_count;
	/* BPF_EXIST: never brings back a service someone deleted meanwhile */
	if (bpf_map_update_elem(m->svc, key, &next, BPF_EXIST))
		return -errno;
	*svc = next;
	return 0;
}

__u32 xm_lb_slots_used(const __u32 *slots, unsigned int n)
{
	__u32 count = 0;

	for (unsigned int i = 0; i < n; i++)
		count += slots[i] > 0;
	return count;
}

int xm_lb_table_flip(const struct xm_lb_maps *m, const struct xm_lb_svc_key *key,
		     const __u32 *ids, const __u32 *slots, unsigned int n)
{
	struct xm_lb_table t;
	struct xm_lb_svc svc;
	__u32 idx;
	int err;

	if (bpf_map_lookup_elem(m->svc, key, &svc))
		return -errno;
	xm_lb_table_fill(&t, ids, slots, n);
	/* 1. the inactive table, which no connect() reads */
	idx = xm_lb_table_inactive(&svc);
	err = xm_lb_tables_write(m, &idx, &t, 1);
	/* 2. flip: one update of the service entry */
	return err ?: xm_lb_svc_flip(m, key, &svc, xm_lb_slots_used(slots, n));
}

int xm_lb_table_write(const struct xm_lb_maps *m, const struct xm_lb_svc_key *key,
		      const __u32 *ids, const double *weights, unsigned int n)
{
	__u32 *slots = calloc(n ? n : 1, sizeof(*slots));
	int err;

	if (!slots)
		return -ENOMEM;
	xm_lb_slots_apportion(weights, n, slots);
	err = xm_lb_table_flip(m, key, ids, slots, n);
	/* 3. the weights it was written from, for xmeshctl, metrics, a restart (best effort) */
	if (!err)
		xm_lb_be_show(m, ids, weights, n);
	free(slots);
	return err;
}

/*
 * Every CPU's copy of the entry that holds backend id's counters, *ncpu of
 * them (free() it); NULL with -errno in *err.
 */
static struct xm_lb_probe_page *probe_page_read(const struct xm_lb_maps *m, __u32 id, int *ncpu,
						int *err)
{
	__u32 page = id >> XM_LB_PROBE_PAGE_SHIFT;
	struct xm_lb_probe_page *pc;

	*ncpu = libbpf_num_possible_cpus();
	if (*ncpu <= 0) {
		*err = -EINVAL;
		return NULL;
	}
	pc = calloc(*ncpu, sizeof(*pc));
	if (!pc) {
		*err = -ENOMEM;
		return NULL;
	}
	if (bpf_map_lookup_elem(m->probe, &page, pc)) {
		*err = -errno;
		free(pc);
		return NULL;
	}
	return pc;
}

int xm_lb_probe_zero(const struct xm_lb_maps *m, __u32 id)
{
	__u32 page = id >> XM_LB_PROBE_PAGE_SHIFT;
	struct xm_lb_probe_page *pc;
	struct xm_lb_hist h = { 0 };
	int ncpu, err = 0;

	pc = probe_page_read(m, id, &ncpu, &err);
	if (!pc)
		return err;
	for (int c = 0; c < ncpu; c++)
		memset(&pc[c].b[id & (XM_LB_PROBE_PAGE - 1)], 0, sizeof(pc[c].b[0]));
	if (bpf_map_update_elem(m->probe, &page, pc, BPF_EXIST) ||
	    bpf_map_update_elem(m->hist, &id, &h, BPF_EXIST))
		err = -errno;
	free(pc);
	return err;
}

int xm_lb_probe_read(const struct xm_lb_maps *m, __u32 id, struct xm_lb_probe_snap *out)
{
	struct xm_lb_probe_page *pc;
	struct xm_lb_hist h;
	int ncpu, err = 0;

	memset(out, 0, sizeof(*out));
	pc = probe_page_read(m, id, &ncpu, &err);
	if (!pc)
		return err;
	if (bpf_map_lookup_elem(m->hist, &id, &h)) {
		err = -errno;
		goto out;
	}
	for (int c = 0; c < ncpu; c++) {
		const __u64 *src = (const __u64 *)&pc[c].b[id & (XM_LB_PROBE_PAGE - 1)];
		__u64 *dst = (__u64 *)&out->c;

		for (size_t k = 0; k < sizeof(out->c) / sizeof(__u64); k++)
			dst[k] += src[k];
	}
	for (size_t i = 0; i < XM_LB_HIST_BUCKETS; i++)
		out->hist[i] = h.bucket[i];
out:
	free(pc);
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
		out->hist[i] = (__u32)(cur->hist[i] - prev->hist[i]); /* counts wrap at 2^32 */
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
	__u64 total = 0;
	double v;

	for (unsigned int k = 0; k < n; k++)
		total += cnt[k];
	xm_lb_hist_quantiles_sparse(idx, cnt, n, total, &q, &v, 1);
	return v;
}

/* rank of the q-quantile among total sorted samples, 1-based */
static __u64 quantile_rank(double q, __u64 total)
{
	__u64 rank;

	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	rank = (__u64)ceil(q * (double)total);
	return rank < 1 ? 1 : rank;
}

void xm_lb_hist_quantiles_sparse(const __u16 *idx, const __u64 *cnt, unsigned int n,
				 __u64 total, const double *q, double *out, unsigned int nq)
{
	__u64 rank[nq ? nq : 1], seen = 0;
	unsigned int left = nq;

	for (unsigned int j = 0; j < nq; j++) {
		out[j] = -1;
		rank[j] = quantile_rank(q[j], total);
	}
	for (unsigned int k = 0; total && left && k < n; k++) {
		seen += cnt[k];
		for (unsigned int j = 0; j < nq; j++) {
			if (out[j] >= 0 || seen < rank[j])
				continue;
			out[j] = (double)xm_lb_hist_lower(idx[k]) +
				 (double)(xm_lb_hist_width(idx[k]) - 1) / 2.0;
			left--;
		}
	}
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

__u64 xm_lb_hist_delta_known(const __u16 *idx, __u32 *cnt, unsigned int n, const __u32 *cur,
			     __u64 expect, __u64 *dlt)
{
	__u32 now[XM_LB_HIST_BUCKETS];
	__u64 total = 0;

	for (unsigned int k = 0; k < n; k++) {
		now[k] = xm_lb_hist_at(cur, idx[k]);
		dlt[k] = (__u32)(now[k] - cnt[k]); /* counts wrap at 2^32 */
		total += dlt[k];
	}
	if (!expect || total < expect)
		return 0;
	memcpy(cnt, now, n * sizeof(*now));
	return total;
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

/*
 * Slots per backend id in the active table of the service whose entry is
 * svc: count[id] += its slots; the ids seen go to seen[] (*nseen, at most
 * XM_LB_SLOTS). The reader undoes it with count_clear().
 */
static void count_active(const struct xm_lb_maps *m, const struct xm_lb_svc *svc, __u16 *count,
			 __u32 *seen, unsigned int *nseen)
{
	struct xm_lb_table t;
	__u32 idx = svc->id * 2 + (svc->active & 1);

	*nseen = 0;
	if (bpf_map_lookup_elem(m->tables, &idx, &t))
		return;
	for (unsigned int k = 0; k < XM_LB_SLOTS; k++) {
		__u32 id = t.backend[k];

		if (!id || id >= XM_LB_MAX_BACKENDS)
			continue;
		if (!count[id]++)
			seen[(*nseen)++] = id;
	}
}

static void count_clear(__u16 *count, const __u32 *seen, unsigned int nseen)
{
	for (unsigned int k = 0; k < nseen; k++)
		count[seen[k]] = 0;
}

double xm_lb_weight_shown(const struct xm_lb_maps *m, __u32 id, const struct xm_lb_backend *be)
{
	struct xm_lb_wstate w;

	if (m->wstate >= 0 && !bpf_map_lookup_elem(m->wstate, &id, &w) && w.updated_ns &&
	    (w.flags & XM_WSTATE_F_TABLE))
		return w.table_weight_ppm / 1e6;
	return be->weight_milli / 1000.0;
}

int xm_lb_backend_foreach(const struct xm_lb_maps *m, const struct xm_lb_svc_key *svc,
			  int (*fn)(const struct xm_lb_backend_info *bi, void *arg), void *arg)
{
	struct xm_lb_svc_key keys[64], key, next, *prev = NULL;
	struct xm_lb_svc vals[64];
	struct xm_lb_backend *bes;
	__u32 seen[XM_LB_SLOTS];
	unsigned int nk = 0, nseen;
	__u16 *count;
	int ret = 0;

	bes = calloc(XM_LB_MAX_BACKENDS, sizeof(*bes));
	count = calloc(XM_LB_MAX_BACKENDS, sizeof(*count));
	if (!bes || !count) {
		free(bes);
		free(count);
		return -ENOMEM;
	}
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
			/* the table the entry just read names: no writer touches it before a flip */
			count_active(m, &vals[k], count, seen, &nseen);
			for (__u32 id = 1; id < XM_LB_MAX_BACKENDS && !ret; id++) {
				struct xm_lb_backend_info bi = { .id = id };
				struct xm_lb_cluster cl;
				__u32 cid;

				if (!(bes[id].flags & XM_LB_BE_F_USED) || bes[id].svc_id != vals[k].id)
					continue;
				bi.be = bes[id];
				bi.svc = keys[k];
				bi.svc_val = vals[k];
				bi.slots = count[id];
				bi.weight = xm_lb_weight_shown(m, id, &bes[id]);
				cid = bes[id].cluster;
				if (!bpf_map_lookup_elem(m->cluster, &cid, &cl))
					memcpy(bi.cluster, cl.name, sizeof(bi.cluster));
				bi.cluster[sizeof(bi.cluster) - 1] = '\0';
				ret = fn(&bi, arg);
			}
			count_clear(count, seen, nseen);
		}
		if (ret || nk < 64)
			break;
	}
	free(count);
	free(bes);
	return ret;
}
