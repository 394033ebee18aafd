/* SPDX-License-Identifier: MIT */
/*
 * Latency-aware backend weighting: the filters and algorithms that turn
 * per-backend probe deltas into selection weights. Pure computation, no BPF
 * and no clock: the caller (the agent's control loop, or a test) feeds one
 * sample per backend per tick together with the time elapsed since the
 * previous tick, and reads back normalised weights.
 *
 * Algorithms (selected per service by name, see docs/weighting.md):
 *   round-robin  equal weights for every live backend
 *   l3           L3 (Middleware '24) Algorithm 1 + Algorithm 2, EWMA filters
 *   l3-peak      l3 with a PeakEWMA latency filter
 *   c3           L3's adaptation of C3: score = L (1 + rho^3), w = 1 / score
 *   l3x          xmesh's variant: live in-flight from the kernel, Little's-law
 *                latency bound for stalled backends, fast failure reaction,
 *                sharper latency exponent, outlier clamp (docs/weighting.md)
 */
#ifndef XMESH_WEIGHT_H
#define XMESH_WEIGHT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * One exponentially weighted moving average with time-based decay given as
 * a half-life (L3 Eq. 1): E = Y (1 - a) + E_prev a, a = exp(-dt ln2 / h).
 * A peak filter (Eq. 2) jumps to any sample above its value at once and
 * decays like the EWMA otherwise; a valley filter is the mirror image (it
 * drops at once, used for success rates: a failure burst is believed
 * immediately, a recovery only gradually).
 */
enum xm_filter_kind {
	XM_FILTER_EWMA = 0,
	XM_FILTER_PEAK,
	XM_FILTER_VALLEY,
};

struct xm_filter {
	double value;
	double dflt;      /* initial value, and where it drifts without samples */
	double half_life; /* seconds; <= 0 means "take every sample as is" */
	enum xm_filter_kind kind;
	bool adopt_first; /* the first sample replaces the initial value */
	bool primed;      /* has had a sample */
};

void xm_filter_init(struct xm_filter *f, enum xm_filter_kind kind, double dflt, double half_life);
/* Fold in sample y observed dt seconds after the previous update. */
void xm_filter_sample(struct xm_filter *f, double y, double dt);
/* No sample for dt seconds: move toward the default as an EWMA would. */
void xm_filter_drift(struct xm_filter *f, double dt);
/* The weight of the old value after dt seconds: exp(-dt ln2 / h). */
double xm_filter_decay(double half_life, double dt);

