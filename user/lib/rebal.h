/* SPDX-License-Identifier: MIT */
/*
 * Connection-level rebalancing, the policy half (docs/weighting.md, "Pooled
 * connections"): a service's "rebalance" object and the per-tick plan of how
 * many idle pooled connections to retire per backend. Pure computation; the
 * agent (user/agent/rebalance.c) counts connections and retires them.
 */
#ifndef XMESH_REBAL_H
#define XMESH_REBAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Ticks in a row a backend must be far slower than the others to be urgent. */
#define XM_REBAL_FAR_TICKS 2
/* Ticks a slow-now mark (now_factor) outlives its evidence without a calm p50. */
#define XM_REBAL_NOW_HOLD_TICKS 4
/*
 * Ticks without a typical p50 and p99 of their own (fewer than 3 backends
 * with one) in which tail_factor compares with the last ones
 * (xm_rebal_svc.kept).
 */
#define XM_REBAL_KEPT_TICKS 4
/*
 * A backend slow now by its tail (tail_factor) has a p99 at least this
 * times the typical p99 of the tick as well: where every replica's tail is
 * long, none is singled out by it.
 */
#define XM_REBAL_TAIL_OVER 2
/*
 * Backends with a latency estimate of their own (measured) it takes to have
 * a typical one that slow_factor and fast_factor compare against; fewer: no
 * backend is slow or far by its estimate (the now_factor rule still works).
 */
#define XM_REBAL_MIN_MEASURED 2
/*
 * Half-life in s of a backend's usual p99 of a tick (xm_rebal_track.u99:
 * tail_self), and how far above the usual value one tick's sample counts (a
 * spike of 2-4 s moves it by a few per cent).
 */
#define XM_REBAL_USUAL_HL 10.0
#define XM_REBAL_USUAL_CLIP 2.0

