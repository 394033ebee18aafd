// SPDX-License-Identifier: MIT
/* The weighting loop (see weighting.h and docs/weighting.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "lbtable.h"
#include "log.h"
#include "pin.h"
#include "lbstate.h"
#include "rebal.h"
#include "rebalance.h"
#include "rstaterow.h"
#include "tablewrite.h"
#include "weighdue.h"
#include "weightcfg.h"
#include "weighting.h"
#include "monoclock.h"

/* Bytes read per batch syscall (per-CPU values: entries x CPUs x value size). */
#define XM_W_BATCH_BYTES (256 * 1024)
/*
 * Read a backend's histogram once this many requests completed, or
 * after 2 s, and at most XM_W_HIST_BUDGET histograms per tick (services are
 * visited from a rotating start so none is always last): the cost of a tick
 * is bounded whatever the number of busy backends. Small services read every
 * busy backend every tick.
 */
#define XM_W_HIST_MIN 8
#define XM_W_HIST_MAX_AGE_NS 2000000000ULL
#define XM_W_HIST_BUDGET 1024
/*
 * Every this many reads without the full scan, one with it: a count that
 * reached a bucket new to the backend while the known ones still added up
 * (xm_lb_hist_delta_known()) is late by at most this many reads.
 */
#define XM_W_HIST_SCAN_EVERY 8
/* Tables written per batched update (4 KB each), before their services flip. */
#define XM_W_FLIP_BATCH 32
/* Backends and services are re-read at least this often (s). */
#define XM_W_TOPO_MAX_S 10

struct wsvc {
	struct xm_lb_svc_key key;
	bool managed;       /* false: static or round-robin, the table is left alone */
	/* the service's algorithm; NULL: static weights (its config's, or another writer's) */
	const struct xm_weight_algo *algo;
	json_t *params;     /* the service's "params" as last applied */
	struct xm_wservice ws;
	__u32 *ids;         /* backend ids, in the order of ws.b */
	__u32 *slots;       /* slots of the last table written */
	bool written;
	bool algo_shown;    /* its algorithm's name is in its backends' xm_lb_wstate */
	__u64 written_ns;   /* when */
	unsigned long long seen; /* tick number when last found in the map */
	double waited;      /* s since it was last weighed, while it waits (weighdue.h) */
	bool quiet;         /* waiting, and nothing at all moved since it was last weighed */
	struct xm_weigh_ref ref; /* what its news are measured against */
	struct xm_rebal_conf rconf; /* "rebalance" as last applied */
	struct xm_rebal_svc rplan;  /* its token bucket */
	struct xm_rebal_track *rover; /* per backend: its rebalancing plan state */
	/* Its xm_lb_rstate rows were all quiet (nothing held or retired) with these flags. */
	bool rows_quiet;
	__u32 rows_flags;
};

/* Previous cumulative histogram, sparse, low 32 bits (deltas are modular). */
struct bstate {
	struct xm_lb_probe prev;
	bool have_prev;
	bool have_hist;
	__u16 hn, hcap;
	__u16 hlo, hhi;   /* hidx[0], hidx[hn - 1], kept here: prefetch_hist() needs no hidx load */
	__u8 known_reads; /* reads without the full scan since the last one */
	__u16 *hidx;
	__u32 *hcnt;
	__u64 pending;  /* completions since the last histogram read */
	__u64 hist_ns;  /* when the histogram was last read */
};
/*
 * Two cache lines, allocated on a line (xm_weighting_start()): a backend's
 * state is two misses, not three, and prefetch_bstate() asks for both.
 */
_Static_assert(sizeof(struct bstate) == 128, "struct bstate: keep it two cache lines");

struct xm_weighting {
	struct xm_agent *a;
	struct xm_lb_maps maps;
	bool maps_ok;
	int tfd;
	unsigned int tick_ms;
	struct wsvc *svcs[XM_LB_MAX_SERVICES];
	struct bstate *bs;          /* XM_LB_MAX_BACKENDS */
	struct xm_lb_backend *be;   /* XM_LB_MAX_BACKENDS */
	__u8 *live;                 /* XM_LB_MAX_BACKENDS: used and not removed */
	struct xm_lb_probe *probe;  /* XM_LB_PROBE_PAGES pages of backends, summed over CPUs */
	__u32 probe_end;            /* probes read per tick: highest live backend id + 1 */
	int gen_fd;                 /* xm_lb_probe_gen, -1 if this datapath has none */
	__u64 gen;                  /* its sum over CPUs when the probes were last read */
	__u64 *gen_percpu;          /* ncpu values */
	__u64 probe_ns;             /* when the probes were last read; 0: read next tick */
	__u32 *by_svc;              /* XM_LB_MAX_BACKENDS: live backend ids grouped by service */
	__u32 svc_start[XM_LB_MAX_SERVICES], svc_count[XM_LB_MAX_SERVICES];
	struct xm_lb_svc_key svc_keys[XM_LB_MAX_SERVICES];
	struct xm_lb_svc svc_vals[XM_LB_MAX_SERVICES];
	void *percpu;               /* batch buffer: buf_bytes */
	size_t buf_bytes;
	__u32 *keys;                /* batch keys: buf_bytes / the smallest value read */
	int ncpu;
	int wstate_fd, wloop_fd;
	struct xm_lb_wstate *wstate; /* mmap of xm_lb_wstate */
	struct xm_lb_wloop *wloop;   /* mmap of xm_lb_wloop */
	size_t wstate_len, wloop_len;
	unsigned long long ticks;
	__u64 last_ns;
	unsigned int weighed;       /* services weighed in this tick (the others wait) */
	unsigned long long weighed_why[XM_WEIGH__COUNT]; /* weighings by reason, all ticks */
	int hist_budget;            /* histogram reads left in this tick */
	int hist_resume;            /* svc_vals index of the first service denied a read, or -1 */
	bool topo_stale;            /* backends or services changed: re-read them */
	bool topo_fresh;            /* they were re-read in this tick */
	__u64 topo_ns;              /* when they were last read */
	unsigned int nsvc_found;    /* services in svc_keys/svc_vals */
	unsigned int rotate;        /* first service visited this tick (hist_resume's, if any) */
	/*
	 * The agent's services by id, built in tick rt_tick: only a tick that
	 * syncs a service looks (each entry is a cache miss of its own).
	 */
	struct xm_lb_svc_rt *rt_by_id[XM_LB_MAX_SERVICES];
	unsigned long long rt_tick;
	/* xm_lb_hist mapped (read only) for ids below hist_end (hist_map()) */
	const struct xm_lb_hist *hist;
	size_t hist_len;
	__u32 hist_end;
	bool hist_warned;               /* hist_map() failed, and said so */
	/* Tables filled, not written yet: XM_W_FLIP_BATCH of each. */
	struct xm_lb_table *flip_t;
	__u32 *flip_idx, *flip_count, *flip_vi; /* table index, backend_count, svc_vals index */
	struct wsvc **flip_s;
	unsigned int n_flip;
	/* Connection-level rebalancing (rebalance.h); NULL: the kernel cannot count. */
	struct xm_rebalancer *rebal;
	bool rebal_tried;
	bool want_counts;           /* some service uses connection counts: run the pass */
	bool have_counts;           /* the pass ran this tick */
	int urgent_tfd;             /* retire-now passes between ticks (rebal.h fast_factor) */
	long urgent_ms;             /* their period this tick; 0: no backend is urgent */
	int rstate_fd;
	struct xm_lb_rstate *rstate; /* mmap of xm_lb_rstate */
	size_t rstate_len;
};

static __u64 thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* ---- published maps ----------------------------------------------------- */

