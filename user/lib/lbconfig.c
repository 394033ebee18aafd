// SPDX-License-Identifier: MIT
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "jsonloc.h"
#include "lbconfig.h"
#include "weightcfg.h"
#include "lbtable.h"
#include "nearname.h"
#include "sys.h"


/* Where we are while checking, for messages: a JSON path into the file. */
struct ctx {
	const char *file, *text;
	size_t len;
	struct xm_json_step path[6];
	size_t depth;
	char *err;
	size_t errlen;
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *c, const char *fmt, ...)
{
	char msg[1024];
	int line = 0, col = 0;
	va_list ap;
	size_t d = c->depth;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!c->text) {
		snprintf(c->err, c->errlen, "%s", msg);
		return -EINVAL;
	}
	/* the deepest part of the path that exists in the text */
	while (xm_json_locate(c->text, c->len, c->path, d, &line, &col) && d > 0)
		d--;
	snprintf(c->err, c->errlen, "%s:%d:%d: %s", c->file, line, col, msg);
	return -EINVAL;
}

static void push_key(struct ctx *c, const char *k)
{
	if (c->depth < 6)
		c->path[c->depth] = (struct xm_json_step){ .key = k };
	c->depth++;
}

static void push_index(struct ctx *c, size_t i)
{
	if (c->depth < 6)
		c->path[c->depth] = (struct xm_json_step){ .index = i };
	c->depth++;
}

static void pop(struct ctx *c)
{
	c->depth--;
}

static int check_keys(struct ctx *c, json_t *o, const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		bool ok = false;

		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(*a, k);
		if (!ok) {
			char known[512] = "", hint[96];
			int r;

			/* what the place takes, so a misspelling says its fix */
			for (const char *const *a = allowed; *a; a++)
				snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
					 a == allowed ? "" : ", ", *a);
			push_key(c, k);
			r = fail(c, "unknown field \"%.64s\" (known here: %s)%s", k, known,
				 xm_nearname_hint_in(k, allowed, hint, sizeof(hint)));
			pop(c);
			return r;
		}
	}
	return 0;
}

/*
 * A sub-parser's message (it has no location) at the place of key, or of
 * key.at when the sub-parser named the member that is wrong: the value
 * itself, not the object around it.
 */
static int fail_at(struct ctx *c, const char *key, const char *at, const char *msg)
{
	int r;

	push_key(c, key);
	if (at)
		push_key(c, at);
	r = fail(c, "%s", msg);
	if (at)
		pop(c);
	pop(c);
	return r;
}

static int get_port(struct ctx *c, json_t *o, const char *k, __u16 *port)
{
	json_t *v = json_object_get(o, k);
	int r = 0;

	push_key(c, k);
	if (!v)
		r = fail(c, "\"%s\" is required", k);
	else if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
		r = fail(c, "\"%s\" must be an integer from 1 to 65535", k);
	else
		*port = (__u16)json_integer_value(v);
	pop(c);
	return r;
}

static int get_addr(struct ctx *c, json_t *o, const char *k, __u8 *family, struct xm_addr *a)
{
	json_t *v = json_object_get(o, k);
	int r = 0;

	push_key(c, k);
	if (!v)
		r = fail(c, "\"%s\" is required", k);
	else if (!json_is_string(v) || xm_addr_parse(json_string_value(v), family, a))
		r = fail(c, "\"%s\" must be an IPv4 or IPv6 address string", k);
	pop(c);
	return r;
}

static int get_str(struct ctx *c, json_t *o, const char *k, char *buf, size_t len,
		   const char *dflt)
{
	json_t *v = json_object_get(o, k);
	int r = 0;

	push_key(c, k);
	if (!v)
		snprintf(buf, len, "%s", dflt);
	else if (!json_is_string(v) || strlen(json_string_value(v)) >= len)
		r = fail(c, "\"%s\" must be a string of at most %zu characters", k, len - 1);
	else
		snprintf(buf, len, "%s", json_string_value(v));
	pop(c);
	return r;
}

static int parse_backend(struct ctx *c, json_t *o, const struct xm_lb_svc_key *svc,
			 struct xm_lb_be_conf *be)
{
	static const char *const keys[] = { "address", "port", "weight", "cluster", NULL };
	json_t *w;
	int r;

