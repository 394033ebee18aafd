/* SPDX-License-Identifier: MIT */
/*
 * The one result format of xm-load. Every mode fills a struct xt_result
 * through these typed setters; the key names live only here, so a quantity
 * has one name in every mode. Printed as one line of key=value pairs, or
 * with json as one JSON object of the same keys ("a.b" keys nest: the
 * per-backend counts "backend.LABEL=N" become "backend": {"LABEL": N}).
 * Latencies are in microseconds in every key (the _us suffix says so).
 */
#ifndef XT_RESULT_H
#define XT_RESULT_H

#include <stdbool.h>
#include <stdio.h>

#include "pctl.h"

/* The keys, in print order; xt_key_name() has their names. */
enum xt_key {
	XK_DURATION_S,	/* measured window, seconds */
	XK_REQUESTS,	/* requests (or connections, datagrams) due in the window */
	XK_OK,		/* answered as asked */
	XK_ERRORS,	/* requests - ok: every failure below, and those never answered */
	XK_ERR_CONNECT,	/* connect() failed */
	XK_ERR_RESET,	/* connection closed or reset before the whole answer; bad answer */
	XK_ERR_TIMEOUT,	/* no answer within --timeout of the due time */
	XK_ERR_STATUS,	/* answered with a failure (HTTP 5xx, "ERR") */
	XK_SUCCESS,	/* ok / requests */
	XK_RPS,		/* ok per second of the window */
	XK_P50_US, XK_P90_US, XK_P99_US, XK_P999_US, XK_MAX_US, /* latency of ok requests */
	XK_LAG_P50_US, XK_LAG_P99_US, /* open loop: send time - due time */
	XK_CONNS,	/* connections opened */
	XK_IDLE_CLOSED,	/* pooled connections the server closed while idle */
	XK_RETRIED,	/* requests sent once more on a new connection (--retry) */
	XK_NOT_VIP,	/* answers whose source (or peer name) was not the target */
	XK_BYTES,	/* payload bytes checked (byte-exact modes) */
	XK_GBIT_S,	/* stream: the server's receive rate */
	XK_NS_PER_CONNECT, /* udpconnect: cost of one connect() */
	XK__COUNT
};

/* Keys of a family and a label: "backend.LABEL=N", in JSON "backend": {"LABEL": N}. */
enum xt_family {
	XF_ERRNO,		/* errno.NAME: failed calls by errno (connect, send) */
	XF_BACKEND,		/* backend.LABEL: answers from the backend of that label */
	XF_BACKEND_5XX,		/* backend_5xx.LABEL: of them HTTP 5xx */
	XF_BACKEND_P50_US,	/* backend_p50_us.LABEL: their latency, median (us) */
	XF_BACKEND_P99_US,	/* backend_p99_us.LABEL: 99th percentile (us) */
	XF__COUNT
};

#define XT_MAX_LABELS 64

struct xt_labelled {
	int n;
	char label[XT_MAX_LABELS][64];
	double v[XT_MAX_LABELS];
};

struct xt_result {
	const char *mode;
	double v[XK__COUNT];
	bool set[XK__COUNT];
	struct xt_labelled fam[XF__COUNT];
};

const char *xt_key_name(enum xt_key k);
const char *xt_key_help(enum xt_key k);
void xt_res_set(struct xt_result *r, enum xt_key k, double v);
/* p50/p90/p99/p999/max (us) of samples in us; none when there is no sample. */
void xt_res_latency(struct xt_result *r, struct xt_samples *us);
/* requests, ok, errors and success (ok / requests) at once. */
void xt_res_counts(struct xt_result *r, double requests, double ok);
const char *xt_family_name(enum xt_family f);
const char *xt_family_help(enum xt_family f);
/* Add v to FAMILY.LABEL; an empty label is "none". */
void xt_res_add(struct xt_result *r, enum xt_family f, const char *label, double v);
/* Per-backend count "backend.LABEL". */
void xt_res_backend(struct xt_result *r, const char *label, long n);
/* Failed calls by errno: "errno.ECONNREFUSED". */
void xt_res_errno(struct xt_result *r, int err, long n);
void xt_res_print(FILE *f, const struct xt_result *r, bool json);

#endif
