// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "result.h"

static const struct {
	const char *name, *help;
} keys[XK__COUNT] = {
	[XK_DURATION_S] = { "duration_s", "measured window, seconds" },
	[XK_REQUESTS] = { "requests", "requests (connections, datagrams) due in the window" },
	[XK_OK] = { "ok", "answered as asked" },
	[XK_ERRORS] = { "errors", "requests - ok" },
	[XK_ERR_CONNECT] = { "err.connect", "connect() failed" },
	[XK_ERR_RESET] = { "err.reset", "closed or reset before the whole answer, or a bad answer" },
	[XK_ERR_TIMEOUT] = { "err.timeout", "no answer within --timeout of the due time" },
	[XK_ERR_STATUS] = { "err.status", "answered with a failure (HTTP 5xx, ERR)" },
	[XK_SUCCESS] = { "success", "ok / requests" },
	[XK_RPS] = { "rps", "ok per second of the window" },
	[XK_P50_US] = { "p50_us", "latency of ok requests, median (us)" },
	[XK_P90_US] = { "p90_us", "latency, 90th percentile (us)" },
	[XK_P99_US] = { "p99_us", "latency, 99th percentile (us)" },
	[XK_P999_US] = { "p999_us", "latency, 99.9th percentile (us)" },
	[XK_MAX_US] = { "max_us", "latency, maximum (us)" },
	[XK_LAG_P50_US] = { "lag_p50_us", "open loop: send time - due time, median (us)" },
	[XK_LAG_P99_US] = { "lag_p99_us", "open loop: send time - due time, 99th percentile (us)" },
	[XK_CONNS] = { "conns", "connections opened" },
	[XK_IDLE_CLOSED] = { "idle_closed", "pooled connections the server closed while idle" },
	[XK_RETRIED] = { "retried", "requests sent once more on a new connection (--retry)" },
	[XK_NOT_VIP] = { "not_vip", "answers whose source or peer name was not the target" },
	[XK_BYTES] = { "bytes", "payload bytes checked byte for byte" },
	[XK_GBIT_S] = { "gbit_s", "stream: the server's receive rate (Gbit/s)" },
	[XK_NS_PER_CONNECT] = { "ns_per_connect", "udpconnect: one connect() (ns)" },
};

static const struct {
	const char *name, *help;
} families[XF__COUNT] = {
	[XF_ERRNO] = { "errno", "failed calls by errno name (errno.ECONNREFUSED)" },
	[XF_BACKEND] = { "backend", "answers from the backend of that label" },
	[XF_BACKEND_5XX] = { "backend_5xx", "of them, HTTP 5xx" },
	[XF_BACKEND_P50_US] = { "backend_p50_us", "their latency, median (us)" },
	[XF_BACKEND_P99_US] = { "backend_p99_us", "their latency, 99th percentile (us)" },
};

const char *xt_family_name(enum xt_family f)
{
	return f < XF__COUNT ? families[f].name : NULL;
}

const char *xt_family_help(enum xt_family f)
{
	return f < XF__COUNT ? families[f].help : NULL;
}

const char *xt_key_name(enum xt_key k)
{
	return k < XK__COUNT ? keys[k].name : NULL;
}

const char *xt_key_help(enum xt_key k)
{
	return k < XK__COUNT ? keys[k].help : NULL;
}

void xt_res_set(struct xt_result *r, enum xt_key k, double v)
{
	r->v[k] = v;
	r->set[k] = true;
}

void xt_res_latency(struct xt_result *r, struct xt_samples *us)
{
	static const double q[] = { 0.5, 0.9, 0.99, 0.999, 1 };

	if (!us->n)
		return;
	for (int i = 0; i < 5; i++)
		xt_res_set(r, XK_P50_US + i, xt_pctl(us, q[i]));
}

void xt_res_counts(struct xt_result *r, double requests, double ok)
{
	xt_res_set(r, XK_REQUESTS, requests);
	xt_res_set(r, XK_OK, ok);
	xt_res_set(r, XK_ERRORS, requests - ok);
	xt_res_set(r, XK_SUCCESS, requests ? ok / requests : 0);
}

