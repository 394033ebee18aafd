// SPDX-License-Identifier: MIT
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

static double scn_num(json_t *o, const char *k, double dflt)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

/* Fields present in o override p; returns the SCN_F_* mask of what was there. */
static unsigned int scn_params_parse(json_t *o, struct scn_params *p, double *scale)
{
	unsigned int f = 0;
	json_t *v;

	if (json_is_number(json_object_get(o, "median_ms"))) {
		p->median = scn_num(o, "median_ms", 0) / 1000;
		f |= SCN_F_MEDIAN;
	}
	if (json_is_number(json_object_get(o, "p99_ms"))) {
		p->p99 = scn_num(o, "p99_ms", 0) / 1000;
		f |= SCN_F_P99;
	}
	if (json_is_number(json_object_get(o, "success"))) {
		p->success = scn_num(o, "success", 1);
		f |= SCN_F_SUCCESS;
	}
	if (json_is_number(json_object_get(o, "workers"))) {
		p->workers = (int)scn_num(o, "workers", 0);
		f |= SCN_F_WORKERS;
	}
	v = json_object_get(o, "down");
	if (json_is_boolean(v)) {
		p->down = json_is_true(v);
		f |= SCN_F_DOWN;
	}
	if (scale && json_is_number(json_object_get(o, "scale"))) {
		*scale = scn_num(o, "scale", 1);
		f |= SCN_F_SCALE;
	}
	return f;
}

double scn_rand01(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((*s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

static int scn_add_event(struct scenario *sc, const struct scn_event *e)
{
	if (sc->nevents >= SCN_MAX_EVENTS)
		return -1;
	sc->ev[sc->nevents++] = *e;
	return 0;
}

int scn_load(const char *path, struct scenario *sc)
{
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err), *v, *e;
	unsigned long long rnd;
	struct scn_params base = { .median = 0.02, .p99 = 0.06, .success = 1 };
	size_t i, j;

	if (!root) {
		fprintf(stderr, "%s:%d:%d: %s\n", path, err.line, err.column, err.text);
		return -1;
	}
	memset(sc, 0, sizeof(*sc));
	v = json_object_get(root, "name");
	snprintf(sc->name, sizeof(sc->name), "%s", json_is_string(v) ? json_string_value(v) : "");
	sc->duration = scn_num(root, "duration", 30);
	sc->seed = (unsigned int)scn_num(root, "seed", 1);
	rnd = 0x9e3779b97f4a7c15ULL ^ sc->seed;

	v = json_object_get(root, "rate");
	json_array_foreach(v, i, e) {
		if (sc->nrate >= SCN_MAX_RATE || json_array_size(e) != 2)
			continue;
		sc->rate_t[sc->nrate] = json_number_value(json_array_get(e, 0));
		sc->rate_v[sc->nrate] = json_number_value(json_array_get(e, 1));
		sc->nrate++;
	}
	if (!sc->nrate) {
		sc->rate_t[0] = 0;
		sc->rate_v[0] = 100;
		sc->nrate = 1;
	}
	scn_params_parse(json_object_get(root, "base"), &base, NULL);
	for (i = 0; i < SCN_MAX_REPLICAS; i++)
		sc->base[i] = base;
	v = json_object_get(root, "replicas");
	json_array_foreach(v, i, e)
		if (i < SCN_MAX_REPLICAS)
			scn_params_parse(e, &sc->base[i], NULL);

	v = json_object_get(root, "events");
	json_array_foreach(v, i, e) {
		struct scn_event ev = { .to = 1e12, .scale = 1 };
		json_t *r = json_object_get(e, "replicas"), *x;
		double every = scn_num(e, "every", 0), len = scn_num(e, "len", 1);
		double jitter = scn_num(e, "jitter", 0), t;

		json_array_foreach(r, j, x)
			if (json_integer_value(x) >= 0 && json_integer_value(x) < SCN_MAX_REPLICAS)
				ev.replicas |= 1ULL << json_integer_value(x);
		if (json_is_integer(r))
			ev.replicas |= 1ULL << json_integer_value(r);
		if (json_is_string(r) && !strcmp(json_string_value(r), "*"))
			ev.replicas = ~0ULL;
		ev.from = scn_num(e, "from", 0);
		ev.to = scn_num(e, "to", 1e12);
		ev.p = base;
		ev.fields = scn_params_parse(e, &ev.p, &ev.scale);
		if (every <= 0) {
			scn_add_event(sc, &ev);
			continue;
		}
		/* A repeating window: len seconds every `every`, start shifted by jitter. */
		for (t = ev.from; t < ev.to && t < sc->duration; t += every) {
			struct scn_event w = ev;

			w.from = t + jitter * every * scn_rand01(&rnd);
			w.to = w.from + len;
			if (w.to > ev.to)
				w.to = ev.to;
			if (scn_add_event(sc, &w))
				break;
		}
	}
	json_decref(root);
	return 0;
}

struct scn_params scn_at(const struct scenario *sc, unsigned int r, double t)
{
	struct scn_params p = sc->base[r < SCN_MAX_REPLICAS ? r : 0];
	unsigned int i;

	for (i = 0; i < sc->nevents; i++) {
		const struct scn_event *e = &sc->ev[i];

		if (!(e->replicas & (1ULL << r)) || t < e->from || t >= e->to)
			continue;
		if (e->fields & SCN_F_MEDIAN)
			p.median = e->p.median;
		if (e->fields & SCN_F_P99)
			p.p99 = e->p.p99;
		if (e->fields & SCN_F_SUCCESS)
			p.success = e->p.success;
		if (e->fields & SCN_F_WORKERS)
			p.workers = e->p.workers;
		if (e->fields & SCN_F_DOWN)
			p.down = e->p.down;
		if (e->fields & SCN_F_SCALE) {
			p.median *= e->scale;
			p.p99 *= e->scale;
		}
	}
	if (p.p99 < p.median)
		p.p99 = p.median;
	return p;
}

double scn_rate(const struct scenario *sc, double t)
{
	unsigned int i;

	if (t <= sc->rate_t[0])
		return sc->rate_v[0];
	for (i = 1; i < sc->nrate; i++) {
		if (t < sc->rate_t[i]) {
			double f = (t - sc->rate_t[i - 1]) / (sc->rate_t[i] - sc->rate_t[i - 1]);

			return sc->rate_v[i - 1] + f * (sc->rate_v[i] - sc->rate_v[i - 1]);
		}
	}
	return sc->rate_v[sc->nrate - 1];
}

double scn_delay(const struct scn_params *p, unsigned long long *rnd)
{
	double u1 = scn_rand01(rnd), u2 = scn_rand01(rnd), z, sigma;

	if (p->median <= 0)
		return 0;
	if (u1 < 1e-12)
		u1 = 1e-12;
	z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
	sigma = p->p99 > p->median ? log(p->p99 / p->median) / SCN_Z99 : 0;
	return p->median * exp(sigma * z);
}
