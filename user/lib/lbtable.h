/* SPDX-License-Identifier: MIT */
/*
 * Service selection tables and backend probes, seen from user space.
 * The layout is in include/xmesh/lb.h. Two small APIs for whoever steers
 * the weights (the agent's config, the control socket, the weighting loop):
 *
 * Writing weights:
 *   xm_lb_table_write(m, svc, ids, weights, n)
 *     turns n weights (any non-negative doubles, only ratios matter) into the
 *     XM_LB_SLOTS slots of the service's INACTIVE table by largest remainder,
 *     then flips the service entry to it in one map update. connect()s never
 *     see a half-written table. Call it at most once per tick per service:
 *     the table that was active before is the next one written.
 *
 * Reading probes:
 *   xm_lb_probe_read(m, id, &snap)  counters summed over CPUs + histogram
 *   xm_lb_probe_delta(&prev, &cur, &d)  what happened between two reads
 *   xm_lb_hist_quantile(d.hist, 0.99)   latency quantile in ns (bucket midpoint)
 *   xm_lb_in_flight(&snap.c)            requests waiting for a response now
 * Counters only grow while a backend id is allocated; an id is reused only
 * after it was freed (see lbstate in the agent), so keep deltas per id and
 * restart them when the backend set changes.
 */
#ifndef XMESH_LBTABLE_H
#define XMESH_LBTABLE_H

#include <stdbool.h>
#include <xmesh/lb.h>

/* File descriptors of the pinned LB maps. */
struct xm_lb_maps {
	int svc, tables, be, probe, hist, cluster;
	/*
	 * The weighting loop's xm_lb_wstate (include/xmesh/weight.h), for the
	 * weight shown of a weighed service; -1 when it is not there (no agent
	 * has weighed on this pin root yet). Set it when filling this by hand.
	 */
	int wstate;
};

/*
 * Open every LB map under pin_root, and xm_lb_wstate if it exists; -errno
 * (ENOENT: no LB datapath there).
 */
int xm_lb_maps_open(struct xm_lb_maps *m, const char *pin_root);
void xm_lb_maps_close(struct xm_lb_maps *m);

/*
 * Largest remainder: slots_out[i] = how many of XM_LB_SLOTS slots backend i
 * gets (sum XM_LB_SLOTS if any weight > 0, else 0), each within one slot of
 * weight_i / sum * XM_LB_SLOTS. Ties go to the lower index.
 */
void xm_lb_slots_apportion(const double *weights, unsigned int n, __u32 *slots_out);

/* Fill a table from backend ids and their slot counts (spread, not runs). */
void xm_lb_table_fill(struct xm_lb_table *t, const __u32 *ids, const __u32 *slots,
		      unsigned int n);

/*
 * Write the inactive table of the service at key from weights and flip to it.
 * Also records each weight as the backend's configured weight (its entry's
 * weight_milli: shown, and taken back by a restarted agent).
 * Returns 0 or -errno (-ENOENT: no such service).
 */
int xm_lb_table_write(const struct xm_lb_maps *m, const struct xm_lb_svc_key *key,
		      const __u32 *ids, const double *weights, unsigned int n);
/*
 * The first half of xm_lb_table_write: flip to a table of the given slots
 * (the second is xm_lb_be_show()).
 */
int xm_lb_table_flip(const struct xm_lb_maps *m, const struct xm_lb_svc_key *key,
		     const __u32 *ids, const __u32 *slots, unsigned int n);
/*
 * xm_lb_table_flip in steps, for a writer that holds the current service
 * entries (only safe while no one else writes them): fill tables for
 * xm_lb_table_inactive(), write many of them in one batched update, then
 * flip each service (*svc updated on success; -ENOENT: it is gone).
 */
static inline __u32 xm_lb_table_inactive(const struct xm_lb_svc *svc)
{
	return svc->id * 2 + (svc->active ^ 1);
}
int xm_lb_tables_write(const struct xm_lb_maps *m, const __u32 *idx,
		       const struct xm_lb_table *tables, unsigned int n);
int xm_lb_svc_flip(const struct xm_lb_maps *m, const struct xm_lb_svc_key *key,
		   struct xm_lb_svc *svc, __u32 backend_count);