static int pub_map(struct xm_weighting *w, const char *name, __u32 value_size, __u32 entries,
		   int *fd_out, void **mem, size_t *len)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	struct bpf_map_info info = { 0 };
	__u32 ilen = sizeof(info);
	char path[PATH_MAX];
	size_t pg = sysconf(_SC_PAGESIZE);
	int fd, err;

	err = xm_pin_path(path, sizeof(path), w->a->pin_root, XM_PIN_MAPS, name);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		/* Reuse across restarts unless the layout changed. */
		if (bpf_obj_get_info_by_fd(fd, &info, &ilen) || info.value_size != value_size ||
		    info.max_entries != entries || !(info.map_flags & BPF_F_MMAPABLE)) {
			pr_info("%s: layout changed, recreating", name);
			close(fd);
			unlink(path);
			fd = -1;
		}
	}
	if (fd < 0) {
		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, sizeof(__u32), value_size, entries,
				    &opts);
		if (fd < 0)
			return -errno;
		if (bpf_obj_pin(fd, path)) {
			err = -errno;
			close(fd);
			return err;
		}
	}
	*len = ((size_t)value_size * entries + pg - 1) / pg * pg;
	*mem = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*mem == MAP_FAILED) {
		err = -errno;
		close(fd);
		*mem = NULL;
		return err;
	}
	*fd_out = fd;
	return 0;
}

/* ---- reading the LB maps ------------------------------------------------ */

/*
 * out = the sum over ncpu CPUs of a per-CPU value of vsize bytes (u64s) as
 * the kernel lays them out in src (each CPU's rounded up to 8 bytes): the
 * first CPU's copied, the others added (no pass to zero out first: the
 * probe pages are 800 KB a tick at 10,000 backends).
 */
static void percpu_sum(void *out, const void *src, size_t vsize, int ncpu)
{
	size_t step = (vsize + 7) & ~7UL;
	__u64 *dst = out;

	memcpy(dst, src, vsize);
	for (int c = 1; c < ncpu; c++) {
		const __u64 *v = (const __u64 *)((const char *)src + c * step);

		for (size_t k = 0; k < vsize / 8; k++)
			dst[k] += v[k];
	}
}

/*
 * Read an ARRAY map's first n entries (n <= max_entries) into out with as
 * few syscalls as the kernel allows; per-CPU values are summed as u64s.
 * changed (not per-CPU; may be NULL): set when an entry differs from what
 * out held.
 */
static int read_array(struct xm_weighting *w, int fd, __u32 n, size_t vsize, bool percpu,
		      void *out, bool *changed)
{
	__u32 *keys = w->keys, cursor = 0, count;
	size_t stride = percpu ? ((vsize + 7) & ~7UL) * w->ncpu : vsize;
	__u32 batch = w->buf_bytes / stride;
	bool first = true;
	int err;

	while (cursor < n) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 done = cursor;

		count = n - cursor < batch ? n - cursor : batch;
		err = bpf_map_lookup_batch(fd, first ? NULL : &cursor, &cursor, keys, w->percpu,
					   &count, &opts);
		first = false;
		if (err && errno != ENOENT) {
			/* No batch ops: one lookup per entry. */
			if (done)
				return -errno;
			for (__u32 i = 0; i < n; i++) {
				if (bpf_map_lookup_elem(fd, &i, w->percpu))
					return -errno;
				if (!percpu) {
					if (changed && memcmp((char *)out + i * vsize, w->percpu, vsize))
						*changed = true;
					memcpy((char *)out + i * vsize, w->percpu, vsize);
					continue;
				}
				percpu_sum((char *)out + i * vsize, w->percpu, vsize, w->ncpu);
			}
			return 0;
		}
		for (__u32 i = 0; i < count; i++) {
			__u32 key = keys[i];

			if (key >= n)
				continue;
			if (!percpu) {
				const char *src = (const char *)w->percpu + i * stride;

				if (changed && memcmp((char *)out + key * vsize, src, vsize))
					*changed = true;
				memcpy((char *)out + key * vsize, src, vsize);
				continue;
			}
			percpu_sum((char *)out + key * vsize, (char *)w->percpu + i * stride, vsize,
				   w->ncpu);
		}
		if (err) /* ENOENT: end of map */
			break;
	}
	return 0;
}

/*
 * The quantiles of a tick's histogram delta (xm_wsample.p50, p99, p99_2nd),
 * whose counts sum to total, in one pass over its buckets.
 */
static void quantiles_of(const __u16 *idx, const __u64 *dlt, unsigned int n, __u64 total,
			 double *p50, double *p99, double *p99_2nd)
{
	/* One slow request is not a slow tail (rebal.h tail_factor): no p99_2nd of one. */
	const double q[3] = { 0.5, 0.99, total < 2 ? 0 : xm_rebal_tail_q(total) };
	double v[3];

	xm_lb_hist_quantiles_sparse(idx, dlt, n, total, q, v, total < 2 ? 2 : 3);
	*p50 = v[0] / 1e9;
	*p99 = v[1] / 1e9;
	*p99_2nd = total < 2 ? -1 : v[2] / 1e9;
}

/*
 * p50, p99 and p99_2nd (seconds) of the requests that completed since the previous
 * histogram read of backend id (expect of them by the probe counters); -1
 * when none. Keeps the cumulative histogram as a sparse baseline (bucket, low
 * 32 bits of the count: deltas are taken modulo 2^32) and works on its
 * non-empty buckets only.
 */
static int hist_delta_quantiles(struct xm_weighting *w, __u32 id, const struct xm_lb_hist *cur,
				__u64 expect, double *p50, double *p99, double *p99_2nd)
{
	struct bstate *b = &w->bs[id];
	struct xm_lb_hist snap;
	__u16 nidx[XM_LB_HIST_BUCKETS];
	__u32 ncnt[XM_LB_HIST_BUCKETS];
	__u64 dlt[XM_LB_HIST_BUCKETS];
	__u64 total;
	unsigned int n = 0, k;

	*p50 = *p99 = *p99_2nd = -1;
	/* Most reads: the counts rose in the baseline's buckets only (no scan of all 528). */
	if (b->have_hist && b->known_reads < XM_W_HIST_SCAN_EVERY - 1 &&
	    (total = xm_lb_hist_delta_known(b->hidx, b->hcnt, b->hn, cur->bucket, expect, dlt))) {
		b->known_reads++;
		quantiles_of(b->hidx, dlt, b->hn, total, p50, p99, p99_2nd);
		return 0;
	}
	/*
	 * cur is the kernel's map, counting as we read: scan a copy, so that a
	 * bucket tested is the bucket taken (one aligned 32-bit value cannot
	 * tear), and the scan stays vectorised. Most buckets are empty: test
	 * four at a time.
	 */
	memcpy(&snap, cur, sizeof(snap));
	_Static_assert(XM_LB_HIST_BUCKETS % 4 == 0, "buckets are scanned four at a time");
	for (k = 0; k < XM_LB_HIST_BUCKETS; k += 4) {
		if (!(snap.bucket[k] | snap.bucket[k + 1] | snap.bucket[k + 2] | snap.bucket[k + 3]))
			continue;
		for (unsigned int j = k; j < k + 4; j++) {
			if (!snap.bucket[j])
				continue;
			nidx[n] = j;
			ncnt[n++] = snap.bucket[j];
		}
	}
	total = xm_lb_hist_sparse_delta(b->hidx, b->hcnt, b->hn, nidx, ncnt, n, dlt);
	if (n > b->hcap) {
		/* In steps of 16: a backend's buckets grow one or two at a time. */
		unsigned int cap = (n + 15) & ~15U;
		__u16 *idx = realloc(b->hidx, cap * sizeof(*idx));
		__u32 *cnt;

		if (!idx)
			return -ENOMEM;
		b->hidx = idx;
		cnt = realloc(b->hcnt, cap * sizeof(*cnt));
		if (!cnt)
			return -ENOMEM;
		b->hcnt = cnt;
		b->hcap = cap;
	}
	memcpy(b->hidx, nidx, n * sizeof(*nidx));
	memcpy(b->hcnt, ncnt, n * sizeof(*ncnt));
	b->hn = n;
	b->hlo = n ? nidx[0] : 0;
	b->hhi = n ? nidx[n - 1] : 0;
	b->known_reads = 0;
	if (!b->have_hist) {
		b->have_hist = true; /* the first read is only the baseline */
		return 0;
	}
	if (!total)
		return 0;
	quantiles_of(nidx, dlt, n, total, p50, p99, p99_2nd);
	return 0;
}