	if (!json_is_object(o))
		return fail(c, "a backend must be an object");
	r = check_keys(c, o, keys);
	if (!r)
		r = get_addr(c, o, "address", &be->family, &be->addr);
	if (!r && be->family != svc->family) {
		push_key(c, "address");
		r = fail(c, "backend address family differs from the service VIP's");
		pop(c);
	}
	if (!r)
		r = get_port(c, o, "port", &be->port);
	if (!r)
		r = get_str(c, o, "cluster", be->cluster, sizeof(be->cluster), "local");
	if (r)
		return r;
	w = json_object_get(o, "weight");
	be->weight = 1;
	if (w) {
		push_key(c, "weight");
		if (xm_lb_weight_from_json(w, &be->weight))
			r = fail(c, XM_LB_WEIGHT_RULE);
		pop(c);
	}
	return r;
}

/* The config's algorithm names, from the loop's table ("static" first unless loop_only). */
static void algo_names(char *buf, size_t len, bool loop_only)
{
	const char *sep = "";

	buf[0] = '\0';
	if (!loop_only) {
		snprintf(buf, len, "%s", XM_LB_ALGO_STATIC);
		sep = ", ";
	}
	for (unsigned int i = 0; xm_weight_algos[i]; i++) {
		if (loop_only && xm_weight_algos[i]->equal_weights)
			continue;
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", sep, xm_weight_algos[i]->name);
		sep = ", ";
	}
}

/* "protocol": absent (tcp), "tcp" or "udp"; whatever else, the error lists them. */
static int get_proto(struct ctx *c, json_t *o, __u8 *proto)
{
	static const char *const protos[] = { "tcp", "udp", NULL };
	json_t *v = json_object_get(o, "protocol");
	char hint[96] = "";
	int r;

	*proto = IPPROTO_TCP;
	if (!v)
		return 0;
	if (json_is_string(v) && (*proto = xm_lb_proto_parse(json_string_value(v))))
		return 0;
	if (json_is_string(v))
		xm_nearname_hint_in(json_string_value(v), protos, hint, sizeof(hint));
	push_key(c, "protocol");
	r = fail(c, "\"protocol\" must be \"tcp\" or \"udp\"%s", hint);
	pop(c);
	return r;
}

/* "algorithm": absent (static), or a name of algo_names(); whatever else, the error lists them. */
static int get_algo(struct ctx *c, json_t *o, char *algo, size_t len)
{
	json_t *v = json_object_get(o, "algorithm");
	const char *name = json_string_value(v);
	char names[256], hint[96] = "";
	int r;

	if (!v) {
		snprintf(algo, len, "%s", XM_LB_ALGO_STATIC);
		return 0;
	}
	if (name && strlen(name) < len && xm_lb_algo_known(name)) {
		snprintf(algo, len, "%s", name);
		return 0;
	}
	algo_names(names, sizeof(names), false);
	push_key(c, "algorithm");
	if (!name) {
		r = fail(c, "\"algorithm\" must be a string, one of: %s", names);
	} else {
		const struct xm_weight_algo *alias = xm_weight_algo_find(name);
		struct xm_nearname near;

		/* the loop's own short names ("rr") are not config names: say which one is */
		if (alias) {
			snprintf(hint, sizeof(hint), "; did you mean \"%s\"?", alias->name);
		} else {
			xm_nearname_init(&near, name);
			xm_nearname_offer(&near, XM_LB_ALGO_STATIC);
			for (unsigned int i = 0; xm_weight_algos[i]; i++)
				xm_nearname_offer(&near, xm_weight_algos[i]->name);
			xm_nearname_hint(&near, hint, sizeof(hint));
		}
		r = fail(c, "unknown algorithm \"%.64s\" (known: %s)%s", name, names, hint);
	}
	pop(c);
	return r;
}

