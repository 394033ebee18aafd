// SPDX-License-Identifier: MIT
/* Connection-level rebalancing: configuration and plan (rebal.h). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nearname.h"
#include "numparse.h"
#include "rebal.h"

void xm_rebal_conf_default(struct xm_rebal_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->max_per_s = 20;
	c->idle_s = 0.2;
	c->share_per_tick = 0.5;
	c->margin = 0.25;
	c->ticks = 2;
	c->min_conns = 1; /* a pool of 3 kept its connection to a 8x slower replica (session 17) */
	c->slow_factor = 2;
	c->fast_factor = 2;
	c->now_factor = 4;
	c->tail_factor = 4;
	c->tail_self = 0; /* measured: docs/benchmarks.md, eleventh session */
	c->urgent_share = 1;
	c->typical_of_tick = 1;
	c->now_last_tick = 1;
	c->urgent_s = 0.01;
	c->on_read = 1;
}

/*
 * The fields of "rebalance" after "enabled": a double (uint_off < 0), or an
 * unsigned integer (dbl_off < 0; lo 0 and hi 1: a flag, "0 or 1"). The one
 * table for the parser, its errors' list of known fields, and the type
 * column of docs/config.md (xm_rebal_field_type, checked by
 * tests/unit/test_config_check.c).
 */
static const struct {
	const char *key;
	double lo, hi, scale;
	long dbl_off, uint_off;
} fields[] = {
	{ "max_per_s", 0, 100000, 1, offsetof(struct xm_rebal_conf, max_per_s), -1 },
	{ "idle_ms", 0, 3600000, 1e-3, offsetof(struct xm_rebal_conf, idle_s), -1 },
	{ "share_per_tick", 0, 1, 1, offsetof(struct xm_rebal_conf, share_per_tick), -1 },
	{ "margin", 0, 10, 1, offsetof(struct xm_rebal_conf, margin), -1 },
	{ "ticks", 1, 1000, 1, -1, offsetof(struct xm_rebal_conf, ticks) },
	{ "min_conns", 1, 1000000, 1, -1, offsetof(struct xm_rebal_conf, min_conns) },
	{ "slow_factor", 0, 1000, 1, offsetof(struct xm_rebal_conf, slow_factor), -1 },
	{ "fast_factor", 0, 1000, 1, offsetof(struct xm_rebal_conf, fast_factor), -1 },
	{ "now_factor", 0, 1000, 1, offsetof(struct xm_rebal_conf, now_factor), -1 },
	{ "tail_factor", 0, 1000, 1, offsetof(struct xm_rebal_conf, tail_factor), -1 },
	{ "tail_self", 0, 1, 1, -1, offsetof(struct xm_rebal_conf, tail_self) },
	{ "urgent_share", 0, 1, 1, offsetof(struct xm_rebal_conf, urgent_share), -1 },
	{ "typical_of_tick", 0, 1, 1, -1, offsetof(struct xm_rebal_conf, typical_of_tick) },
	{ "tail_slow", 0, 1, 1, -1, offsetof(struct xm_rebal_conf, tail_slow) },
	{ "now_last_tick", 0, 1, 1, -1, offsetof(struct xm_rebal_conf, now_last_tick) },
	{ "urgent_ms", 1, 10000, 1e-3, offsetof(struct xm_rebal_conf, urgent_s), -1 },
	{ "on_read", 0, 1, 1, -1, offsetof(struct xm_rebal_conf, on_read) },
	{ "hold_on_read", 0, 1, 1, -1, offsetof(struct xm_rebal_conf, hold_on_read) },
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

unsigned int xm_rebal_field_count(void)
{
	return 1 + N_FIELDS;
}

const char *xm_rebal_field_name(unsigned int i)
{
	return i == 0 ? "enabled" : i <= N_FIELDS ? fields[i - 1].key : NULL;
}

static bool is_flag(unsigned int f)
{
	return fields[f].uint_off >= 0 && fields[f].lo == 0 && fields[f].hi == 1;
}

void xm_rebal_field_type(unsigned int i, char *buf, size_t len)
{
	char lo[32], hi[32];

	if (i == 0 || i > N_FIELDS) {
		snprintf(buf, len, "%s", i == 0 ? "boolean" : "");
		return;
	}
	i--;
	if (is_flag(i))
		snprintf(buf, len, "0 or 1");
	else
		snprintf(buf, len, "%s %s..%s", fields[i].uint_off >= 0 ? "integer" : "number",
			 xm_number_str(fields[i].lo, lo, sizeof(lo)),
			 xm_number_str(fields[i].hi, hi, sizeof(hi)));
}

/* What field f takes, as its error says it. */
static void field_rule(unsigned int f, char *buf, size_t len)
{
	char lo[32], hi[32];

	if (is_flag(f))
		snprintf(buf, len, "must be 0 or 1");
	else
		snprintf(buf, len, "must be %s from %s to %s",
			 fields[f].uint_off >= 0 ? "an integer" : "a number",
			 xm_number_str(fields[f].lo, lo, sizeof(lo)),
			 xm_number_str(fields[f].hi, hi, sizeof(hi)));
}

/* "rebalance.KEY: unknown field (known here: ...); did you mean ...?" */
static void unknown_field(const char *k, char *err, size_t errlen)
{
	char known[512] = "", hint[96];
	struct xm_nearname near;

	xm_nearname_init(&near, k);
	for (unsigned int i = 0; i < xm_rebal_field_count(); i++) {
		const char *name = xm_rebal_field_name(i);
		size_t used = strlen(known);

		xm_nearname_offer(&near, name);
		snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "", name);
	}
	snprintf(err, errlen, "rebalance.%.64s: unknown field (known here: %s)%s", k, known,
		 xm_nearname_hint(&near, hint, sizeof(hint)));
}