static void bstate_reset(struct bstate *b)
{
	free(b->hidx);
	free(b->hcnt);
	memset(b, 0, sizeof(*b));
}

/* ---- one service -------------------------------------------------------- */

/* The name a service's algorithm has in the config ("static" for none). */
static const char *wsvc_algo_name(const struct wsvc *s)
{
	return s->algo ? s->algo->name : XM_LB_ALGO_STATIC;
}

static void wsvc_free(struct wsvc *s)
{
	if (!s)
		return;
	xm_wservice_free(&s->ws);
	json_decref(s->params);
	free(s->rover);
	free(s->ids);
	free(s->slots);
	free(s);
}

/*
 * (Re)build s for this key, algorithm, params and backend set. Filter state
 * of backends still present is kept while the algorithm stays the same; a
 * new algorithm starts from the defaults (so runs of a benchmark that switch
 * algorithms do not inherit each other's filters).
 */
static int wsvc_sync(struct xm_weighting *w, struct wsvc **sp, const struct xm_lb_svc_key *key,
		     const struct xm_weight_algo *algo, json_t *params,
		     const struct xm_rebal_conf *rconf, const __u32 *ids, unsigned int n)
{
	/* Equal weights are written once by the config code; they need no loop. */
	bool managed = algo && !algo->equal_weights;
	const struct xm_weight_algo *filters = managed ? algo : &xm_weight_algo_rr;
	struct xm_weight_params p;
	struct wsvc *s = *sp, *ns;
	char err[200];
	int r;

	if (s && !memcmp(&s->key, key, sizeof(*key)) && s->algo == algo &&
	    json_equal(s->params, params) && s->ws.n == n &&
	    !memcmp(s->ids, ids, n * sizeof(*ids))) {
		s->rconf = *rconf;
		return 0;
	}
	if (xm_weight_params_parse(filters, managed ? params : NULL, &p, err, sizeof(err))) {
		/* The config was checked at load; this only happens on a bad control request. */
		pr_warn("weighting: %s (using the defaults)", err);
		xm_weight_params_parse(filters, NULL, &p, err, sizeof(err));
	}
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->key = *key;
	ns->managed = managed;
	ns->algo = algo;
	ns->params = params ? json_deep_copy(params) : json_object();
	/* A static service still runs the filters, for display. */
	r = xm_wservice_init(&ns->ws, filters, &p, n);
	ns->ids = calloc(n ? n : 1, sizeof(*ns->ids));
	ns->slots = calloc(n ? n : 1, sizeof(*ns->slots));
	ns->rover = calloc(n ? n : 1, sizeof(*ns->rover));
	ns->rconf = *rconf;
	if (r || !ns->ids || !ns->slots || !ns->rover || !ns->params) {
		wsvc_free(ns);
		return r ?: -ENOMEM;
	}
	memcpy(ns->ids, ids, n * sizeof(*ids));
	if (s && !memcmp(&s->key, key, sizeof(*key)) && s->algo == algo &&
	    json_equal(s->params, params)) {
		/* Same service and algorithm: carry over what is known about its backends. */
		for (unsigned int i = 0; i < n; i++)
			for (unsigned int j = 0; j < s->ws.n; j++)
				if (s->ids[j] == ids[i])
					ns->ws.b[i] = s->ws.b[j];
		ns->ws.total_rps = s->ws.total_rps;
		ns->rplan = s->rplan;
		/* Their deltas span the time since the last weighing. */
		ns->waited = s->waited;
	} else {
		char buf[96];

		pr_info("weighting: service %s: algorithm %s, %u backends",
			xm_lb_svc_key_str(key, buf, sizeof(buf)), wsvc_algo_name(ns), n);
	}
	wsvc_free(s);
	*sp = ns;
	return 0;
}

/* v as a u32 of the published maps, clamped at 4e9 (fmin is a libm call per field). */
static inline __u32 pub_u32(double v)
{
	return v < 4e9 ? (__u32)v : 4000000000U;
}

static void publish(struct xm_weighting *w, struct wsvc *s, __u32 svc_id, __u64 now,
		    const struct xm_wsample *x)
{
	for (unsigned int i = 0; i < s->ws.n; i++) {
		const struct xm_wbackend *b = &s->ws.b[i];
		struct xm_lb_wstate *o;
		__u32 id = s->ids[i];

		if (!w->wstate || id >= XM_LB_MAX_BACKENDS)
			continue;
		o = &w->wstate[id];
		o->svc_id = svc_id;
		/* a table the loop wrote stays in force until the loop or the config writes one */
		o->flags = (b->alive ? XM_WSTATE_F_LIVE : 0) |
			   (s->managed ? o->flags & XM_WSTATE_F_TABLE : 0);
		o->p99_us = pub_u32(b->latency.value * 1e6);
		o->l_est_us = pub_u32(b->l_est * 1e6);
		o->tick_p50_us = x[i].p50 >= 0 ? pub_u32(x[i].p50 * 1e6) : XM_WEIGHT_UNSET;
		o->tick_p99_us = x[i].p99 >= 0 ? pub_u32(x[i].p99 * 1e6) : XM_WEIGHT_UNSET;
		o->success_ppm = (__u32)(b->success.value * 1e6);
		o->rps_milli = pub_u32(b->rps.value * 1e3);
		o->inflight_milli = pub_u32(b->inflight.value * 1e3);
		o->inflight_now = (__u32)b->inflight_now;
		o->weight_ppm = s->managed ? (__u32)(b->weight * 1e6) : XM_WEIGHT_UNSET;
		/* Once per (re)built service: a copy per backend per tick was a tenth of the loop. */
		if (!s->algo_shown)
			snprintf(o->algo, sizeof(o->algo), "%s", wsvc_algo_name(s));
		o->updated_ns = now;
	}
	s->algo_shown = true;
}

/*
 * Connection-level rebalancing of one service: publish what the last pass
 * counted and retired, and let the next pass retire idle connections of the
 * backends that hold more than their target share (rebal.h: hysteresis,
 * share per tick, rate).
 */
static void rebalance_service(struct xm_weighting *w, struct wsvc *s, double dt, __u64 now,
			      const struct xm_wsample *x)
{
	unsigned int n = s->ws.n, spent = 0;
	__u32 held[n ? n : 1], quota[n ? n : 1];
	double target[n ? n : 1], l_est[n ? n : 1], p50[n ? n : 1], oldest[n ? n : 1];
	double tail[n ? n : 1], p99[n ? n : 1];
	bool measured[n ? n : 1], rows_quiet = true;
	__u32 rflags;

	if (!w->have_counts) {
		for (unsigned int i = 0; i < n; i++)
			s->rover[i].now = false; /* no plan, no cut of its table share */
		return;
	}
	/* the pass was skipped for its cost: the last plan stays (its quotas, its cuts) */
	if (!xm_rebalance_fresh(w->rebal))
		return;
	rflags = (s->rconf.enabled ? XM_RSTATE_F_ENABLED : 0) |
		 (xm_rebalance_can_retire(w->rebal) ? 0 : XM_RSTATE_F_NO_DESTROY);
	for (unsigned int i = 0; i < n; i++) {
		const struct xm_rebal_tally c = xm_rebalance_tally(w->rebal, s->ids[i]);

		held[i] = c.held;
		target[i] = s->ws.b[i].conn_target;
		l_est[i] = s->ws.b[i].l_est;
		tail[i] = s->ws.b[i].tail.value;
		measured[i] = s->ws.b[i].measured;
		p50[i] = x[i].p50;
		oldest[i] = x[i].oldest;
		p99[i] = x[i].p99_2nd;
		spent += c.spent;
		/* A row that says "nothing held, nothing retired" and still would: not touched. */
		if (!w->rstate || (s->rows_quiet && rflags == s->rows_flags && !c.held && !c.idle &&
				   !c.retired))
			continue;
		rows_quiet &= xm_rstate_row_update(&w->rstate[s->ids[i]], &c, rflags, dt, now);
	}
	s->rows_quiet = rows_quiet;
	s->rows_flags = rflags;
	xm_rebal_plan_now(&s->rconf, &s->rplan, dt, spent, held, target, l_est, measured, p50,
			  oldest, p99, tail, s->rover, quota, n);
	for (unsigned int i = 0; i < n; i++) {
		const struct xm_rebal_tally c = xm_rebalance_tally(w->rebal, s->ids[i]);

		/* One line per backend that retired or may retire: the bounds can be checked. */
		if (c.retired || c.spent || quota[i])
			pr_debug("rebalance: backend %u: retired %u, spent %u (%u marked on reads), "
				 "held %u (target %.3f, L_est %.1f ms), quota %u for the next pass%s",
				 s->ids[i], c.retired, c.spent, c.marked, held[i], target[i],
				 l_est[i] * 1e3, quota[i],
				 !quota[i] || !s->rover[i].urgent ? "" :
				 s->rover[i].now ? ", at the first idle moment (slow now)" :
				 ", at the first idle moment");
		/* Far too slow: its connections go at their first idle moment. */
		xm_rebalance_allow(w->rebal, s->ids[i], quota[i],
				   s->rover[i].urgent ? 0 : (__u64)(s->rconf.idle_s * 1e9),
				   !s->rover[i].urgent || !s->rconf.on_read ? XM_REBAL_ON_READ_OFF
				   : s->rconf.hold_on_read ? XM_REBAL_ON_READ_HOLD
							   : XM_REBAL_ON_READ_REPORT);
		if (quota[i] && s->rover[i].urgent) {
			long ms = lround(s->rconf.urgent_s * 1e3);

			w->urgent_ms = !w->urgent_ms || ms < w->urgent_ms ? ms : w->urgent_ms;
		}
	}
}