static int parse_service(struct ctx *c, json_t *o, struct xm_lb_svc_conf *s)
{
	static const char *const keys[] = { "name", "vip", "port", "protocol", "algorithm",
					    "params", "rebalance", "backends", NULL };
	const char *at;
	json_t *bes, *v;
	size_t i;
	int r;

	memset(s, 0, sizeof(*s));
	if (!json_is_object(o))
		return fail(c, "a service must be an object");
	r = check_keys(c, o, keys);
	if (!r)
		r = get_str(c, o, "name", s->name, sizeof(s->name), "");
	if (!r)
		r = get_addr(c, o, "vip", &s->key.family, &s->key.vip);
	if (!r)
		r = get_port(c, o, "port", &s->key.port);
	if (!r)
		r = get_proto(c, o, &s->key.proto);
	if (!r)
		r = get_algo(c, o, s->algorithm, sizeof(s->algorithm));
	if (r)
		return r;
	v = json_object_get(o, "params");
	if (v && !json_is_object(v)) {
		push_key(c, "params");
		r = fail(c, "\"params\" must be an object");
		pop(c);
		return r;
	}
	if (v && xm_weight_algo_find(s->algorithm)) {
		struct xm_weight_params wp;
		char werr[512];

		/* The weighting loop's parameters (weightcfg.h), checked here for the location. */
		if (xm_weight_params_parse_at(xm_weight_algo_find(s->algorithm), v, &wp, werr,
					      sizeof(werr), &at))
			return fail_at(c, "params", at, werr);
	}
	s->params = v ? json_deep_copy(v) : json_object();
	v = json_object_get(o, "rebalance");
	{
		char rerr[512];

		if (xm_rebal_conf_parse_at(v, &s->rebalance, rerr, sizeof(rerr), &at))
			return fail_at(c, "rebalance", at, rerr);
	}
	/*
	 * Rebalancing retires connections toward the shares the weighting loop
	 * computes: with fixed weights it would never retire one, and would
	 * only keep the per-packet probes attached for nothing.
	 */
	if (s->rebalance.enabled && !xm_lb_algo_reads_probes(s->algorithm)) {
		char names[256], msg[512];

		algo_names(names, sizeof(names), true);
		snprintf(msg, sizeof(msg), "rebalancing needs an algorithm whose weights come from "
			 "the weighting loop (%s); with fixed weights there is no share to retire "
			 "toward: set \"algorithm\" or remove \"rebalance\"", names);
		return fail_at(c, "rebalance", NULL, msg);
	}
	bes = json_object_get(o, "backends");
	push_key(c, "backends");
	if (bes && !json_is_array(bes))
		r = fail(c, "\"backends\" must be an array");
	else if (bes && json_array_size(bes) > XM_LB_MAX_SVC_BACKENDS)
		r = fail(c, "at most %u backends per service", XM_LB_MAX_SVC_BACKENDS);
	if (!r && bes && json_array_size(bes)) {
		s->be = calloc(json_array_size(bes), sizeof(*s->be));
		if (!s->be)
			r = -ENOMEM;
	}
	json_array_foreach(bes, i, v) {
		if (r)
			break;
		push_index(c, i);
		r = parse_backend(c, v, &s->key, &s->be[i]);
		for (unsigned int j = 0; !r && j < i; j++)
			if (s->be[j].port == s->be[i].port &&
			    !memcmp(&s->be[j].addr, &s->be[i].addr, sizeof(s->be[i].addr)))
				r = fail(c, "backend listed twice in this service");
		pop(c);
		if (!r)
			s->n_be = i + 1;
	}
	pop(c);
	return r;
}

static const char *const root_keys[] = { "services", "weighting", "probes",
					 "probes_clientless_s", "redirect_recv_counters", NULL };