/* Every tunable, with the defaults of xm_weight_params_default(). */
struct xm_weight_params {
	double hl_latency;      /* s, half-life of the latency filter (5) */
	double hl_inflight;     /* s, in-flight filter (5) */
	double hl_success;      /* s, success-rate filter (10) */
	double hl_rps;          /* s, request-rate filter, also total rps (10) */
	double default_latency; /* s, initial latency (5) */
	double default_success; /* initial success rate, 0..1 (1.0) */
	double default_rps;     /* initial request rate (0) */
	double idle_after;      /* s without a completed request before drifting (10) */
	double penalty;         /* s, P: cost of a failed try (0.6) */
	double floor;           /* minimum weight as a fraction of the mean weight (0.05) */
	double rc_exponent;     /* exponent of the rate-control factors (1.5) */
	bool rate_control;      /* apply Algorithm 2 (l3, l3-peak, l3x) */
	enum xm_filter_kind latency_filter;
	/* l3x only */
	bool adopt_first;       /* a backend's first sample replaces the defaults (true) */
	double latency_exponent; /* w ~ 1 / L_est^gamma (2) */
	double outlier_factor;   /* L_est > factor x median(L_est) -> floor (4); 0 = off */
	/*
	 * L_est >= age_bound x the age of the backend's oldest request in
	 * flight (l3x: 1; 0 = off): with pooled connections the fastest sign
	 * of a backend that turned slow.
	 */
	double age_bound;
	/*
	 * New connections with the held ones in view (l3x: 1; others 0 = off):
	 * a backend's share of new connections is its weight share times
	 * ((target + 1) / (held + 1))^stickiness, clamped to [1/8, 8], where
	 * target = weight share x connections held by all, so pools drift
	 * toward the weights instead of piling onto yesterday's fast backend.
	 */
	double stickiness;
	/*
	 * Stickiness counts only pooled connections (held at the tick and not
	 * opened in it) when 1 (the default); all held connections when 0. A client that
	 * opens a connection per request holds only its requests in flight,
	 * each opened within the tick: counted, they made stickiness a second
	 * in-flight term with a gain up to 8x, which herded new connections
	 * onto the backends that had just drained (ramp, session 16).
	 */
	double sticky_pooled;
	/*
	 * Target share of held connections: the weight share, capped at
	 * conn_cap x the equal share (1 / live backends), the rest spread over
	 * the others (0 = no cap, the default: measured with 2 in session 17,
	 * it helped urllib3's pool in one run of two and cost spikes' larger
	 * pools their troubled share, docs/benchmarks.md). Only pooled
	 * clients are steered by it: with sticky_pooled a client that opens a
	 * connection per request holds no pool, and its new connections
	 * follow the weights uncapped. A connection lives on after the
	 * weights change, so no backend should hold most of a pool because it
	 * was the fastest for a moment. Rebalancing retires toward this target.
	 */
	double conn_cap;
	/*
	 * Held cap (0 = off, the default): a backend that holds at least
	 * ceil(conn_target x P) + held_cap pooled connections, P the pooled
	 * connections of all live backends, gets no new ones until it holds
	 * fewer. Pooled: held at the tick and not opened in it, so a client
	 * opening a connection per request (each one new at the tick) is never
	 * capped. A small pool (8 connections over 9 replicas) otherwise ends
	 * up with most of its connections on the two replicas that were the
	 * fastest when it reconnected, and stays there when they spike.
	 */
	double held_cap;
	/*
	 * Half-life in s of a backend's tail memory (l3x: 10; 0 = off): a
	 * PeakEWMA of its tick p99s like the latency filter, but slower, so it
	 * remembers a tail spike that the estimate (hl_latency) has forgotten.
	 * A backend's target share of held connections is its weight times
	 * (latency / tail memory)^latency_exponent: one that spiked recently
	 * collects fewer long-lived pooled connections before its next spike.
	 * The weight (request share) and the estimate recover as before.
	 */
	double hl_tail;
	/*
	 * The table is rewritten when at least this share of the traffic would
	 * move, or a backend's slots halve, double or cross zero (tablewrite.h;
	 * 0.05; 0 = on any move of 8 slots of 1024).
	 */
	double table_deadband;
	/*
	 * l3x's success filter believes a tick's failures at once (a valley
	 * filter) only when they are significant at this level against the
	 * service's failure rate (xm_failures_significant()); others are
	 * folded in gradually, like any EWMA sample (0, the default: every
	 * failure at once; 0.001 measured, docs/benchmarks.md).
	 */
	double fail_alpha;
	/*
	 * Evidence, not elapsed time, for good news (0 = off, the default;
	 * measured with 0.5, one default tick): a latency or tail sample below
	 * the filter's value weighs at most as one that followed fall_gap
	 * seconds (or the weighing's own interval, if longer: a busy service
	 * weighed every 2 s has 2 s of samples), however long ago the previous
	 * sample was. Without it a backend unmeasured for seconds (its pooled
	 * connections retired) is taken at its word by its first calm tick
	 * (172 -> 16 ms in one 0.5 s tick after a gap of several seconds) and
	 * collects pooled connections in a good window of a replica that is
	 * bad most of the time. A sample above the value keeps its full gap:
	 * slow news is believed at once.
	 */
	double fall_gap;
	/*
	 * The loop's cadence (weighdue.h): new failures weigh the service at
	 * once only when one backend's failures since its last weighing are
	 * significant at this level against the service's recent failure rate
	 * (xm_weigh_failures_news(): a burst on one backend); others wait for
	 * the next samples weighing, within the busy wait's 2 s (0.01, the
	 * default; 0 = every new failure at once, as before session 16).
	 */
	double due_fail_alpha;
	/*
	 * Chance failures leave the success estimate alone (0 = off, the
	 * default of l3, l3-peak and c3; 0.01 for l3x since session 19:
	 * docs/benchmarks.md). Each backend keeps its failures and requests
	 * decayed with hl_success; a weighing's sample moves its success filter
	 * only when those counts, or the sample's own, differ from the other
	 * backends' rate significantly at this level (two-sided Chernoff bound,
	 * xm_counts_differ()). Otherwise the backend is taken to fail at the
	 * rate of all such backends (chance_rate, which itself moves only on
	 * a significant change): its filter is fed 1 - that rate, the same for
	 * every such backend and from one weighing to the next, so one 5xx in
	 * 40 requests at a service-wide 1 % moves no weight and no table. A
	 * burst (6 of 20) still counts at once.
	 */
	double success_alpha;
	/*
	 * A backend without samples of its own (xm_wbackend.measured false:
	 * none yet, or none completed within idle_after) is weighed at most
	 * at the service's typical estimate, the median of the measured
	 * backends', when 1 (l3x); at its filter's value, which starts at
	 * default_latency (5 s) and drifts back toward it, when 0. With 5 s a
	 * small pool (8 connections over 9 replicas) never reaches the
	 * replicas it missed at start-up, nor those whose connections were
	 * retired in a spike: their weights sit at the floor, every reconnect
	 * lands on the two or three measured ones, and a spike of one of
	 * those finds it holding most of the pool (docs/benchmarks.md,
	 * session 21). A weight is a guess without samples; the typical one
	 * is the guess that gets the backend measured again.
	 */
	double unmeasured_typical;
};