int xm_rebal_conf_parse(json_t *o, struct xm_rebal_conf *c, char *err, size_t errlen)
{
	return xm_rebal_conf_parse_at(o, c, err, errlen, NULL);
}

int xm_rebal_conf_parse_at(json_t *o, struct xm_rebal_conf *c, char *err, size_t errlen,
			   const char **at)
{
	const char *k;
	json_t *v;

	if (at)
		*at = NULL;
	xm_rebal_conf_default(c);
	if (!o)
		return 0;
	if (json_is_boolean(o)) {
		c->enabled = json_is_true(o);
		return 0;
	}
	if (!json_is_object(o)) {
		snprintf(err, errlen, "rebalance: must be an object or true/false");
		return -EINVAL;
	}
	c->enabled = true; /* an object turns it on unless it says "enabled": false */
	json_object_foreach(o, k, v) {
		char rule[96];
		size_t i;

		if (at)
			*at = k;
		if (!strcmp(k, "enabled")) {
			if (!json_is_boolean(v)) {
				snprintf(err, errlen, "rebalance.enabled: must be true or false");
				return -EINVAL;
			}
			c->enabled = json_is_true(v);
			continue;
		}
		for (i = 0; i < N_FIELDS; i++)
			if (!strcmp(k, fields[i].key))
				break;
		if (i == N_FIELDS) {
			unknown_field(k, err, errlen);
			return -EINVAL;
		}
		if (!json_is_number(v) || json_number_value(v) < fields[i].lo ||
		    json_number_value(v) > fields[i].hi ||
		    (fields[i].uint_off >= 0 && !json_is_integer(v))) {
			field_rule(i, rule, sizeof(rule));
			snprintf(err, errlen, "rebalance.%s: %s", k, rule);
			return -EINVAL;
		}
		if (fields[i].uint_off >= 0)
			*(unsigned int *)((char *)c + fields[i].uint_off) =
				(unsigned int)json_integer_value(v);
		else
			*(double *)((char *)c + fields[i].dbl_off) =
				json_number_value(v) * fields[i].scale;
	}
	/*
	 * Switches that act only through another field: set while that one is
	 * off, they would be taken and do nothing (rebal.c's plan reads
	 * tail_self only with tail_factor > 0; the agent's pass marks on a read
	 * only where on_read asks for read events).
	 */
	if (c->tail_self && !(c->tail_factor > 0)) {
		if (at)
			*at = "tail_self";
		snprintf(err, errlen, "rebalance.tail_self: 1 needs \"tail_factor\" above 0 (it "
			 "judges the same p99 of a tick, and tail_factor 0 turns that off): drop "
			 "\"tail_factor\": 0 or set \"tail_self\" to 0");
		return -EINVAL;
	}
	if (c->hold_on_read && !c->on_read) {
		if (at)
			*at = "hold_on_read";
		snprintf(err, errlen, "rebalance.hold_on_read: 1 needs \"on_read\" 1 (the hold is "
			 "set on the read events that on_read turns on): drop \"on_read\": 0 or "
			 "set \"hold_on_read\" to 0");
		return -EINVAL;
	}
	if (at)
		*at = NULL;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The typical value of v[0..m-1] (sorted in place): its median, of an even
 * count the lower of the two middle values. With two, that is the faster
 * backend: their mean could never be exceeded 2x (fast_factor) by the
 * slower one, whatever its latency.
 */
static double typical_of(double *v, unsigned int m)
{
	qsort(v, m, sizeof(*v), cmp_double);
	return v[(m - 1) / 2];
}

/*
 * The typical latency now: the lower median of the p50s of this tick (0:
 * fewer than 3 backends completed a request with a quantile; of p99s too). Only a
 * backend with requests of this tick has one, so the ones without samples
 * are left out here as in the plan's typical estimate.
 */
static double typical_p50(const double *p50, unsigned int n)
{
	double v[n ? n : 1];
	unsigned int i, m = 0;

	if (!p50)
		return 0;
	for (i = 0; i < n; i++)
		if (p50[i] > 0)
			v[m++] = p50[i];
	return m >= 3 ? typical_of(v, m) : 0;
}

/*
 * The typical latency now that now_factor and tail_factor multiply: the
 * typical p50 of this tick, or of the last tick if that was higher (0: no
 * typical p50 in this tick). When all backends were slow together until a
 * moment inside this tick, each one's p50 of the tick mixes slow and fast
 * requests in its own proportion: one that happened to complete more slow
 * ones looked 4x "slower" than a typical p50 already fast, though it was as
 * slow as all of them (test_lb_rebalance.sh's shared slow start). A backend
 * slow on its own is above the last tick's typical p50 as well.
 */
static double typical_now(const struct xm_rebal_conf *c, struct xm_rebal_svc *st,
			  const double *p50, unsigned int n)
{
	double typical = typical_p50(p50, n), last = st->typical_p50;

	st->typical_p50 = typical;
	if (!(typical > 0))
		return 0;
	return c->now_last_tick ? fmax(typical, last) : typical;
}

/*
 * The p99 (of two requests: xm_rebal_tail_q) at or above which a backend is
 * slow now by its tail (0: none): tail_factor x the typical latency now
 * (base), and at least XM_REBAL_TAIL_OVER x the typical p99 of this tick (the
 * lower median of the backends' p99s, 3 or more). The second bound is for
 * services whose replicas' tails are long anyway: bad-replica's calm replicas
 * have p99s 4-6x their medians, and with many requests a tick each would
 * pass 4x the typical p50 every tick. In a tick without both typical values
 * (a small pool sits on few backends, and a backend's histogram is read once
 * 8 requests completed: urllib3's 8 connections on 3 replicas left every
 * other tick with 2 p50s) the last ones, for XM_REBAL_KEPT_TICKS ticks.
 */
static double tail_threshold(const struct xm_rebal_conf *c, struct xm_rebal_svc *st, double base,
			     const double *p99, unsigned int n)
{
	double typical_p99 = typical_p50(p99, n);

	if (base > 0 && typical_p99 > 0) {
		st->kept = base;
		st->kept_p99 = typical_p99;
		st->kept_ticks = 0;
	} else {
		if (st->kept_ticks <= XM_REBAL_KEPT_TICKS)
			st->kept_ticks++;
		if (st->kept_ticks > XM_REBAL_KEPT_TICKS || !(st->kept > 0))
			return 0;
		base = st->kept;
		typical_p99 = st->kept_p99;
	}
	return fmax(c->tail_factor * base, XM_REBAL_TAIL_OVER * typical_p99);
}

/*
 * One tick of a backend's usual p99 (tail_self): an average with
 * half-life XM_REBAL_USUAL_HL of the ticks that have one, a sample counted at
 * most XM_REBAL_USUAL_CLIP x the average, so that a spike of a few seconds
 * raises it by a few per cent (a lasting rise still moves it: 3.4 % a tick
 * of 0.5 s). The first sample sets it.
 */
static void usual_update(double *u, double x, double dt)
{
	if (!(x > 0))
		return;
	if (!(*u > 0)) {
		*u = x;
		return;
	}
	*u += (1 - exp2(-(dt > 0 ? dt : 0) / XM_REBAL_USUAL_HL)) *
	      (fmin(x, XM_REBAL_USUAL_CLIP * *u) - *u);
}

/*
 * The typical rise of the other backends' p99s of this tick over their
 * usual p99s, for backend `self` (tail_self): the lower median of their
 * ratios (one or more: urllib3's pool of 8 often sat on two replicas), at
 * least 1; with now_last_tick the higher of it and the last tick's. Without
 * the backend itself: a pool on 3 replicas has 3 ratios, one of them the
 * spike's, and the lower median of the three was 1.3-1.6 in the spike's
 * first ticks on a loaded machine (docs/benchmarks.md, eleventh session). In
 * a tick without another, the last one for XM_REBAL_KEPT_TICKS ticks; then 0
 * (the rule is off for it). A slowdown all backends share raises every
 * ratio, and so the bar.
 */
static double typical_rise(const struct xm_rebal_conf *c, const double *p99,
			   struct xm_rebal_track *tr, unsigned int n, unsigned int self)
{
	double v[n ? n : 1], rise, last = tr[self].rise;
	unsigned int i, m = 0;

	for (i = 0; i < n; i++)
		if (i != self && p99[i] > 0 && tr[i].u99 > 0)
			v[m++] = p99[i] / tr[i].u99;
	if (m >= 1) {
		rise = fmax(1, typical_of(v, m));
		tr[self].rise = rise;
		tr[self].rise_ticks = 0;
		return c->now_last_tick && last > rise ? last : rise;
	}
	if (tr[self].rise_ticks <= XM_REBAL_KEPT_TICKS)
		tr[self].rise_ticks++;
	return tr[self].rise_ticks > XM_REBAL_KEPT_TICKS ? 0 : tr[self].rise;
}

/*
 * The typical latency estimate of the backends that have one of their own
 * (measured[i]; NULL: all): a backend without samples still has the prior
 * (default_latency, 5 s), which would lift the median so that a really
 * slow backend is not slow, and look far slower itself. Of those, the ones
 * that answered requests in this tick (a p50 of it) when at least
 * XM_REBAL_MIN_MEASURED did and c->typical_of_tick: an estimate without new
 * samples stays where it was (PeakEWMA decays only with samples), so the
 * replicas just out of a spike, at the floor, kept their peaks for seconds
 * and lifted the typical estimate so that a replica whose tail spiked now
 * was never far (docs/benchmarks.md, seventh session). Returns false (no
 * backend is slow or far) below XM_REBAL_MIN_MEASURED measured backends.
 */
static bool typical_estimate(const struct xm_rebal_conf *c, const double *l_est,
			     const bool *measured, const double *p50, unsigned int n,
			     double *typical)
{
	double v[n ? n : 1], fresh[n ? n : 1];
	unsigned int i, m = 0, f = 0;

	for (i = 0; i < n; i++) {
		if (measured && !measured[i])
			continue;
		v[m++] = l_est[i];
		if (p50 && p50[i] > 0)
			fresh[f++] = l_est[i];
	}
	if (c->typical_of_tick && f >= XM_REBAL_MIN_MEASURED) {
		*typical = typical_of(fresh, f);
		return true;
	}
	if (m < XM_REBAL_MIN_MEASURED)
		return false;
	*typical = typical_of(v, m);
	return true;
}

double xm_rebal_table_share(const struct xm_rebal_track *tr, double place, double floor_share)
{
	return tr->now ? fmin(place, floor_share) : place;
}

double xm_rebal_tail_q(uint64_t requests)
{
	double q;

	if (requests < 2)
		return -1;
	q = (requests - 1.5) / requests; /* ceil(q x requests) = requests - 1 */
	return q < 0.99 ? q : 0.99;
}

unsigned int xm_rebal_plan(const struct xm_rebal_conf *c, struct xm_rebal_svc *st, double dt,
			   unsigned int retired, const uint32_t *held, const double *weight,
			   const double *l_est, struct xm_rebal_track *tr, uint32_t *quota,
			   unsigned int n)
{
	return xm_rebal_plan_now(c, st, dt, retired, held, weight, l_est, NULL, NULL, NULL, NULL,
				 NULL, tr, quota, n);
}

unsigned int xm_rebal_plan_now(const struct xm_rebal_conf *c, struct xm_rebal_svc *st, double dt,
			       unsigned int retired, const uint32_t *held, const double *weight,
			       const double *l_est, const bool *measured, const double *p50,
			       const double *oldest, const double *p99, const double *tail,
			       struct xm_rebal_track *tr, uint32_t *quota, unsigned int n)
{
	double burst = c->max_per_s > 1 ? c->max_per_s : 1, total = 0, slow = 0, fast = 0;
	double now_far_at = 0, tail_far_at = 0, typical = 0, base;
	bool have_typical = false, self_on = false, self_far[n ? n : 1];
	unsigned int i, sum = 0;

	st->tokens -= retired;
	if (st->tokens < 0)
		st->tokens = 0;
	st->tokens += c->max_per_s * (dt > 0 ? dt : 0);
	if (st->tokens > burst)
		st->tokens = burst;
	for (i = 0; i < n; i++) {
		quota[i] = 0;
		total += held[i];
	}
	base = typical_now(c, st, p50, n);
	if (c->now_factor > 0)
		now_far_at = c->now_factor * base;
	if (c->tail_factor > 0 && p99)
		tail_far_at = tail_threshold(c, st, base, p99, n);
	/*
	 * Slow now by its tail against its own usual p99 (tail_self): at least
	 * XM_REBAL_TAIL_OVER x it, times the others' typical rise over theirs,
	 * judged before this tick's values enter the usual ones.
	 */
	for (i = 0; i < n; i++) {
		double rise = c->tail_factor > 0 && p99 && c->tail_self
				      ? typical_rise(c, p99, tr, n, i) : 0;

		self_on |= rise > 0;
		self_far[i] = rise > 0 && p99[i] > 0 && tr[i].u99 > 0 &&
			      p99[i] >= rise * XM_REBAL_TAIL_OVER * tr[i].u99;
	}
	for (i = 0; i < n && p99; i++)
		usual_update(&tr[i].u99, p99[i], dt);
	if (!c->enabled || total < c->min_conns || !total) {
		for (i = 0; i < n; i++)
			tr[i] = (struct xm_rebal_track){ .u99 = tr[i].u99, .rise = tr[i].rise,
							 .rise_ticks = tr[i].rise_ticks };
		return 0;
	}
	if (l_est && typical_estimate(c, l_est, measured, p50, n, &typical)) {
		have_typical = true;
		slow = c->slow_factor * typical;
		fast = c->fast_factor * typical;
	}
	for (i = 0; i < n; i++) {
		double now = fmax(p50 ? p50[i] : 0, oldest ? oldest[i] : 0);
		/*
		 * Or its tail right now (tail_factor): a p99-only spike leaves
		 * the p50 where it was, and p99 is a quantile of at least two
		 * requests (xm_rebal_tail_q), so one slow request alone is not
		 * a spike.
		 */
		bool now_far = (now_far_at > 0 && now >= now_far_at) ||
			       (tail_far_at > 0 && p99[i] >= tail_far_at) || self_far[i];
		/*
		 * The mark (its table share at the floor) stays until a tick
		 * measures the backend calm (a p50 of its own under the
		 * threshold), for at most XM_REBAL_NOW_HOLD_TICKS: at the floor it
		 * gets almost no requests, and no sample is not a recovery.
		 * Released on the first tick without one, new-connection mode
		 * sent a spiking replica back its old share on the next tick.
		 */
		bool calm = p50 && p50[i] > 0 && (now_far_at > 0 || tail_far_at > 0 || self_on) &&
			    !now_far;
		unsigned int since = now_far ? 0 : tr[i].now_ticks + 1;
		bool mark = now_far || (tr[i].now && !calm && since <= XM_REBAL_NOW_HOLD_TICKS);
		struct xm_rebal_track marked = { .now = mark, .now_ticks = mark ? since : 0,
						 .u99 = tr[i].u99, .rise = tr[i].rise,
						 .rise_ticks = tr[i].rise_ticks };
		/* Far slower right now: its weight has not caught up, plan as if it were 0. */
		double excess = held[i] / total - (now_far ? 0 : weight[i]);
		double q, earn = c->share_per_tick * held[i];
		/* Slow or far by its estimate only if it has one of its own. */
		bool known = have_typical && (!measured || measured[i]);
		bool far = known && c->fast_factor > 0 && l_est[i] > fast;
		/*
		 * Or by its tail memory: a replica whose p99 spiked a few
		 * seconds ago has its estimate back, and the pooled connections
		 * it holds are on it when the next spike starts.
		 */
		bool slower = !l_est || !(c->slow_factor > 0) || (known && l_est[i] > slow) ||
			      (known && c->tail_slow && tail && tail[i] > slow);

		if (!slower && !far && !now_far) {
			/* about as fast as the others: its weight only wobbles */
			tr[i] = marked;
			continue;
		}

		/* The margin is in equal shares: 0.5 = half of 1/n, whatever n. */
		if (!(excess > c->margin / n)) {
			tr[i] = marked;
			continue;
		}
		tr[i].credit = fmin(tr[i].credit + earn, fmax(1, earn));
		if (tr[i].over < c->ticks)
			tr[i].over++;
		/*
		 * Far slower than the others: no wobble of the weights makes that
		 * (it is the estimates, not the weights), and a spike of a few
		 * seconds is over before the hysteresis and the credit let go. Two
		 * ticks in a row, though: a single one can be an artefact (a
		 * backend's first samples against others that have none yet).
		 */
		tr[i].far = far ? tr[i].far + (tr[i].far < XM_REBAL_FAR_TICKS) : 0;
		/*
		 * Slow right now by what is happening (its requests of this tick,
		 * or one in flight for that long), not by a tail estimate: no
		 * second tick. A calm replica's single long request does not do
		 * it: 4x the typical p50 is beyond its p99.
		 */
		tr[i].now = marked.now;
		tr[i].now_ticks = marked.now_ticks;
		tr[i].urgent = tr[i].far >= XM_REBAL_FAR_TICKS || now_far;
		if (tr[i].urgent) {
			tr[i].over = c->ticks;
			/*
			 * Slow right now (this tick's requests say so): urgent_share,
			 * by default all of its excess at once. Far slower by its
			 * estimate only: share_per_tick. With a small pool on two
			 * replicas the typical estimate is the faster one's, a calm
			 * replica 2.2x slower is "far", and all 5 of its connections
			 * went to the fastest replica at once, which held 7 of 8 when
			 * its tail spiked (docs/benchmarks.md, eleventh session).
			 */
			tr[i].credit = fmax(1, (now_far ? c->urgent_share : c->share_per_tick) *
						       held[i]);
		}
		if (tr[i].over < c->ticks)
			continue; /* hysteresis: a wobble of the weights retires nothing */
		q = floor(tr[i].credit);
		/*
		 * Whole connections, rounded: one connection held against a target
		 * of 0.1 of one (a slow backend at the floor) is 0.9 too many, and
		 * rounding down would keep it forever.
		 */
		q = fmin(q, floor(excess * total + 0.5));
		q = fmin(q, floor(st->tokens) - sum);
		if (q > 0) {
			quota[i] = (uint32_t)q;
			tr[i].credit -= q;
			sum += quota[i];
		}
	}
	return sum;
}