static int parse_root(struct ctx *c, json_t *root, struct xm_lb_conf *out)
{
	json_t *svcs, *v;
	size_t i;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(root))
		return fail(c, "the config must be a JSON object");
	/* The weighting loop's own section (weightcfg.h). */
	v = json_object_get(root, "weighting");
	{
		const char *at;
		char werr[512];

		if (xm_weighting_conf_parse_at(v, &out->tick_ms, werr, sizeof(werr), &at))
			return fail_at(c, "weighting", at, werr);
	}
	v = json_object_get(root, "probes");
	if (v && !(json_is_string(v) && (!strcmp(json_string_value(v), "all") ||
					 !strcmp(json_string_value(v), "weighted")))) {
		static const char *const probes[] = { "all", "weighted", NULL };
		char hint[96] = "", msg[512];

		if (json_is_string(v))
			xm_nearname_hint_in(json_string_value(v), probes, hint, sizeof(hint));
		snprintf(msg, sizeof(msg), "\"probes\" must be \"all\" (time every balanced "
			 "connection) or \"weighted\" (only while a service's weights come from "
			 "the weighting loop)%s", hint);
		return fail_at(c, "probes", NULL, msg);
	}
	out->probes = v && !strcmp(json_string_value(v), "weighted") ? XM_LB_PROBES_WEIGHTED
								     : XM_LB_PROBES_ALL;
	v = json_object_get(root, "probes_clientless_s");
	if (v && !(json_is_integer(v) && json_integer_value(v) >= 0 &&
		   json_integer_value(v) <= XM_LB_PROBES_CLIENTLESS_S_MAX))
		return fail_at(c, "probes_clientless_s", NULL,
			       "\"probes_clientless_s\" must be an integer from 0 to 86400: the "
			       "seconds after which a node that balanced no TCP connect() detaches "
			       "the per-packet probes (0: never)");
	out->probes_clientless_s = v ? (unsigned int)json_integer_value(v)
				     : XM_LB_PROBES_CLIENTLESS_S;
	v = json_object_get(root, "redirect_recv_counters");
	if (v && !json_is_boolean(v))
		return fail_at(c, "redirect_recv_counters", NULL,
			       "\"redirect_recv_counters\" must be true (count reads on redirected "
			       "sockets that differ from TCP, at a cost to every recvmsg of the node) "
			       "or false (the default)");
	out->redirect_recv_counters = v && json_is_true(v);
	/* A misspelt section ("weigthing") must not pass for its default. */
	r = check_keys(c, root, root_keys);
	if (r)
		return r;
	svcs = json_object_get(root, "services");
	if (!svcs)
		return 0;
	push_key(c, "services");
	if (!json_is_array(svcs)) {
		r = fail(c, "\"services\" must be an array");
		pop(c);
		return r;
	}
	if (json_array_size(svcs) > XM_LB_MAX_SERVICES) {
		r = fail(c, "at most %u services", XM_LB_MAX_SERVICES);
		pop(c);
		return r;
	}
	out->svc = calloc(json_array_size(svcs) + 1, sizeof(*out->svc));
	if (!out->svc) {
		pop(c);
		return -ENOMEM;
	}
	json_array_foreach(svcs, i, v) {
		push_index(c, i);
		r = parse_service(c, v, &out->svc[i]);
		if (!r && xm_lb_conf_find(out, &out->svc[i].key)) {
			char k[96];

			push_key(c, "vip");
			r = fail(c, "service %s is defined twice",
				 xm_lb_svc_key_str(&out->svc[i].key, k, sizeof(k)));
			pop(c);
		}
		pop(c);
		out->n_svc = i + 1; /* so that free() also frees a half-parsed one */
		if (r)
			break;
	}
	pop(c);
	if (r) {
		xm_lb_conf_free(out);
		return r;
	}
	return 0;
}

int xm_lb_conf_parse(const char *file, const char *text, size_t len, struct xm_lb_conf *out,
		     char *err, size_t errlen)
{
	struct ctx c = { file, text, len, {}, 0, err, errlen };
	json_error_t je;
	json_t *root;
	int r;

	memset(out, 0, sizeof(*out));
	/* Every failure path leaves a message: a caller may print err whatever r is. */
	snprintf(err, errlen, "%s: out of memory", file);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: %s", file, je.line, je.column, je.text);
		return -EINVAL;
	}
	r = parse_root(&c, root, out);
	json_decref(root);
	return r;
}

int xm_lb_conf_load(const char *file, struct xm_lb_conf *out, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	r = xm_read_regular_file(file, XM_LB_CONF_MAX_BYTES, &text, &len);
	if (r) {
		snprintf(err, errlen, "%s:0:0: %s", file,
			 r == -EINVAL ? "not a regular file (a FIFO, device or directory?): give a "
					"JSON file"
			 : r == -EFBIG ? "larger than " XM_LB_CONF_MAX_STR ": not an xmesh config"
				       : strerror(-r));
		return r;
	}
	r = xm_lb_conf_parse(file, text, len, out, err, errlen);
	free(text);
	return r;
}

int xm_lb_svc_conf_from_json(json_t *o, struct xm_lb_svc_conf *out, char *err, size_t errlen)
{
	struct ctx c = { "", NULL, 0, {}, 0, err, errlen };
	int r = parse_service(&c, o, out);

	if (r)
		xm_lb_svc_conf_free(out);
	return r;
}

void xm_lb_svc_conf_free(struct xm_lb_svc_conf *s)
{
	free(s->be);
	s->be = NULL;
	s->n_be = 0;
	json_decref(s->params);
	s->params = NULL;
}

int xm_lb_svc_conf_copy(struct xm_lb_svc_conf *dst, const struct xm_lb_svc_conf *src)
{
	*dst = *src;
	dst->be = NULL;
	if (src->n_be) {
		dst->be = calloc(src->n_be, sizeof(*dst->be));
		if (!dst->be)
			return -ENOMEM;
		memcpy(dst->be, src->be, src->n_be * sizeof(*dst->be));
	}
	dst->params = src->params ? json_deep_copy(src->params) : json_object();
	return 0;
}