struct xm_rebal_conf {
	bool enabled;          /* "enabled" (false) */
	double max_per_s;      /* "max_per_s": retired connections per second, whole service (20) */
	double idle_s;         /* "idle_ms" / 1000: no segment for this long (0.2) */
	double share_per_tick; /* "share_per_tick": at most this share of a backend's connections
				* per tick, on average; one at a time below 1 / share (0.5) */
	double margin;         /* "margin": connection share above target share that counts,
				* in equal shares (1 / backends): 0.25 */
	unsigned int ticks;    /* "ticks": consecutive ticks above the margin before acting (2) */
	unsigned int min_conns; /* "min_conns": the service holds at least this many (1) */
	/*
	 * "slow_factor": only a backend whose latency estimate is above this
	 * times the typical estimate (the lower median of the measured
	 * backends', xm_rebal_plan_now) is shed (2; 0 = any backend over its
	 * share). Weights of equally fast backends wobble (l3x puts some
	 * at the floor by chance); retiring toward them would only churn.
	 */
	double slow_factor;
	/*
	 * "fast_factor": a backend whose latency estimate is above this times
	 * the typical one (two ticks in a row) is far too slow to wait for (2;
	 * 0 = off): it skips the hysteresis and the credit (its full share per
	 * tick at once), and its connections retire at their first idle
	 * moment (no request in flight, nothing unread or unacknowledged; no
	 * idle_ms), looked for every urgent_ms until the next tick. A busy
	 * pool's connection to such a backend is idle only for the moment
	 * between two requests. 4 until the fifth session: 2 met the spikes
	 * target in pool mode (docs/benchmarks.md).
	 */
	double fast_factor;
	/*
	 * "now_factor": a backend whose latency now (its p50 of this tick, or
	 * the age of its oldest request in flight, whichever is larger) is at
	 * least this times the service's typical latency now (the lower
	 * median of the backends' p50s of this tick, 3 or more; or of the last
	 * tick's, if higher: xm_rebal_svc.typical_p50) is urgent in this very
	 * tick
	 * (4; 0 = off). fast_factor compares latency estimates, which are tail
	 * quantiles of a few samples: a spiking replica's rose only 2-2.6x the
	 * median and wobbled across 2x, so the two ticks in a row came late or
	 * never (docs/benchmarks.md, sixth session). Such a backend is planned
	 * as if its target share were 0 (its weight has not caught up yet) and
	 * its table share is cut to the floor while it lasts (tr.now).
	 */
	double now_factor;
	/*
	 * "tail_factor": a backend whose p99 of this tick (of two requests at
	 * least: xm_rebal_tail_q) is at least this times the same typical
	 * latency now is slow right now as well, urgent in this very tick (4;
	 * 0 = off, the ninth session's rule). A spike of the tail alone
	 * leaves the p50 where it was, so now_factor missed it unless a
	 * request was in flight that long at the tick, and fast_factor needs
	 * two ticks of the latency estimate: with urllib3's 8 kept
	 * connections, most troubled requests went to replicas whose p99
	 * alone spiked, seen 1-2 s into a 2 s spike (docs/benchmarks.md,
	 * ninth and tenth sessions). The p99 must also be at least
	 * XM_REBAL_TAIL_OVER x the typical p99 of the tick (lower median), so
	 * that replicas whose tails are long anyway are not all slow now. In
	 * a tick with fewer than 3 p50s or p99s (a small pool on few
	 * backends) it compares with the last typical values, for
	 * XM_REBAL_KEPT_TICKS ticks; now_factor does not.
	 */
	double tail_factor;
	/*
	 * "tail_self": 1: a backend whose p99 of this tick (as tail_factor's) is
	 * at least XM_REBAL_TAIL_OVER x its own usual p99 (xm_rebal_track.u99:
	 * a slow average of its p99s of a tick that a spike moves little),
	 * times the typical rise of the others' p99s over theirs (the lower
	 * median of their ratios, 1 or more, at least 1; the higher of this and
	 * the last tick's), is slow now as well: a slowdown all share marks no
	 * one. tail_factor compares with the service's typical values, which are
	 * those of the backends a pool happens to sit on: urllib3's 8
	 * connections on replicas 1, 6 and 7 of make bench-l3's spikes made 4 x
	 * the typical p50 340 ms and 2 x the typical p99 400 ms, and replica 1's
	 * spike (its p99 of a tick 260 ms against its usual 110 ms) was found a
	 * second later by its estimate (docs/benchmarks.md, eleventh session).
	 * Off by default (0): on a loaded machine a fast service's calm
	 * replicas (10 ms, p99 30 ms) doubled their tick p99 with scheduling
	 * noise alone, and were marked, cut and drained (needs tail_factor > 0).
	 */
	unsigned int tail_self;
	/*
	 * "urgent_share": the share of a backend's held connections it may give
	 * up in a tick when it is slow right now (now_factor, tail_factor,
	 * tail_self): 1, all of its excess over its target at once (the
	 * service's max_per_s still bounds it). share_per_tick (0.5) took 2-3
	 * ticks to empty a spiking replica of a pool's 5 connections, most of a
	 * 2 s spike. A backend urgent by its estimate alone (fast_factor) keeps
	 * share_per_tick: with a small pool on two replicas a calm replica 2.2x
	 * slower than the other is "far", and all its connections moved at once
	 * onto the one replica (0.5: share_per_tick's rule, before the eleventh
	 * session).
	 */
	double urgent_share;
	/*
	 * "typical_of_tick": 1: the typical estimate that slow_factor and
	 * fast_factor compare against is that of the backends that answered
	 * requests in this tick (2 or more; else of all measured ones): an
	 * estimate without new samples is an old one (1; 0: of all measured
	 * backends, the sixth session's rule).
	 */
	unsigned int typical_of_tick;
	/*
	 * "tail_slow": 1: a backend whose tail memory (weight.h hl_tail: a
	 * slowly decaying peak of its tick p99s) is above slow_factor x the
	 * typical estimate is slow as well, so that its excess over its
	 * (discounted) connection target is retired with the usual hysteresis
	 * and credit after a tail spike, before the next one (0).
	 */
	unsigned int tail_slow;
	/*
	 * "now_last_tick": 1: now_factor compares with the higher of this
	 * tick's typical p50 and the last tick's (xm_rebal_svc.typical_p50),
	 * so that a slowdown shared by all that ended inside this tick marks
	 * no one; 0: this tick's alone, the rule before (1).
	 */
	unsigned int now_last_tick;
	double urgent_s;       /* "urgent_ms" / 1000: retire-now passes this often (0.01) */
	/*
	 * "on_read": 1: also look for that moment when the client has read a
	 * response (a read event from the kernel starts a pass at once); 0: the
	 * urgent_ms poll alone (1).
	 */
	unsigned int on_read;
	/*
	 * "hold_on_read": 1: such a read also marks the connection, so that the
	 * client's next request is held until the pass closes it (rebalance.h
	 * XM_REBAL_ON_READ_HOLD; with bpf_sock_destroy only); the request then
	 * fails at the client, which sends it again on a new connection (0).
	 */
	unsigned int hold_on_read;
};

