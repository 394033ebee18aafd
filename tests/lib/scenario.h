/* SPDX-License-Identifier: MIT */
/*
 * Scenario files for the weighting evaluation (scenarios/NAME.json), shared by
 * the server (xm-serve scenario) and the load generator (xm-load rr --scenario).
 *
 *   {
 *     "name": "spikes", "duration": 40, "seed": 7,
 *     "rate": [[0, 200], [20, 50]],        request rate, piecewise linear (t s, rps)
 *     "base": {"median_ms": 20, "p99_ms": 60, "success": 1.0, "workers": 0},
 *     "replicas": [{...}, ...],            per-replica overrides of base, by index
 *     "events": [                          later events override earlier ones
 *       {"replicas": [4], "from": 10, "to": 14, "p99_ms": 900},
 *       {"replicas": [2], "from": 5, "every": 7, "len": 1.5, "jitter": 0.5,
 *        "median_ms": 300},
 *       {"replicas": [7], "from": 20, "to": 25, "down": true}
 *     ]
 *   }
 *
 * Per request a replica's delay is log-normal with the given median and p99
 * (sigma = ln(p99 / median) / 2.326); it fails with probability 1 - success;
 * "workers" > 0 bounds how many requests it serves at once (the rest queue);
 * "down" resets every connection. Times are seconds since the common start.
 */
#ifndef XM_SCENARIO_H
#define XM_SCENARIO_H

#include <stdbool.h>

#define SCN_MAX_REPLICAS 64
#define SCN_MAX_EVENTS 512
#define SCN_MAX_RATE 256
#define SCN_Z99 2.3263478740408408

struct scn_params {
	double median;  /* s */
	double p99;     /* s */
	double success; /* 0..1 */
	int workers;    /* 0 = unbounded */
	bool down;
};

/* Which fields an event overrides. */
enum {
	SCN_F_MEDIAN = 1, SCN_F_P99 = 2, SCN_F_SUCCESS = 4, SCN_F_WORKERS = 8, SCN_F_DOWN = 16,
	SCN_F_SCALE = 32,
};

struct scn_event {
	unsigned long long replicas; /* bit per replica */
	double from, to;
	unsigned int fields;
	struct scn_params p;
	double scale; /* multiplies median and p99 */
};

struct scenario {
	char name[64];
	double duration;
	unsigned int seed;
	unsigned int nrate;
	double rate_t[SCN_MAX_RATE], rate_v[SCN_MAX_RATE];
	struct scn_params base[SCN_MAX_REPLICAS];
	unsigned int nevents;
	struct scn_event ev[SCN_MAX_EVENTS];
};

/* Load a scenario file; 0, or -1 with the reason on stderr. */
int scn_load(const char *path, struct scenario *sc);
/* Parameters of replica r at time t. */
struct scn_params scn_at(const struct scenario *sc, unsigned int r, double t);
/* Request rate at time t (piecewise linear, constant outside the points). */
double scn_rate(const struct scenario *sc, double t);
/* One log-normal delay for these parameters. */
double scn_delay(const struct scn_params *p, unsigned long long *rnd);
/* Deterministic per-scenario random numbers (xorshift64*) in [0, 1). */
double scn_rand01(unsigned long long *s);

#endif