/*
 * Passes that only retire, every urgent_ms until the quotas of the urgent
 * backends are spent or the next tick plans again: a busy pool's connection
 * to a far slower backend is idle only between two of its requests.
 */
static void retire_urgent(struct xm_weighting *w)
{
	if (!w->urgent_ms || !w->rebal || w->urgent_tfd < 0)
		return;
	if (!xm_rebalance_retire_now(w->rebal))
		w->urgent_ms = 0;
	xm_loop_timer_arm(w->urgent_tfd, w->urgent_ms ?
			  xm_rebalance_poll_wait_ms(w->rebal, w->urgent_ms) : 0);
}

static void on_urgent_timer(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	__u64 expirations;

	if (read(fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	retire_urgent(arg);
}

/*
 * What a flipped table was written from, in its backends' xm_lb_wstate rows
 * (memory: the map is mmapped) for xmeshctl and metrics: the weight. The
 * share they show is counted from the table itself. Both used to be written
 * into the backend entries with every flip, a batched map update of ~5,500
 * entries a tick at 1,000 busy services (docs/benchmarks.md, "Weighting loop,
 * session 9").
 */
static void table_weights_publish(struct xm_weighting *w, const struct wsvc *s)
{
	for (unsigned int i = 0; w->wstate && i < s->ws.n; i++) {
		struct xm_lb_wstate *o;

		if (s->ids[i] >= XM_LB_MAX_BACKENDS)
			continue;
		o = &w->wstate[s->ids[i]];
		o->table_weight_ppm = pub_u32(s->ws.b[i].place * 1e6);
		o->flags |= XM_WSTATE_F_TABLE;
	}
}

/*
 * Write the tables queued by weigh_service() in one batched update, then flip
 * each service to its new table (the service entries as read with the
 * topology: only this agent writes them, and it re-reads them after every
 * change of its own), then publish the weights it was written from.
 */
static void flips_flush(struct xm_weighting *w)
{
	int err;

	if (!w->n_flip)
		return;
	err = xm_lb_tables_write(&w->maps, w->flip_idx, w->flip_t, w->n_flip);
	for (unsigned int j = 0; j < w->n_flip; j++) {
		unsigned int vi = w->flip_vi[j];
		struct wsvc *s = w->flip_s[j];
		int r = err ?: xm_lb_svc_flip(&w->maps, &w->svc_keys[vi], &w->svc_vals[vi],
					      w->flip_count[j]);

		if (r) {
			char buf[96];

			pr_warn("weighting: write table of %s: %s",
				xm_lb_svc_key_str(&w->svc_keys[vi], buf, sizeof(buf)), strerror(-r));
			s->written = false; /* written again next tick */
			w->topo_stale = true;
			continue;
		}
		table_weights_publish(w, s);
		if (w->wloop)
			w->wloop->table_writes++;
	}
	w->n_flip = 0;
}

/* Ask for both lines of backend id's state (a weighing writes them). */
static inline void prefetch_bstate(const struct xm_weighting *w, __u32 id)
{
	const char *b = (const char *)&w->bs[id];

	__builtin_prefetch(b, 1);
	__builtin_prefetch(b + sizeof(w->bs[0]) - 1, 1);
}

/*
 * Whether any backend of s (ids[0..n)) failed more since the service's last
 * weighing than its recent failure rate explains (weighdue.h
 * xm_weigh_failures_news()). Only when the sums show new failures: a pass
 * over the backends' counters (read this tick, a service's ids lie
 * together) and their baselines of the last weighing (bstate.prev).
 */
static bool failures_news(const struct xm_weighting *w, const struct wsvc *s, const __u32 *ids,
			  unsigned int n)
{
	/* Every baseline asked for at once: the misses overlap (prefetch_backends()). */
	for (unsigned int i = 0; i < n; i++)
		prefetch_bstate(w, ids[i]);
	for (unsigned int i = 0; i < n; i++) {
		const struct bstate *b = &w->bs[ids[i]];

		/* No baseline yet: nothing to judge its counters by, so news. */
		if (!b->have_prev ||
		    xm_weigh_failures_news(&s->ref, &w->probe[ids[i]], &b->prev,
					   s->ws.p.due_fail_alpha))
			return true;
	}
	return false;
}

/*
 * Whether service s, whose backends are ids[0..n), is weighed in this tick
 * (weighdue.h), from the sums of their probe counters (into *sum) against
 * its reference; notes in s->quiet that nothing moved since it was weighed
 * and it waits, in *quietp that nothing moved since (whether due or not).
 */
static enum xm_weigh_why weigh_due(struct xm_weighting *w, struct wsvc *s, const __u32 *ids,
				   unsigned int n, double dt, struct xm_lb_probe *sum, bool *quietp)
{
	const struct xm_weigh_ref *ref;
	enum xm_weigh_why why;
	bool quiet, fail_noise = false;

	s->quiet = *quietp = false;
	memset(sum, 0, sizeof(*sum));
	for (unsigned int i = 0; i < n; i++)
		xm_lb_probe_add(sum, &w->probe[ids[i]]);
	/* A re-read topology may have reset backends' baselines: weigh them. */
	ref = s->ws.ticks && !w->topo_fresh ? &s->ref : NULL;
	/* New failures: at once only if one backend's are news (weighdue.h). */
	if (ref && xm_weigh_new_failures(ref, sum) && s->ws.p.due_fail_alpha > 0)
		fail_noise = !failures_news(w, s, ids, n);
	why = xm_weigh_service_due(ref, sum, n, s->waited + dt, &quiet, fail_noise);
	xm_weigh_tick_seen(&s->ref, sum);
	*quietp = quiet;
	if (!quiet)
		/* Its connections are counted while it waits: the checks below need them. */
		w->want_counts |= s->managed && (s->ws.p.stickiness > 0 || s->rconf.enabled);
	if (why != XM_WEIGH_WAIT)
		return why;
	/* Retirements are planned every tick while it has traffic or connections. */
	if (s->managed && s->rconf.enabled) {
		if (!quiet)
			return XM_WEIGH_REBALANCE;
		for (unsigned int i = 0; w->have_counts && i < n; i++)
			if (xm_rebalance_tally(w->rebal, ids[i]).held)
				return XM_WEIGH_REBALANCE;
	}
	/* Only a request in flight can be old: the per-backend look only then. */
	if (w->have_counts && xm_lb_in_flight(sum) > 0)
		for (unsigned int i = 0; i < n; i++)
			if (xm_weigh_backend_aged(&s->ws, &s->ws.b[i],
						  xm_rebalance_tally(w->rebal, ids[i]).oldest_req_ns /
							  1e9))
				return XM_WEIGH_AGE;
	s->quiet = quiet;
	return XM_WEIGH_WAIT;
}

/*
 * The agent's service svc_id if its key is key, else NULL. The index is built
 * at most once per tick: the agent's state changes only between ticks.
 */
static struct xm_lb_svc_rt *rt_of(struct xm_weighting *w, __u32 svc_id,
				  const struct xm_lb_svc_key *key)
{
	struct xm_lb_svc_rt *rt;

	if (w->rt_tick != w->ticks) {
		struct xm_lb_state *st = xm_services_state(w->a);

		memset(w->rt_by_id, 0, sizeof(w->rt_by_id));
		for (unsigned int i = 0; st && i < st->n_svc; i++)
			if (st->svc[i].id < XM_LB_MAX_SERVICES)
				w->rt_by_id[st->svc[i].id] = &st->svc[i];
		w->rt_tick = w->ticks;
	}
	rt = w->rt_by_id[svc_id];
	return rt && !memcmp(&rt->conf.key, key, sizeof(*key)) ? rt : NULL;
}

/*
 * Ask for the per-backend state the weighing below reads and writes, all of
 * it at once: the misses then overlap instead of stalling one by one (they
 * were most of weigh_service()'s own time). Only for a service weighed now.
 */
static void prefetch_backends(const struct xm_weighting *w, const __u32 *ids, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		prefetch_bstate(w, ids[i]);
		if (w->have_counts)
			xm_rebalance_prefetch(w->rebal, ids[i]);
		if (w->wstate)
			__builtin_prefetch(&w->wstate[ids[i]], 1);
	}
}

/*
 * Ask for what reading backend id's histogram touches (its baseline and the
 * kernel's buckets it used before, through the mapping), one backend ahead of
 * the read: each histogram is a page of its own in a map of megabytes, so
 * these loads miss (histogram reads were a quarter of the loop at 20 rps in
 * the cost bench, docs/benchmarks.md "Weighting loop, session 20").
 */
static void prefetch_hist(const struct xm_weighting *w, __u32 id)
{
	const struct bstate *b = &w->bs[id];
	const char *lo, *hi;

	if (!b->have_hist || !b->hn || id >= w->hist_end)
		return;
	__builtin_prefetch(b->hidx);
	__builtin_prefetch(b->hcnt, 1);
	lo = (const char *)&w->hist[id].bucket[b->hlo];
	hi = (const char *)&w->hist[id].bucket[b->hhi];
	/* A backend's latencies fill a few lines; a wide spread only its ends. */
	if (hi - lo > 4 * 64) {
		__builtin_prefetch(lo);
		__builtin_prefetch(hi);
		return;
	}
	for (const char *p = lo; p <= hi; p += 64)
		__builtin_prefetch(p);
	__builtin_prefetch(hi);
}

/*
 * Plan service s's retirements and queue its table (at svc_keys/svc_vals[vi],
 * backends ids[0..n), samples x of dt s) if it is materially off its weights:
 * whether it was queued.
 */
static bool table_service(struct xm_weighting *w, unsigned int vi, struct wsvc *s,
			  const __u32 *ids, unsigned int n, double dt, __u64 now,
			  const struct xm_wsample *x)
{
	double weights[n ? n : 1];
	__u32 slots[n ? n : 1];
	bool change;
	unsigned int j;

	w->want_counts |= s->ws.p.stickiness > 0 || s->rconf.enabled;
	rebalance_service(w, s, dt, now, x);

	/*
	 * The table holds the shares of new connections (weight, with the held
	 * ones in view); a backend far slower right now at the floor at once
	 * (rebal.h now_factor).
	 */
	for (unsigned int i = 0; i < n; i++)
		weights[i] = xm_rebal_table_share(&s->rover[i], s->ws.b[i].place,
						  s->ws.p.floor / n);
	xm_lb_slots_apportion(weights, n, slots);
	/*
	 * Rewrite the table only when it is materially off what the weights ask
	 * (tablewrite.h: the service's deadband, with big moves at once): a
	 * wobble of noisy estimates is not worth a table write.
	 */
	change = !s->written || xm_table_write_due(s->slots, slots, n, s->ws.p.table_deadband,
						   now - s->written_ns);
	if (!change)
		return false;
	/* Queue the table; flips_flush() writes it and flips the service. */
	if (w->n_flip == XM_W_FLIP_BATCH)
		flips_flush(w);
	j = w->n_flip++;
	xm_lb_table_fill(&w->flip_t[j], ids, slots, n);
	w->flip_idx[j] = xm_lb_table_inactive(&w->svc_vals[vi]);
	w->flip_count[j] = xm_lb_slots_used(slots, n);
	w->flip_vi[j] = vi;
	w->flip_s[j] = s;
	memcpy(s->slots, slots, n * sizeof(*slots));
	s->written = true;
	s->written_ns = now;
	return true;
}

/* Weigh the service at svc_keys/svc_vals[vi], whose backends are ids[0..n). */
static void weigh_service(struct xm_weighting *w, unsigned int vi, const __u32 *ids,
			  unsigned int n, double dt, __u64 now)
{
	const struct xm_lb_svc_key *key = &w->svc_keys[vi];
	__u32 svc_id = w->svc_vals[vi].id;
	struct xm_wsample x[n ? n : 1];
	double weights[n ? n : 1];
	struct xm_lb_svc_rt *rt = NULL;
	struct xm_rebal_conf roff;
	enum xm_weigh_why why;
	struct xm_lb_probe sum;
	struct wsvc *s;
	bool quiet, rewritten;
	int err;

	/*
	 * A service's key, algorithm, params and backends change only with the
	 * topology (the agent's changes, or the periodic re-read for others):
	 * compare them only in a tick that re-read it.
	 */
	err = 0;
	if (w->topo_fresh || !w->svcs[svc_id]) {
		rt = rt_of(w, svc_id, key);
		/* Services added by another writer than this agent's config are left static. */
		xm_rebal_conf_default(&roff);
		err = wsvc_sync(w, &w->svcs[svc_id], key,
				rt ? xm_weight_algo_find(rt->conf.algorithm) : NULL,
				rt ? rt->conf.params : NULL, rt ? &rt->conf.rebalance : &roff, ids, n);
	}
	if (err) {
		char buf[96];

		pr_warn("weighting: service %s: %s", xm_lb_svc_key_str(key, buf, sizeof(buf)),
			strerror(-err));
		return;
	}
	s = w->svcs[svc_id];
	s->seen = w->ticks;
	why = weigh_due(w, s, ids, n, dt, &sum, &quiet);
	if (why == XM_WEIGH_WAIT) {
		s->waited += dt;
		return;
	}
	/* Everything since the last weighing: the deltas below span this time. */
	dt += s->waited;
	s->waited = 0;
	w->weighed++;
	w->weighed_why[why]++;
	prefetch_backends(w, ids, n);
	if (n)
		prefetch_hist(w, ids[0]);
	for (unsigned int i = 0; i < n; i++) {
		struct bstate *b = &w->bs[ids[i]];
		struct xm_lb_probe d, *cur = &w->probe[ids[i]];
		const __u64 *pc = (const __u64 *)cur, *pp = (const __u64 *)&b->prev;
		__u64 *pd = (__u64 *)&d;

		if (i + 1 < n)
			prefetch_hist(w, ids[i + 1]);
		memset(&x[i], 0, sizeof(x[i]));
		x[i].alive = true;
		x[i].p50 = x[i].p99 = x[i].p99_2nd = -1;
		x[i].inflight = (double)xm_lb_in_flight(cur);
		if (w->have_counts) {
			const struct xm_rebal_tally c = xm_rebalance_tally(w->rebal, ids[i]);

			x[i].conns = c.held;
			x[i].oldest = c.oldest_req_ns / 1e9;
		}
		if (!b->have_prev) {
			b->prev = *cur;
			b->have_prev = true;
			continue;
		}
		for (size_t k = 0; k < sizeof(d) / 8; k++)
			pd[k] = pc[k] - pp[k];
		b->prev = *cur;
		x[i].requests = d.req_completed + d.req_aborted + d.conn_refused + d.conn_timeout;
		x[i].failures = xm_lb_failures(&d);
		x[i].started = d.req_started;
		x[i].opened = d.conns; /* weight.h held_cap: connections new this tick */
		/*
		 * The histogram is read when enough requests completed for a
		 * quantile, or when the last read is old: a tick costs in proportion
		 * to the traffic, not to the number of backends. It is read in
		 * place, through the mapping (hist_map()).
		 */
		b->pending += d.req_completed;
		if (b->pending && ids[i] < w->hist_end &&
		    (b->pending >= XM_W_HIST_MIN || !b->have_hist ||
		     now - b->hist_ns >= XM_W_HIST_MAX_AGE_NS)) {
			if (w->hist_budget <= 0) {
				/* The next tick starts here: every backend gets its turn. */
				if (w->hist_resume < 0)
					w->hist_resume = vi;
				continue;
			}
			w->hist_budget--;
			hist_delta_quantiles(w, ids[i], &w->hist[ids[i]], b->pending, &x[i].p50,
					     &x[i].p99, &x[i].p99_2nd);
			b->pending = 0;
			b->hist_ns = now;
		}
	}
	for (unsigned int i = 0; quiet && i < n; i++)
		weights[i] = s->ws.b[i].place;
	xm_wservice_tick(&s->ws, x, dt);
	xm_weigh_ref_update(&s->ref, &sum, &s->ws);
	/* How long it may wait for news now (weighdue.h): a look at every backend only if quiet. */
	xm_weigh_settle(&s->ref, &s->ws, quiet ? weights : NULL);
	publish(w, s, svc_id, now, x);
	rewritten = s->managed && w->maps_ok && table_service(w, vi, s, ids, n, dt, now, x);
	/* How long it may bank samples now (weighdue.h): longer while its table holds still. */
	xm_weigh_busy_next(&s->ref, why, dt, quiet, rewritten);
}

/*
 * Prefetches for the services ahead in a tick, in two steps, because a
 * service's state is 13 cache lines of an allocation of its own and at 20
 * rps every service is looked at every tick: two services ahead, the line
 * that says whether it is quiet (all a quiet one's look reads besides its
 * max wait); one ahead, if it is not quiet, the rest of its state and its
 * backends' probe sums, which its look reads whether it is weighed or waits.
 */
static void prefetch_quiet_line(const struct xm_weighting *w, __u32 sid)
{
	const struct wsvc *s = sid < XM_LB_MAX_SERVICES ? w->svcs[sid] : NULL;

	if (s) {
		__builtin_prefetch(&s->quiet, 1);
		__builtin_prefetch(&s->ref.max_wait);
	}
}

static void prefetch_service(const struct xm_weighting *w, __u32 sid)
{
	const struct wsvc *s = sid < XM_LB_MAX_SERVICES ? w->svcs[sid] : NULL;
	const __u32 *ids;
	unsigned int n;

	if (!s || s->quiet)
		return;
	for (size_t off = 0; off < sizeof(*s); off += 64)
		__builtin_prefetch((const char *)s + off, 1);
	ids = &w->by_svc[w->svc_start[sid]];
	n = w->svc_count[sid];
	for (unsigned int j = 0; j < n; j++)
		__builtin_prefetch(&w->probe[ids[j]]);
	if (n)
		__builtin_prefetch((const char *)&w->probe[ids[n - 1]] + sizeof(w->probe[0]) - 1);
}

/*
 * A service that waits with nothing at all new since it was last weighed,
 * and the probes and backends exactly as in the previous tick: weigh_due()
 * would say wait again, so wait without the per-backend pass. False: ask it.
 */
static bool quiet_wait(struct wsvc *s, unsigned long long tick, double dt)
{
	if (!s || !s->quiet || xm_weigh_waited_enough(&s->ref, s->waited + dt))
		return false;
	s->waited += dt;
	s->seen = tick;
	return true;
}

/* ---- the tick ----------------------------------------------------------- */

/* Every service entry into svc_keys/svc_vals: batched, else one by one. */
static unsigned int read_services(struct xm_weighting *w)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct xm_lb_svc_key key, next;
	__u32 count = XM_LB_MAX_SERVICES, n = 0;
	bool first = true;
	__u64 cursor;
	int err;

	err = bpf_map_lookup_batch(w->maps.svc, NULL, &cursor, w->svc_keys, w->svc_vals, &count,
				   &opts);
	if (!err || errno == ENOENT)
		return count;
	while (n < XM_LB_MAX_SERVICES &&
	       !bpf_map_get_next_key(w->maps.svc, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (bpf_map_lookup_elem(w->maps.svc, &key, &w->svc_vals[n]))
			continue;
		w->svc_keys[n++] = key;
	}
	return n;
}

static int maps_open(struct xm_weighting *w)
{
	if (w->maps_ok)
		return 0;
	if (xm_lb_maps_open(&w->maps, w->a->pin_root))
		return -ENOENT;
	w->maps_ok = true;
	return 0;
}

/*
 * The sum over CPUs of xm_lb_probe_gen (probe updates so far) into *sum;
 * -1 when this datapath has no such map.
 */
static int probes_gen(struct xm_weighting *w, __u64 *sum)
{
	__u32 zero = 0;

	*sum = 0;
	if (w->gen_fd < 0)
		w->gen_fd = xm_map_open(w->a->pin_root, "xm_lb_probe_gen");
	if (w->gen_fd < 0 || !w->gen_percpu ||
	    bpf_map_lookup_elem(w->gen_fd, &zero, w->gen_percpu))
		return -1;
	for (int c = 0; c < w->ncpu; c++)
		*sum += w->gen_percpu[c];
	return 0;
}

/*
 * Map xm_lb_hist (BPF_F_MMAPABLE, read only) for ids below end at least.
 * The loop then reads a backend's histogram in place: the buckets it used
 * before (xm_lb_hist_delta_known()), or all of them now and then, with no
 * syscall and no copy of the 2 KB entry. Only the ids in use are mapped,
 * rounded up to XM_LB_PROBE_PAGE of them: the kernel maps every page of a
 * BPF array at mmap() time, and they count in the agent's RSS (RssFile)
 * though they are the map's memory, not the agent's. The map is sized for
 * the node's limit; ids are handed out from 1 upwards, round the range
 * (user/agent/lbstate.c, be_alloc()), so a node maps what it has used so
 * far. Grown when a higher id comes into use, never shrunk.
 */
static void hist_map(struct xm_weighting *w, __u32 end)
{
	size_t pg = sysconf(_SC_PAGESIZE), len;
	void *mem;

	end = (end + XM_LB_PROBE_PAGE - 1) / XM_LB_PROBE_PAGE * XM_LB_PROBE_PAGE;
	if (end > XM_LB_MAX_BACKENDS)
		end = XM_LB_MAX_BACKENDS;
	if (end <= w->hist_end)
		return;
	len = ((size_t)end * sizeof(struct xm_lb_hist) + pg - 1) / pg * pg;
	mem = mmap(NULL, len, PROT_READ, MAP_SHARED, w->maps.hist, 0);
	if (mem == MAP_FAILED) {
		/* Only a map pinned by another ABI; the agent refuses those at start. */
		if (!w->hist_warned)
			pr_warn("weighting: mmap of xm_lb_hist: %s; no latency quantiles "
				"(the pinned map is not mmapable: reinstall the datapath with "
				"'xmesh-agent uninstall', then start the agent)",
				strerror(errno));
		w->hist_warned = true;
		return;
	}
	if (w->hist)
		munmap((void *)w->hist, w->hist_len);
	w->hist = mem;
	w->hist_len = len;
	w->hist_end = end;
}

/*
 * Is the service map as at the previous read (n entries of keys and vals)?
 * Its entries' active table and backend count are the loop's own flips,
 * not a change of the topology.
 */
static bool services_same(const struct xm_weighting *w, unsigned int n,
			  const struct xm_lb_svc_key *keys, const struct xm_lb_svc *vals)
{
	if (n != w->nsvc_found || memcmp(keys, w->svc_keys, n * sizeof(*keys)))
		return false;
	for (unsigned int i = 0; i < n; i++)
		if (vals[i].id != w->svc_vals[i].id || vals[i].flags != w->svc_vals[i].flags)
			return false;
	return true;
}

/*
 * Backends (live, grouped by service) and services, from the maps. A
 * re-read makes every service compare its algorithm, params and backends
 * with the agent's and be weighed (topo_fresh), unless it was only the
 * periodic one (for writers other than this agent, which says when it
 * changes them) and found the maps as before: at 1,000 services that was
 * 1,000 weighings every XM_W_TOPO_MAX_S on an idle node, for nothing.
 */
static void topology_read(struct xm_weighting *w, __u64 now)
{
	struct xm_lb_svc_key keys[XM_LB_MAX_SERVICES];
	struct xm_lb_svc vals[XM_LB_MAX_SERVICES];
	bool changed = w->topo_stale || !w->topo_ns;
	unsigned int nsvc = w->nsvc_found;

	if (read_array(w, w->maps.be, XM_LB_MAX_BACKENDS, sizeof(struct xm_lb_backend), false,
		       w->be, &changed)) {
		pr_warn("weighting: read LB backends: %s", strerror(errno));
		return;
	}
	w->probe_end = 1;
	for (__u32 id = 1; id < XM_LB_MAX_BACKENDS; id++) {
		bool live = (w->be[id].flags & XM_LB_BE_F_USED) &&
			    !(w->be[id].flags & XM_LB_BE_F_REMOVED);

		if (!live && w->live[id]) {
			bstate_reset(&w->bs[id]); /* the id may be reused: restart deltas */
			if (w->rstate)
				memset(&w->rstate[id], 0, sizeof(w->rstate[id]));
		}
		w->live[id] = live;
		if (live)
			w->probe_end = id + 1;
	}
	hist_map(w, w->probe_end);

	/* Backends by service: counting sort on svc_id, so a tick is O(backends). */
	memset(w->svc_count, 0, sizeof(w->svc_count));
	for (__u32 id = 1; id < XM_LB_MAX_BACKENDS; id++)
		if (w->live[id] && w->be[id].svc_id < XM_LB_MAX_SERVICES)
			w->svc_count[w->be[id].svc_id]++;
	for (__u32 i = 0, acc = 0; i < XM_LB_MAX_SERVICES; i++) {
		w->svc_start[i] = acc;
		acc += w->svc_count[i];
		w->svc_count[i] = 0;
	}
	for (__u32 id = 1; id < XM_LB_MAX_BACKENDS; id++) {
		__u32 sid = w->be[id].svc_id;

		if (w->live[id] && sid < XM_LB_MAX_SERVICES)
			w->by_svc[w->svc_start[sid] + w->svc_count[sid]++] = id;
	}
	memcpy(keys, w->svc_keys, nsvc * sizeof(*keys));
	memcpy(vals, w->svc_vals, nsvc * sizeof(*vals));
	w->nsvc_found = read_services(w);
	changed |= !services_same(w, nsvc, keys, vals);
	w->topo_stale = false;
	w->topo_fresh = changed;
	w->topo_ns = now;
}

void xm_weighting_topology_changed(struct xm_agent *a)
{
	if (a->weighting)
		a->weighting->topo_stale = true;
}

void xm_weighting_tick(struct xm_agent *a)
{
	struct xm_weighting *w = a->weighting;
	__u64 now, gen, cpu0 = thread_cpu_ns();
	unsigned int nsvc = 0, nbe = 0, nsvc_found;
	bool unchanged = true; /* probes and topology as in the previous tick */
	double dt;

	if (!w || maps_open(w))
		return;
	now = xm_mono_ns();
	dt = w->last_ns ? (now - w->last_ns) / 1e9 : w->tick_ms / 1e3;
	w->last_ns = now;
	w->ticks++;

	/*
	 * Which backends and services exist changes only when the agent applies
	 * a config or a control request (xm_weighting_topology_changed()); read
	 * it then, and every XM_W_TOPO_MAX_S anyway for other writers.
	 */
	if (w->topo_stale || now - w->topo_ns >= XM_W_TOPO_MAX_S * 1000000000ULL) {
		topology_read(w, now);
		w->probe_ns = 0;
		unchanged = false;
	}
	/*
	 * Copy every backend's per-CPU probes only when some probe moved, and
	 * with every topology read (at least every XM_W_TOPO_MAX_S). The datapath
	 * counts an update just before making it, so a copy that races with one
	 * may miss it; then the next update or that periodic copy brings it.
	 * Only up to the highest live backend: the map is sized for the node's limit.
	 */
	if (probes_gen(w, &gen) || gen != w->gen || !w->probe_ns) {
		if (read_array(w, w->maps.probe,
			       (w->probe_end + XM_LB_PROBE_PAGE - 1) / XM_LB_PROBE_PAGE,
			       sizeof(struct xm_lb_probe_page), true, w->probe, NULL)) {
			pr_warn("weighting: read LB probes: %s", strerror(errno));
			w->probe_ns = 0;
			return;
		}
		w->gen = gen;
		w->probe_ns = now;
		unchanged = false;
	}
	nsvc_found = w->nsvc_found;
	/* Connections held per backend (and retirements allowed last tick): one pass. */
	if (w->want_counts && !w->rebal && !w->rebal_tried) {
		w->rebal_tried = true;
		w->rebal = xm_rebalance_open(a);
	}
	/* a pass skipped for its cost (-EAGAIN) leaves the last pass's counts, for no plan */
	if (w->want_counts && w->rebal) {
		int err = xm_rebalance_pass(w->rebal);

		w->have_counts = err >= 0 || err == -EAGAIN;
	} else {
		w->have_counts = false;
	}
	w->want_counts = false;
	if (!w->have_counts || xm_rebalance_fresh(w->rebal))
		w->urgent_ms = 0; /* planned again below; a skipped pass keeps the last plan's */
	w->weighed = 0;
	w->hist_budget = XM_W_HIST_BUDGET;
	/*
	 * Start where the last tick's histogram budget ran out, so that a
	 * service is never denied its reads for long; one step on otherwise.
	 * (A start one step on alone kept denying the same services for as many
	 * ticks as there are services while the budget binds.)
	 */
	if (w->hist_resume >= 0 && (unsigned int)w->hist_resume < nsvc_found)
		w->rotate = w->hist_resume;
	else
		w->rotate = nsvc_found ? (w->rotate + 1) % nsvc_found : 0;
	w->hist_resume = -1;
	for (unsigned int k = 0; k < nsvc_found; k++) {
		unsigned int i = (k + w->rotate) % nsvc_found;
		__u32 sid = w->svc_vals[i].id;

		if (k + 2 < nsvc_found)
			prefetch_quiet_line(w, w->svc_vals[(i + 2) % nsvc_found].id);
		if (k + 1 < nsvc_found)
			prefetch_service(w, w->svc_vals[(i + 1) % nsvc_found].id);
		if (sid >= XM_LB_MAX_SERVICES)
			continue;
		if (!unchanged || !quiet_wait(w->svcs[sid], w->ticks, dt))
			weigh_service(w, i, &w->by_svc[w->svc_start[sid]], w->svc_count[sid], dt,
				      now);
		nsvc++;
		nbe += w->svc_count[sid];
	}
	flips_flush(w);
	retire_urgent(w);
	w->topo_fresh = false;
	/* Services gone from the map. */
	for (unsigned int i = 0; i < XM_LB_MAX_SERVICES; i++)
		if (w->svcs[i] && w->svcs[i]->seen != w->ticks) {
			wsvc_free(w->svcs[i]);
			w->svcs[i] = NULL;
		}
	if (w->wloop) {
		__u64 cost = thread_cpu_ns() - cpu0;

		w->wloop->ticks = w->ticks;
		w->wloop->updated_ns = now;
		w->wloop->last_cost_ns = cost;
		w->wloop->total_cost_ns += cost;
		w->wloop->tick_ms = w->tick_ms;
		w->wloop->services = nsvc;
		w->wloop->backends = nbe;
		w->wloop->weighed_total += w->weighed;
	}
}

static void on_timer(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	__u64 expirations;

	if (read(fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	xm_lb_probes_tick(arg);
	xm_weighting_tick(arg);
}

static int timer_arm(struct xm_weighting *w)
{
	struct itimerspec its = { 0 };

	its.it_interval.tv_sec = w->tick_ms / 1000;
	its.it_interval.tv_nsec = (w->tick_ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	return timerfd_settime(w->tfd, 0, &its, NULL) ? -errno : 0;
}

int xm_weighting_start(struct xm_agent *a)
{
	struct xm_weighting *w;
	int err;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->a = a;
	w->tfd = w->urgent_tfd = -1;
	w->wstate_fd = w->wloop_fd = w->rstate_fd = -1;
	w->tick_ms = XM_TICK_MS_DEFAULT;
	w->topo_stale = true;
	w->hist_resume = -1;
	w->ncpu = libbpf_num_possible_cpus();
	w->gen_fd = -1;
	w->gen_percpu = calloc(w->ncpu > 0 ? w->ncpu : 1, sizeof(*w->gen_percpu));
	w->bs = aligned_alloc(64, XM_LB_MAX_BACKENDS * sizeof(*w->bs));
	if (w->bs)
		memset(w->bs, 0, XM_LB_MAX_BACKENDS * sizeof(*w->bs));
	w->be = calloc(XM_LB_MAX_BACKENDS, sizeof(*w->be));
	w->live = calloc(XM_LB_MAX_BACKENDS, 1);
	w->probe = calloc(XM_LB_PROBE_PAGES, sizeof(struct xm_lb_probe_page));
	w->by_svc = calloc(XM_LB_MAX_BACKENDS, sizeof(*w->by_svc));
	w->flip_t = calloc(XM_W_FLIP_BATCH, sizeof(*w->flip_t));
	w->flip_idx = calloc(XM_W_FLIP_BATCH, sizeof(*w->flip_idx));
	w->flip_count = calloc(XM_W_FLIP_BATCH, sizeof(*w->flip_count));
	w->flip_vi = calloc(XM_W_FLIP_BATCH, sizeof(*w->flip_vi));
	w->flip_s = calloc(XM_W_FLIP_BATCH, sizeof(*w->flip_s));
	/* Batches of about XM_W_BATCH_BYTES, and room for one page of probes of every CPU. */
	w->buf_bytes = sizeof(struct xm_lb_probe_page) * (w->ncpu > 0 ? w->ncpu : 1);
	if (w->buf_bytes < XM_W_BATCH_BYTES)
		w->buf_bytes = XM_W_BATCH_BYTES;
	w->keys = calloc(w->buf_bytes / sizeof(struct xm_lb_backend), sizeof(*w->keys));
	w->percpu = malloc(w->buf_bytes);
	a->weighting = w;
	if (w->ncpu <= 0 || !w->bs || !w->be || !w->live || !w->probe || !w->percpu || !w->by_svc ||
	    !w->keys || !w->flip_t ||
	    !w->flip_idx || !w->flip_count || !w->flip_vi || !w->flip_s) {
		err = w->ncpu < 0 ? w->ncpu : -ENOMEM;
		goto fail;
	}
	err = pub_map(w, "xm_lb_wstate", sizeof(struct xm_lb_wstate), XM_LB_MAX_BACKENDS,
		      &w->wstate_fd, (void **)&w->wstate, &w->wstate_len);
	if (!err)
		err = pub_map(w, "xm_lb_wloop", sizeof(struct xm_lb_wloop), 1, &w->wloop_fd,
			      (void **)&w->wloop, &w->wloop_len);
	if (!err)
		err = pub_map(w, "xm_lb_rstate", sizeof(struct xm_lb_rstate), XM_LB_MAX_BACKENDS,
			      &w->rstate_fd, (void **)&w->rstate, &w->rstate_len);
	if (err) {
		pr_err("weighting: publish maps: %s", strerror(-err));
		goto fail;
	}
	w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->tfd < 0) {
		err = -errno;
		goto fail;
	}
	err = timer_arm(w);
	if (!err)
		err = xm_loop_add(a->loop, w->tfd, EPOLLIN, on_timer, a);
	if (!err) {
		w->urgent_tfd = xm_loop_timer_add(a->loop, on_urgent_timer, w);
		err = w->urgent_tfd < 0 ? w->urgent_tfd : 0;
	}
	if (err)
		goto fail;
	if (maps_open(w))
		pr_info("weighting: no LB maps under %s yet; will retry every tick", a->pin_root);
	pr_info("weighting: tick %u ms", w->tick_ms);
	return 0;
fail:
	xm_weighting_stop(a);
	return err;
}

void xm_weighting_stop(struct xm_agent *a)
{
	struct xm_weighting *w = a->weighting;

	if (!w)
		return;
	if (w->ticks) {
		unsigned long long all = 0;
		char by[256];
		int len = 0;

		for (int k = XM_WEIGH_WAIT + 1; k < XM_WEIGH__COUNT; k++) {
			all += w->weighed_why[k];
			if (w->weighed_why[k] && len < (int)sizeof(by))
				len += snprintf(by + len, sizeof(by) - len, " %s %llu",
						xm_weigh_why_str(k), w->weighed_why[k]);
		}
		pr_info("weighting: %llu ticks, %.1f services weighed per tick (by reason:%s)",
			w->ticks, (double)all / w->ticks, len ? by : " none");
	}
	if (w->tfd >= 0) {
		if (a->loop)
			xm_loop_del(a->loop, w->tfd);
		close(w->tfd);
	}
	if (w->urgent_tfd >= 0) {
		if (a->loop)
			xm_loop_del(a->loop, w->urgent_tfd);
		close(w->urgent_tfd);
	}
	for (unsigned int i = 0; i < XM_LB_MAX_SERVICES; i++)
		wsvc_free(w->svcs[i]);
	if (w->bs)
		for (unsigned int i = 0; i < XM_LB_MAX_BACKENDS; i++)
			bstate_reset(&w->bs[i]);
	if (w->wstate)
		munmap(w->wstate, w->wstate_len);
	if (w->wloop)
		munmap(w->wloop, w->wloop_len);
	if (w->wstate_fd >= 0)
		close(w->wstate_fd);
	if (w->wloop_fd >= 0)
		close(w->wloop_fd);
	if (w->gen_fd >= 0)
		close(w->gen_fd);
	free(w->gen_percpu);
	if (w->rstate)
		munmap(w->rstate, w->rstate_len);
	if (w->rstate_fd >= 0)
		close(w->rstate_fd);
	xm_rebalance_close(w->rebal);
	if (w->hist)
		munmap((void *)w->hist, w->hist_len);
	if (w->maps_ok)
		xm_lb_maps_close(&w->maps);
	free(w->bs);
	free(w->be);
	free(w->live);
	free(w->probe);
	free(w->by_svc);
	free(w->flip_t);
	free(w->flip_idx);
	free(w->flip_count);
	free(w->flip_vi);
	free(w->flip_s);
	free(w->percpu);
	free(w->keys);
	free(w);
	a->weighting = NULL;
}

int xm_weighting_set_tick(struct xm_agent *a, unsigned int tick_ms)
{
	struct xm_weighting *w = a->weighting;

	if (!w || !tick_ms || tick_ms == w->tick_ms)
		return 0;
	pr_info("weighting: tick %u ms", tick_ms);
	w->tick_ms = tick_ms;
	w->last_ns = 0; /* the next dt is one new tick */
	return w->tfd >= 0 ? timer_arm(w) : 0;
}