void xm_rebal_conf_default(struct xm_rebal_conf *c);
/*
 * c = defaults, then the fields of o ("rebalance": an object, or true/false
 * for enabled with defaults; may be NULL). Returns 0, or -EINVAL with
 * err = "rebalance.FIELD: what is wrong".
 */
int xm_rebal_conf_parse(json_t *o, struct xm_rebal_conf *c, char *err, size_t errlen);
/*
 * The same, and on error *at = the key in o of the field that is wrong (NULL:
 * o itself), so that a config file's error can point at that value.
 */
int xm_rebal_conf_parse_at(json_t *o, struct xm_rebal_conf *c, char *err, size_t errlen,
			   const char **at);
/*
 * The fields "rebalance" takes, i < xm_rebal_field_count() ("enabled" first),
 * and the values each takes as docs/config.md's type column writes them
 * ("boolean", "0 or 1", "integer 1..1000", "number 0..100000").
 */
unsigned int xm_rebal_field_count(void);
const char *xm_rebal_field_name(unsigned int i);
void xm_rebal_field_type(unsigned int i, char *buf, size_t len);

/* Per service state of the plan, zeroed to start. */
struct xm_rebal_svc {
	double tokens; /* retirements allowed now (token bucket, max_per_s, burst 1 s) */
	/*
	 * The typical p50 of the last tick (0: none): now_factor compares
	 * with the higher of it and this tick's, so that a backend merely as
	 * slow as all were a moment ago is not "slow now" (a slowdown shared
	 * by all ends inside a tick: the p50s of that tick mix both phases in
	 * different proportions per backend).
	 */
	double typical_p50;
	/*
	 * The last typical latency now (with now_last_tick) and typical p99,
	 * and the ticks since, for tail_factor in ticks without them
	 * (XM_REBAL_KEPT_TICKS).
	 */
	double kept, kept_p99;
	unsigned int kept_ticks;
};

/* Per backend state of the plan, kept by the caller, zeroed to start. */
struct xm_rebal_track {
	unsigned int over; /* consecutive ticks it was above its share by the margin */
	/*
	 * Retirements earned: share_per_tick x held per tick while over, at
	 * most max(1, share_per_tick x held); a quota spends it. So a backend
	 * holding 2 connections with a share of 0.25 gives up one every other
	 * tick, where a per-tick floor() would never let one go.
	 */
	double credit;
	unsigned int far; /* consecutive ticks above fast_factor x the typical estimate (up to 2) */
	/* Set by the plan: far slower than the others (fast_factor), retire it now. */
	bool urgent;
	/*
	 * Set by the plan: far slower right now (now_factor), or was within
	 * XM_REBAL_NOW_HOLD_TICKS and no tick since measured it calm; cut its
	 * table share too.
	 */
	bool now;
	unsigned int now_ticks; /* ticks since the evidence of the mark */
	/*
	 * Its usual p99 of a tick, s (0: not yet): an average with half-life
	 * XM_REBAL_USUAL_HL of its ticks' values, each at most
	 * XM_REBAL_USUAL_CLIP x the average, so that a spike moves it little;
	 * and the others' typical rise over theirs of the last tick that had
	 * one, and the ticks since (tail_self). Kept when the rest is reset.
	 */
	double u99, rise;
	unsigned int rise_ticks;
};