void xt_res_add(struct xt_result *r, enum xt_family f, const char *label, double v)
{
	struct xt_labelled *l = &r->fam[f];
	int i;

	if (!*label)
		label = "none";
	for (i = 0; i < l->n; i++)
		if (!strcmp(l->label[i], label))
			break;
	if (i == l->n) {
		if (i == XT_MAX_LABELS)
			i--; /* the last one collects the rest */
		else
			l->n++;
		snprintf(l->label[i], sizeof(l->label[i]), "%s", label);
	}
	l->v[i] += v;
}

void xt_res_backend(struct xt_result *r, const char *label, long n)
{
	xt_res_add(r, XF_BACKEND, label, n);
}

void xt_res_errno(struct xt_result *r, int err, long n)
{
	const char *name = strerrorname_np(err);
	char num[16];

	if (!name) {
		snprintf(num, sizeof(num), "E%d", err);
		name = num;
	}
	xt_res_add(r, XF_ERRNO, name, n);
}

/* Integers print as integers, fractions with as many digits as they need. */
static void print_num(FILE *f, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.0f", v);
	else if (fabs(v) >= 100)
		fprintf(f, "%.1f", v);
	else
		fprintf(f, "%.4g", v);
}

/* Label bytes that would break a key=value line or a JSON string become '_'. */
static void print_label(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s <= ' ' || *s == '"' || *s == '\\' || *s == '=' ||
		      (unsigned char)*s >= 0x7f ? '_' : *s, f);
}

static void print_json(FILE *f, const struct xt_result *r)
{
	const char *open_group = NULL;
	size_t glen = 0;
	bool first = true;

	fprintf(f, "{\"mode\":\"%s\"", r->mode);
	for (int k = 0; k < XK__COUNT; k++) {
		const char *name = keys[k].name, *dot;

		if (!r->set[k])
			continue;
		dot = strchr(name, '.');
		if (open_group && (!dot || (size_t)(dot - name) != glen ||
				   strncmp(name, open_group, glen))) {
			fputc('}', f);
			open_group = NULL;
		}
		if (dot && !open_group) {
			glen = dot - name;
			open_group = name;
			fprintf(f, ",\"%.*s\":{", (int)glen, name);
			first = true;
		}
		if (dot) {
			fprintf(f, "%s\"%s\":", first ? "" : ",", dot + 1);
			first = false;
		} else {
			fprintf(f, ",\"%s\":", name);
		}
		print_num(f, r->v[k]);
	}
	if (open_group)
		fputc('}', f);
	for (int fm = 0; fm < XF__COUNT; fm++) {
		const struct xt_labelled *l = &r->fam[fm];

		/* backend: always there, so scripts can count on it */
		if (!l->n && fm != XF_BACKEND)
			continue;
		fprintf(f, ",\"%s\":{", families[fm].name);
		for (int i = 0; i < l->n; i++) {
			fprintf(f, "%s\"", i ? "," : "");
			print_label(f, l->label[i]);
			fprintf(f, "\":");
			print_num(f, l->v[i]);
		}
		fputc('}', f);
	}
	fprintf(f, "}\n");
}

void xt_res_print(FILE *f, const struct xt_result *r, bool json)
{
	if (json) {
		print_json(f, r);
		return;
	}
	fprintf(f, "mode=%s", r->mode);
	for (int k = 0; k < XK__COUNT; k++) {
		if (!r->set[k])
			continue;
		fprintf(f, " %s=", keys[k].name);
		print_num(f, r->v[k]);
	}
	for (int fm = 0; fm < XF__COUNT; fm++) {
		for (int i = 0; i < r->fam[fm].n; i++) {
			fprintf(f, " %s.", families[fm].name);
			print_label(f, r->fam[fm].label[i]);
			fputc('=', f);
			print_num(f, r->fam[fm].v[i]);
		}
	}
	fputc('\n', f);
	fflush(f);
}