/* Backends with at least one slot: a service entry's backend_count. */
__u32 xm_lb_slots_used(const __u32 *slots, unsigned int n);
/*
 * Record weights[i] as backend ids[i]'s configured weight (weight_milli),
 * any number of services' backends in one call (a few batched syscalls
 * whatever n; ids of one service lie together). Only the writers of tables
 * from the config call it, never the weighting loop: the loop's weights are
 * in xm_lb_wstate, and the share is counted from the table in force.
 */
int xm_lb_be_show(const struct xm_lb_maps *m, const __u32 *ids, const double *weights,
		  unsigned int n);
/*
 * For a writer that holds current copies of the entries: write n entries
 * back (one batched update, else one each). Only safe while no one else
 * writes those entries.
 */
int xm_lb_be_write(const struct xm_lb_maps *m, const __u32 *ids, unsigned int n,
		   const struct xm_lb_backend *vals);

/* Room for cap keys and values of a batched lookup. */
struct xm_batch_buf {
	__u32 *keys;
	void *vals;
	__u32 cap;
};

/*
 * Entries ids[0..n) (any order) of the ARRAY map fd, values of vsize bytes,
 * not per-CPU, into out (n x vsize). Ids that lie close together come in one
 * batched lookup per group (at most buf->cap entries each, gaps included);
 * lone ids and kernels without batch ops take one lookup each. 0 or -errno.
 */
int xm_array_lookup_ids(int fd, const __u32 *ids, unsigned int n, size_t vsize, void *out,
			const struct xm_batch_buf *buf);
/*
 * Write vals[i] (vsize bytes) to ids[i] of the ARRAY map fd, i < n: one
 * batched update (ARRAY entries always exist, so no BPF_EXIST is needed),
 * else one update each. 0 or -errno.
 */
int xm_array_update_ids(int fd, const __u32 *ids, unsigned int n, const void *vals, size_t vsize);

struct xm_lb_probe_snap {
	struct xm_lb_probe c;
	__u64 hist[XM_LB_HIST_BUCKETS]; /* the kernel's counts: 32 bits, they wrap */
};

int xm_lb_probe_read(const struct xm_lb_maps *m, __u32 id, struct xm_lb_probe_snap *out);
/*
 * Zero backend id's counters and histogram (an id about to be reused). Its
 * counters share a per-CPU entry with 63 other backends (xm_lb_probe_page),
 * written back whole: a probe update of one of those made between the read
 * and the write (microseconds, only when an id is reused) is lost, as one
 * nested on the same CPU can be (the counters are per CPU, not atomic).
 */
int xm_lb_probe_zero(const struct xm_lb_maps *m, __u32 id);
void xm_lb_probe_delta(const struct xm_lb_probe_snap *prev, const struct xm_lb_probe_snap *cur,
		       struct xm_lb_probe_snap *out);
/*
 * The one quantile of a latency histogram (xmeshctl, metrics and the
 * weighting loop all use it): the sample of 1-based rank ceil(q * total),
 * reported as its bucket's midpoint, in ns; -1 when the histogram is empty.
 * _sparse takes the non-empty buckets only: idx ascending, cnt their counts.
 */
double xm_lb_hist_quantile(const __u64 *hist, double q);
double xm_lb_hist_quantile_sparse(const __u16 *idx, const __u64 *cnt, unsigned int n, double q);
/*
 * The q[0..nq)-quantiles (each as xm_lb_hist_quantile_sparse()) of the
 * sparse histogram idx/cnt[0..n) whose counts sum to total, in one pass:
 * the weighting loop takes three of each histogram it reads. -1 when empty.
 */
void xm_lb_hist_quantiles_sparse(const __u16 *idx, const __u64 *cnt, unsigned int n,
				 __u64 total, const double *q, double *out, unsigned int nq);
/*
 * What the weighting loop reads each tick: the per-bucket increase from a
 * previous sparse snapshot (pidx/pcnt, pn entries) to the current one
 * (cidx/ccnt), counters taken modulo 2^32 (the low half of the kernel's
 * u64s, so a wrapped counter still gives the right difference). dlt[k] is
 * the increase of bucket cidx[k]; returns the total.
 */