/*
 * One tick of the plan for a service of n backends. held[i] = connections
 * clients hold to backend i, weight[i] = its target share (sum 1), tr[i] =
 * its plan state, retired = connections retired since the last call
 * (charged to the bucket), dt = seconds since the last call, l_est[i] = its
 * latency estimate (NULL: all alike). Fills quota[i] = idle connections to
 * retire from backend i in the next pass: only from a backend slower than
 * slow_factor x the typical estimate (the lower median) that was over the
 * margin for `ticks` ticks (a backend above fast_factor x the typical one
 * for XM_REBAL_FAR_TICKS ticks: then, with its full credit, and
 * tr[i].urgent set), at most its credit (share_per_tick x held per tick: per
 * tick at most max(1, floor(share_per_tick x held[i]))), at most its excess over
 * its weight share (in connections, rounded), and in all at most the bucket.
 * Returns the sum of quota.
 */
unsigned int xm_rebal_plan(const struct xm_rebal_conf *c, struct xm_rebal_svc *st, double dt,
			   unsigned int retired, const uint32_t *held, const double *weight,
			   const double *l_est, struct xm_rebal_track *tr, uint32_t *quota,
			   unsigned int n);

/*
 * The quantile of a backend's latency histogram of one tick (requests
 * completed in it) that the plan's p99 is (tail_factor): 0.99, but at most
 * the rank of the second slowest request, so that below 100 requests, where
 * the p99 is the slowest one, a single outlier does not make a backend slow
 * now. < 0: fewer than 2 requests, no such quantile.
 */
double xm_rebal_tail_q(uint64_t requests);

/*
 * The share of new connections (the table) for a backend the plan left in
 * tr with weight share `place`: at most floor_share while it is slow right
 * now (tr->now), so that the connections it gives up do not come back to it
 * before its weight catches up; else place.
 */
double xm_rebal_table_share(const struct xm_rebal_track *tr, double place, double floor_share);

/*
 * The same with the latency now as well (now_factor): p50[i] = backend i's
 * p50 of this tick in s (< 0: none), oldest[i] = the age of its oldest
 * request in flight in s (0: none or unknown); either may be NULL. And with
 * measured[i] = l_est[i] rests on backend i's own requests (weight.h
 * xm_wbackend.measured; NULL: all do): the typical estimate is that of the
 * measured backends (at least XM_REBAL_MIN_MEASURED; of those with a p50 of
 * this tick when enough have one and typical_of_tick), and a backend without
 * one is neither slow nor far by its estimate (it is default_latency).
 * p99[i] = backend i's p99 of this tick in s, at the quantile
 * xm_rebal_tail_q() of its requests (< 0: none; NULL: tail_factor is off).
 * tail[i] = backend i's tail memory in s (NULL: none; tail_slow).
 */
unsigned int xm_rebal_plan_now(const struct xm_rebal_conf *c, struct xm_rebal_svc *st, double dt,
			       unsigned int retired, const uint32_t *held, const double *weight,
			       const double *l_est, const bool *measured, const double *p50,
			       const double *oldest, const double *p99, const double *tail,
			       struct xm_rebal_track *tr, uint32_t *quota, unsigned int n);

#endif
