// SPDX-License-Identifier: MIT
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

void xt_res_backend(struct xt_result *r, const char *label, long n)
{
	int i;

	if (!*label)
		label = "none";
	for (i = 0; i < r->nlabels; i++)
		if (!strcmp(r->label[i], label))
			break;
	if (i == r->nlabels) {
		if (i == XT_MAX_LABELS)
			i--; /* the last one collects the rest */
		else
			r->nlabels++;
		snprintf(r->label[i], sizeof(r->label[i]), "%s", label);
	}
	r->label_n[i] += n;
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
	fprintf(f, ",\"backend\":{");
	for (int i = 0; i < r->nlabels; i++) {
		fprintf(f, "%s\"", i ? "," : "");
		print_label(f, r->label[i]);
		fprintf(f, "\":%ld", r->label_n[i]);
	}
	fprintf(f, "}}\n");
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
	for (int i = 0; i < r->nlabels; i++) {
		fprintf(f, " backend.");
		print_label(f, r->label[i]);
		fprintf(f, "=%ld", r->label_n[i]);
	}
	fputc('\n', f);
	fflush(f);
}