void xm_lb_conf_free(struct xm_lb_conf *c)
{
	for (unsigned int i = 0; i < c->n_svc; i++)
		xm_lb_svc_conf_free(&c->svc[i]);
	free(c->svc);
	c->svc = NULL;
	c->n_svc = 0;
}

struct xm_lb_svc_conf *xm_lb_conf_find(struct xm_lb_conf *c, const struct xm_lb_svc_key *key)
{
	for (unsigned int i = 0; i < c->n_svc; i++)
		if (!memcmp(&c->svc[i].key, key, sizeof(*key)) && &c->svc[i].key != key)
			return &c->svc[i];
	return NULL;
}

unsigned int xm_lb_svc_key_hash(const struct xm_lb_svc_key *key)
{
	const unsigned char *p = (const unsigned char *)key;
	unsigned int h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < sizeof(*key); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static const struct xm_lb_svc_key *key_at(const struct xm_lb_key_index *ix, unsigned int i)
{
	return (const struct xm_lb_svc_key *)(ix->first + (size_t)i * ix->stride);
}

int xm_lb_key_index_init(struct xm_lb_key_index *ix, const struct xm_lb_svc_key *first,
			 unsigned int n, size_t stride)
{
	unsigned int size = 16;

	while (size < 2 * n)
		size *= 2;
	ix->first = (const unsigned char *)first;
	ix->stride = stride;
	ix->mask = size - 1;
	ix->slot = calloc(size, sizeof(*ix->slot));
	if (!ix->slot)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++) {
		unsigned int h = xm_lb_svc_key_hash(key_at(ix, i)) & ix->mask;

		while (ix->slot[h]) /* a key listed twice: the first is found */
			h = (h + 1) & ix->mask;
		ix->slot[h] = i + 1;
	}
	return 0;
}

long xm_lb_key_index_find(const struct xm_lb_key_index *ix, const struct xm_lb_svc_key *key)
{
	for (unsigned int h = xm_lb_svc_key_hash(key) & ix->mask; ix->slot[h]; h = (h + 1) & ix->mask)
		if (!memcmp(key_at(ix, ix->slot[h] - 1), key, sizeof(*key)))
			return ix->slot[h] - 1;
	return -1;
}

void xm_lb_key_index_free(struct xm_lb_key_index *ix)
{
	free(ix->slot);
	ix->slot = NULL;
}

int xm_lb_svc_key_parse(const char *s, struct xm_lb_svc_key *key)
{
	char buf[128], *slash;

	memset(key, 0, sizeof(*key));
	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -EINVAL;
	key->proto = IPPROTO_TCP;
	slash = strrchr(buf, '/');
	if (slash) {
		*slash = '\0';
		key->proto = xm_lb_proto_parse(slash + 1);
		if (!key->proto)
			return -EINVAL;
	}
	return xm_addr_port_parse(buf, &key->family, &key->vip, &key->port);
}

bool xm_lb_weight_valid(double w)
{
	return isfinite(w) && w >= 0 && w <= XM_LB_WEIGHT_MAX;
}

int xm_lb_weight_from_json(const json_t *v, double *w)
{
	if (!json_is_number(v) || !xm_lb_weight_valid(json_number_value(v)))
		return -EINVAL;
	*w = json_number_value(v);
	return 0;
}

bool xm_lb_algo_known(const char *name)
{
	const struct xm_weight_algo *a = xm_weight_algo_find(name);

	/* by its own name only: the loop's aliases ("rr") are not config names */
	return !strcmp(name, XM_LB_ALGO_STATIC) || (a && !strcmp(a->name, name));
}

bool xm_lb_algo_equal_weights(const char *name)
{
	const struct xm_weight_algo *a = xm_weight_algo_find(name);

	return a && a->equal_weights;
}

bool xm_lb_algo_reads_probes(const char *name)
{
	const struct xm_weight_algo *a = xm_weight_algo_find(name);

	return a && !a->equal_weights;
}

void xm_lb_conf_weights(const struct xm_lb_svc_conf *s, double *w)
{
	bool equal = xm_lb_algo_equal_weights(s->algorithm);

	for (unsigned int i = 0; i < s->n_be; i++)
		w[i] = equal ? 1.0 : s->be[i].weight;
}