__u64 xm_lb_hist_sparse_delta(const __u16 *pidx, const __u32 *pcnt, unsigned int pn,
			      const __u16 *cidx, const __u32 *ccnt, unsigned int cn, __u64 *dlt);
__u64 xm_lb_hist_count(const __u64 *hist);
/*
 * The delta of a histogram read (cur: the kernel's buckets) in the sparse
 * baseline's n buckets alone (idx ascending, cnt their last counts), without
 * scanning all XM_LB_HIST_BUCKETS: a backend's latencies keep falling into
 * buckets it has used before, and then those buckets rose by at least the
 * completions the probe counters saw since the last read (expect). Then
 * dlt[0..n) gets their deltas, cnt the new counts, and the delta's total is
 * returned. 0 (cnt untouched): fewer; some went to a bucket new to the
 * baseline (worth the full scan) or are still on their way (the datapath
 * counts a completion just before its bucket): scan it all
 * (xm_lb_hist_sparse_delta()). A count that reached a new bucket while the
 * known ones still added up (completions the counters had not seen yet made
 * up for it) is late, not lost: the baseline lacks that bucket, so the next
 * full scan counts it whole; callers scan in full now and then to bound that.
 */
__u64 xm_lb_hist_delta_known(const __u16 *idx, __u32 *cnt, unsigned int n, const __u32 *cur,
			     __u64 expect, __u64 *dlt);
/*
 * Bucket i of a histogram the kernel may be adding to (the loop reads
 * xm_lb_hist through its mapping): one load, so a value tested is the value
 * used.
 */
static inline __u32 xm_lb_hist_at(const __u32 *bucket, unsigned int i)
{
	return __atomic_load_n(&bucket[i], __ATOMIC_RELAXED);
}
__s64 xm_lb_in_flight(const struct xm_lb_probe *c);
/* Requests that ended badly (5xx, aborted) plus failed connects and resets. */
static inline __u64 xm_lb_failures(const struct xm_lb_probe *c)
{
	return c->http_5xx + c->req_aborted + c->conn_refused + c->conn_timeout;
}
/* successes / attempts; 1.0 when there were none. */
double xm_lb_success_rate(const struct xm_lb_probe *c);

/* "tcp"/"udp" <-> IPPROTO_*; 0 if unknown. */
__u8 xm_lb_proto_parse(const char *s);
const char *xm_lb_proto_str(__u8 proto);
/* "10.96.0.1:80/tcp" or "[fd00::1]:80/udp". */
const char *xm_lb_svc_key_str(const struct xm_lb_svc_key *k, char *buf, size_t len);

/* One allocated backend with what it belongs to, as the maps hold it. */
struct xm_lb_backend_info {
	__u32 id;
	struct xm_lb_backend be;
	struct xm_lb_svc_key svc;  /* its service */
	struct xm_lb_svc svc_val;
	char cluster[XM_LB_CLUSTER_NAME_LEN];
	/* Slots it holds in its service's active table: share = slots / XM_LB_SLOTS. */
	__u32 slots;
	/*
	 * The weight that table was written from: the weighting loop's
	 * (xm_lb_wstate table_weight_ppm) while its table is in force, else the
	 * configured one (be.weight_milli).
	 */
	double weight;
};

/*
 * Every selectable backend (flag USED) of every service, ordered by service
 * then id; svc NULL for all services. fn's non-zero return stops the walk.
 * The one place that says what a backend's share and weight are: slots are
 * counted in the active table read with the service entry (one lookup per
 * service), so the share shown is always the table's.
 */
/*
 * The weight behind backend id's slots in the table in force: the weighting
 * loop's (xm_lb_wstate, XM_WSTATE_F_TABLE) if that table is the loop's, else
 * the configured one (be->weight_milli). Shown by the readers; taken back as
 * the config by a restarted agent.
 */
double xm_lb_weight_shown(const struct xm_lb_maps *m, __u32 id, const struct xm_lb_backend *be);
int xm_lb_backend_foreach(const struct xm_lb_maps *m, const struct xm_lb_svc_key *svc,
			  int (*fn)(const struct xm_lb_backend_info *bi, void *arg), void *arg);

/* Prometheus text exposition of datapath counters and backend probes (malloc'd). */
char *xm_metrics_render(const char *pin_root, size_t *len);

#endif