/* What the probes said about one backend over the last tick. */
struct xm_wsample {
	uint64_t requests; /* completed in the tick, successes + failures */
	uint64_t failures;
	uint64_t started;  /* requests started in the tick (0 if unknown) */
	double p99;        /* s, of successful requests completed in the tick; < 0: none */
	double p50;        /* s, same; < 0: none */
	/*
	 * s, same, at the quantile rebal.h xm_rebal_tail_q(): the p99, but at
	 * most the second slowest request (below 100 a tick the p99 is the
	 * slowest, which one outlier sets); < 0: fewer than 2. For the
	 * rebalancing plan's tail_factor, not the weights.
	 */
	double p99_2nd;
	double inflight;   /* requests in flight at the end of the tick */
	double conns;      /* client connections held to it at the tick (0 if unknown) */
	double opened;     /* connections to it that reached ESTABLISHED in the tick */
	double oldest;     /* s, age of its oldest request in flight at the tick (0 if unknown) */
	bool alive;        /* eligible for selection */
};

/*
 * failures of requests in one tick are more than a backend failing at the
 * service's rate p_ref would give with probability alpha (Chernoff bound of
 * the binomial tail: conservative, no loop, any count). False when alpha <= 0
 * is not asked: the caller decides what alpha 0 means.
 */
bool xm_failures_significant(uint64_t failures, uint64_t requests, double p_ref, double alpha);

/*
 * failures of requests (decayed counts allowed) are further from a rate
 * p_ref, above or below, than chance would take them with probability
 * exp(-thr) (thr = -ln alpha; Chernoff bound per side). A chi-square bound
 * answers most calls without a logarithm.
 */
bool xm_counts_differ(double failures, double requests, double p_ref, double thr);

/* Filtered state of one backend; shown by `xmeshctl backend list`. */
struct xm_wbackend {
	struct xm_filter latency;  /* p99 of successful requests, s */
	struct xm_filter success;  /* 0..1 */
	struct xm_filter rps;      /* completed requests per second */
	struct xm_filter inflight; /* requests in flight */
	struct xm_filter tail;     /* p99, s, with half-life hl_tail: the tail memory */
	double idle;               /* s since the last completed request */
	double lat_gap;            /* s since the last latency sample (or drift) */
	double inflight_now;       /* last raw in-flight gauge */
	double oldest_now;         /* s, last age of its oldest request in flight (0: unknown) */
	double l_est;              /* s, the latency estimate the weight came from */
	double weight;             /* target share of requests, 0..1 (sum 1 over live) */
	double place;              /* share of new connections (the table), 0..1: weight,
				    * adjusted for connections held (stickiness) */
	double conns;              /* connections held at the last tick */
	double pooled;             /* of which not opened in that tick (held_cap) */
	double conn_target;        /* share of held connections it should have (conn_cap) */
	/*
	 * l_est rests on its own requests: one completed within idle_after (the
	 * latency filter does not drift back to default_latency yet), or one in
	 * flight longer than the filter's value (l3x's age and stall bounds).
	 * Else l_est is the prior, default_latency (5 s): not a latency to
	 * compare backends by (medians, outliers, rebalancing).
	 */
	bool measured;
	bool alive;
	/* success_alpha: failures and requests, decayed with hl_success */
	double fail_win, req_win;
};

struct xm_wservice;

struct xm_weight_algo {
	const char *name;
	const char *help;
	/*
	 * Every live backend gets the same weight, whatever is measured: the
	 * config code writes the table once and the weighting loop leaves the
	 * service alone (round-robin). Asked here, never by comparing names.
	 */
	bool equal_weights;
	/*
	 * Its estimate is bounded below by age_bound x the age of the oldest
	 * request in flight (l3x): the weighting loop weighs such a service at
	 * once when that bound overtakes an estimate (xm_weigh_backend_aged).
	 * Elsewhere the parameter does nothing, and an aged request nothing early.
	 */
	bool age_bounded;
	/* Adjust params after defaults, before the user's overrides. */
	void (*tune)(struct xm_weight_params *p);
	/* Fill w[0..n-1] (unnormalised, >= 0) from the filtered state. */
	void (*compute)(struct xm_wservice *s, double *w);
};

struct xm_wservice {
	const struct xm_weight_algo *algo;
	struct xm_weight_params p;
	struct xm_filter total_rps; /* for rate control */
	double last_total_rps;
	double rc_change;           /* c of the last tick */
	/*
	 * success_alpha: the failure rate of the backends whose failures are
	 * chance, fed to their success filters; it moves only when their
	 * decayed counts differ from it significantly, so that it holds still.
	 */
	double chance_rate;
	uint64_t ticks;
	unsigned int n;
	struct xm_wbackend *b;      /* n entries, owned */
};

void xm_weight_params_default(struct xm_weight_params *p);
const struct xm_weight_algo *xm_weight_algo_find(const char *name);
/* Round-robin: equal weights; also the filters a static service runs, for display. */
extern const struct xm_weight_algo xm_weight_algo_rr;
/* NULL-terminated list of every algorithm. */
extern const struct xm_weight_algo *const xm_weight_algos[];

/*
 * Set up a service of n backends with algorithm a (xm_weight_algo_find). p
 * may be NULL (defaults + the algorithm's tuning); a non-NULL p is taken as
 * is. Returns 0, -ENOENT when a is NULL (an unknown name), -ENOMEM.
 */
int xm_wservice_init(struct xm_wservice *s, const struct xm_weight_algo *a,
		     const struct xm_weight_params *p, unsigned int n);
void xm_wservice_free(struct xm_wservice *s);
/* Grow or shrink to n backends; new ones start from the defaults. */
int xm_wservice_resize(struct xm_wservice *s, unsigned int n);
void xm_wbackend_reset(struct xm_wbackend *b, const struct xm_weight_params *p);
/*
 * One tick: fold samples[0..n-1] (dt seconds since the last tick) into the
 * filters and recompute every backend's weight (b[i].weight, sum 1 over live
 * backends; all 0 when none is live) and share of new connections
 * (b[i].place, the same unless stickiness is on and connections are held).
 */
void xm_wservice_tick(struct xm_wservice *s, const struct xm_wsample *samples, double dt);

/* Building blocks, exposed for the tests. */
/* L3 Algorithm 1 for one backend. */
double xm_l3_weight(double latency, double success, double rps, double inflight, double penalty,
		    double *l_est);
/* L3 Algorithm 2: one weight given the mean weight and the relative rps change c. */
double xm_l3_rate_control(double w, double w_mean, double c, double exponent);
/* Raise every positive weight below floor x mean to it (live backends only). */
void xm_weight_apply_floor(double *w, const bool *live, unsigned int n, double floor);

#endif
