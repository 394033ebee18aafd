// SPDX-License-Identifier: MIT
/*
 * Services + EndpointSlices -> service configs. Written from the Kubernetes
 * API reference (core/v1 Service, discovery.k8s.io/v1 EndpointSlice); the
 * rules, and where they differ from kube-proxy, are in docs/kubernetes.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "k8s_translate.h"
#include "lbtable.h"

#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define LABEL_PROXY_NAME "service.kubernetes.io/service-proxy-name"
#define ANNOT_TOPOLOGY_MODE "service.kubernetes.io/topology-mode"
#define ANNOT_TOPOLOGY_HINTS "service.kubernetes.io/topology-aware-hints" /* deprecated, 1.27 */

/* One endpoint address x port, before selection. */
struct cand {
	char addr[XM_ADDR_STRLEN];
	int port;
	bool ready, serving, terminating;
	bool on_node;     /* nodeName is this node */
	bool same_zone;   /* hinted for (or, without hints, in) this node's zone */
	bool same_node;   /* hinted for (or, without hints, on) this node */
};

struct cands {
	struct cand *c;
	unsigned int n, cap;
};

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* obj.a.b as a string, or NULL. */
static const char *jstr2(json_t *o, const char *a, const char *b)
{
	return jstr(json_object_get(o, a), b);
}

static void note_add(struct xm_k8s_svc_meta *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note_add(struct xm_k8s_svc_meta *m, const char *fmt, ...)
{
	size_t len = strlen(m->note);
	va_list ap;

	if (len && len + 2 < sizeof(m->note)) {
		strcpy(m->note + len, "; ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(m->note + len, sizeof(m->note) - len, fmt, ap);
	va_end(ap);
}

/* A condition: absent means `dflt` (API reference, EndpointConditions). */
static bool cond(json_t *conds, const char *k, bool dflt)
{
	json_t *v = json_object_get(conds, k);

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static bool name_in(json_t *arr, const char *name)
{
	size_t i;
	json_t *v;

	if (!name || !*name)
		return false;
	json_array_foreach(arr, i, v)
		if (jstr(v, "name") && !strcmp(jstr(v, "name"), name))
			return true;
	return false;
}

static const char *proto_of(json_t *port)
{
	return jstr(port, "protocol") ?: "TCP";
}

/* A slice port's number, or -1 when it has none usable (the API allows none: "all ports"). */
static int port_number(json_t *p)
{
	json_t *num = json_object_get(p, "port");
	json_int_t n = json_integer_value(num);

	return json_is_integer(num) && n >= 1 && n <= 65535 ? (int)n : -1;
}

/* A slice port serves a service port when name and protocol are the same (the API's rule). */
static bool port_matches(json_t *p, const char *name, const char *proto)
{
	return !strcmp(jstr(p, "name") ?: "", name) && !strcmp(proto_of(p), proto);
}

/* The slice's port number for a service port (matched by name and protocol), or -1. */
static int slice_port(json_t *slice, const char *name, const char *proto)
{
	size_t i;
	json_t *p;

	json_array_foreach(json_object_get(slice, "ports"), i, p)
		if (port_matches(p, name, proto) && port_number(p) > 0)
			return port_number(p);
	return -1;
}

/*
 * The endpoint's address the backends use: addresses[0] (the API says
 * consumers use the first; all are fungible), if it is one of the slice's
 * family. NULL: the endpoint cannot be a backend (note_slice_leftovers()
 * says so).
 */
static const char *endpoint_addr(json_t *ep, const char *addr_type)
{
	const char *a = json_string_value(json_array_get(json_object_get(ep, "addresses"), 0));
	struct xm_addr x;
	__u8 fam;

	if (!a || xm_addr_parse(a, &fam, &x) || fam != (strcmp(addr_type, "IPv6") ? AF_INET
										 : AF_INET6))
		return NULL;
	return a;
}

static int cands_add(struct cands *cs, const struct cand *c)
{
	for (unsigned int i = 0; i < cs->n; i++) {
		struct cand *o = &cs->c[i];

		if (o->port == c->port && !strcmp(o->addr, c->addr)) {
			/* The same endpoint in two slices (a migration): counted once, at its best. */
			o->ready |= c->ready;
			o->serving |= c->serving;
			o->terminating &= c->terminating;
			o->on_node |= c->on_node;
			o->same_zone |= c->same_zone;
			o->same_node |= c->same_node;
			return 0;
		}
	}
	if (cs->n == cs->cap) {
		unsigned int cap = cs->cap ? cs->cap * 2 : 16;
		struct cand *n = realloc(cs->c, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		cs->c = n;
		cs->cap = cap;
	}
	cs->c[cs->n++] = *c;
	return 0;
}

/* Every endpoint of the service's slices with this family and port. */
static int collect(json_t *svc_slices, const char *addr_type, const char *port_name,
		   const char *proto, const struct xm_k8s_node *node, struct cands *cs)
{
	size_t i, j;
	json_t *sl, *ep;

	json_array_foreach(svc_slices, i, sl) {
		int port;

		if (!jstr(sl, "addressType") || strcmp(jstr(sl, "addressType"), addr_type))
			continue;
		port = slice_port(sl, port_name, proto);
		if (port < 0)
			continue;
		json_array_foreach(json_object_get(sl, "endpoints"), j, ep) {
			json_t *conds = json_object_get(ep, "conditions");
			json_t *hints = json_object_get(ep, "hints");
			const char *a = endpoint_addr(ep, addr_type);
			const char *ep_node = jstr(ep, "nodeName"), *ep_zone = jstr(ep, "zone");
			struct cand c = { .port = port };
			int err;

			if (!a || strlen(a) >= sizeof(c.addr))
				continue;
			strcpy(c.addr, a);
			c.ready = cond(conds, "ready", true);
			c.serving = cond(conds, "serving", c.ready);
			c.terminating = cond(conds, "terminating", false);
			c.on_node = ep_node && node->name && !strcmp(ep_node, node->name);
			if (json_object_get(hints, "forNodes"))
				c.same_node = name_in(json_object_get(hints, "forNodes"), node->name);
			else
				c.same_node = c.on_node;
			if (json_object_get(hints, "forZones"))
				c.same_zone = name_in(json_object_get(hints, "forZones"), node->zone);
			else
				c.same_zone = ep_zone && node->zone && *node->zone &&
					      !strcmp(ep_zone, node->zone);
			err = cands_add(cs, &c);
			if (err)
				return err;
		}
	}
	return 0;
}

enum locality { LOC_NONE, LOC_ZONE, LOC_NODE };

/*
 * The locality a Service asks for. Kubernetes accepts values it does not
 * know here (a newer API server's trafficDistribution, any annotation
 * value) and so does the agent: such a value asks for nothing, and the
 * Service's note says so, since the weights then differ from what was meant.
 */
static enum locality service_locality(json_t *svc, struct xm_k8s_svc_meta *m)
{
	json_t *an = json_object_get(json_object_get(svc, "metadata"), "annotations");
	const char *td = jstr2(svc, "spec", "trafficDistribution");
	/*
	 * The annotation as the EndpointSlice controller and kube-proxy read it:
	 * the deprecated topology-aware-hints, when present, over topology-mode;
	 * "Auto" or "auto" asks for zone hints, "Disabled", "disabled" or ""
	 * for none (kube-proxy logs any other value and takes it as none).
	 */
	const char *key = json_object_get(an, ANNOT_TOPOLOGY_HINTS) ? ANNOT_TOPOLOGY_HINTS
								    : ANNOT_TOPOLOGY_MODE;
	const char *mode = jstr(an, key);
	enum locality loc = LOC_NONE;

	if (td && !strcmp(td, "PreferSameNode"))
		loc = LOC_NODE;
	else if (td && (!strcmp(td, "PreferSameZone") || !strcmp(td, "PreferClose")))
		loc = LOC_ZONE;
	else if (td)
		note_add(m, "trafficDistribution \"%s\" not known: ignored (xmesh knows "
			    "PreferSameZone, PreferClose, PreferSameNode)", td);
	if (mode && (!strcmp(mode, "Auto") || !strcmp(mode, "auto")))
		loc = loc == LOC_NONE ? LOC_ZONE : loc;
	else if (mode && *mode && strcmp(mode, "Disabled") && strcmp(mode, "disabled"))
		note_add(m, "annotation %s \"%s\" not known: ignored (it takes Auto or Disabled)",
			 key, mode);
	return loc;
}

/*
 * The backends array of one service port: internalTrafficPolicy Local keeps
 * this node's endpoints; ready ones are used, or, when none is ready, those
 * serving while terminating; then locality sets the weights.
 */
static json_t *backends_json(struct cands *cs, bool local_only, enum locality loc,
			     struct xm_k8s_svc_meta *m, const char *port_desc)
{
	bool any_ready = false, any_pref_node = false, any_pref_zone = false;
	json_t *arr = json_array();
	unsigned int n = 0;

	if (!arr)
		return NULL;
	for (unsigned int i = 0; i < cs->n; i++)
		if (!local_only || cs->c[i].on_node)
			any_ready |= cs->c[i].ready;
	for (unsigned int i = 0; i < cs->n; i++) {
		struct cand *c = &cs->c[i];
		bool use = (!local_only || c->on_node) &&
			   (any_ready ? c->ready : c->serving && c->terminating);

		c->ready = use; /* from here on: selected */
		any_pref_node |= use && c->same_node;
		any_pref_zone |= use && c->same_zone;
	}
	for (unsigned int i = 0; i < cs->n; i++) {
		struct cand *c = &cs->c[i];
		double w = 1;

		if (!c->ready)
			continue;
		if (n == XM_LB_MAX_SVC_BACKENDS) {
			note_add(m, "%s: only the first %u endpoints are used", port_desc,
				 XM_LB_MAX_SVC_BACKENDS);
			break;
		}
		if (loc == LOC_NODE && any_pref_node)
			w = c->same_node ? 1 : XM_K8S_FALLBACK_WEIGHT;
		else if (loc != LOC_NONE && any_pref_zone)
			w = c->same_zone ? 1 : XM_K8S_FALLBACK_WEIGHT;
		if (json_array_append_new(arr, json_pack("{s:s,s:i,s:f}", "address", c->addr, "port",
							 c->port, "weight", w))) {
			json_decref(arr);
			return NULL;
		}
		n++;
	}
	return arr;
}

/* The service's algorithm annotations as config fields, or a reason they cannot be. */
static int annotations(json_t *svc, json_t **algo, json_t **params, char *why, size_t len)
{
	json_t *an = json_object_get(json_object_get(svc, "metadata"), "annotations");
	const char *a = jstr(an, XM_K8S_ANNOT_ALGORITHM), *p = jstr(an, XM_K8S_ANNOT_PARAMS);
	json_error_t je;

	*algo = a ? json_string(a) : NULL;
	*params = NULL;
	if (p) {
		*params = json_loads(p, JSON_REJECT_DUPLICATES, &je);
		if (!*params) {
			snprintf(why, len, "annotation %s is not JSON: %d:%d: %s",
				 XM_K8S_ANNOT_PARAMS, je.line, je.column, je.text);
			return -EINVAL;
		}
	}
	return 0;
}

/* An xmesh.io/ annotation of a Service that xmesh does not read is a misspelling to report. */
static void note_unknown_annotations(json_t *svc, struct xm_k8s_svc_meta *m)
{
	json_t *an = json_object_get(json_object_get(svc, "metadata"), "annotations"), *v;
	const char *k;

	json_object_foreach(an, k, v) {
		if (strncmp(k, "xmesh.io/", 9) || !strcmp(k, XM_K8S_ANNOT_ALGORITHM) ||
		    !strcmp(k, XM_K8S_ANNOT_PARAMS))
			continue;
		note_add(m, "annotation %s ignored: a Service takes %s and %s", k,
			 XM_K8S_ANNOT_ALGORITHM, XM_K8S_ANNOT_PARAMS);
	}
}

/*
 * What the Service's slices hold that gives no backend, as one note per kind
 * per Service, never one per endpoint (a large slice must not flood the log):
 * slice ports that serve no port of the Service (another name or protocol, or
 * no number), endpoints without an address of their slice's family, and
 * whole slices no VIP reads: FQDN ones (or another addressType), and those of
 * a family the Service has no cluster IP of (left while its ipFamilies
 * change, or made by hand).
 * families: the Service's cluster IP families (bit 0 IPv4, bit 1 IPv6).
 */
static void note_slice_leftovers(json_t *svc, json_t *svc_slices, unsigned int families,
				 struct xm_k8s_svc_meta *m)
{
	json_t *svc_ports = json_object_get(json_object_get(svc, "spec"), "ports");
	json_t *sl, *p, *sp, *ep;
	unsigned int n_ports = 0, n_eps = 0, n_unread = 0;
	char port_ex[XM_K8S_ID_LEN + 96] = "", ep_ex[XM_K8S_ID_LEN] = "";
	char unread_ex[XM_K8S_ID_LEN + 96] = "";
	size_t i, j, k;

	json_array_foreach(svc_slices, i, sl) {
		const char *type = jstr(sl, "addressType") ?: "";
		bool v4 = !strcmp(type, "IPv4"), v6 = !strcmp(type, "IPv6");
		char id[XM_K8S_ID_LEN];

		xm_k8s_object_id(sl, id, sizeof(id));
		if ((v4 && !(families & 1)) || (v6 && !(families & 2)) || (!v4 && !v6)) {
			if (!n_unread++)
				snprintf(unread_ex, sizeof(unread_ex), "%s: %s%s%s", id,
					 *type ? "addressType " : "no addressType", type,
					 v4 || v6 ? ", and the Service has no cluster IP of it"
						  : " (IPv4 and IPv6 slices are read)");
			continue;
		}
		json_array_foreach(json_object_get(sl, "ports"), j, p) {
			const char *pn = jstr(p, "name") ?: "";
			bool serves = false;
			char num[16] = "no number";

			json_array_foreach(svc_ports, k, sp)
				serves |= port_matches(p, jstr(sp, "name") ?: "", proto_of(sp));
			if (serves && port_number(p) > 0)
				continue;
			if (port_number(p) > 0)
				snprintf(num, sizeof(num), "%d", port_number(p));
			if (!n_ports++)
				snprintf(port_ex, sizeof(port_ex), "%s port %s%s%s/%s", id, pn,
					 *pn ? " " : "", num, proto_of(p));
		}
		json_array_foreach(json_object_get(sl, "endpoints"), j, ep)
			if (!endpoint_addr(ep, type) && !n_eps++)
				snprintf(ep_ex, sizeof(ep_ex), "%s", id);
	}
	if (n_ports)
		note_add(m, "EndpointSlice ports not used: %u (first: %s): a slice port needs a "
			    "number and the name and protocol of a Service port", n_ports, port_ex);
	if (n_eps)
		note_add(m, "endpoints skipped: %u without an address of their slice's "
			    "addressType (first in EndpointSlice %s)", n_eps, ep_ex);
	if (n_unread)
		note_add(m, "EndpointSlices not read: %u (first: %s)", n_unread, unread_ex);
}

/* Check a service object; a refused algorithm falls back to prev's or the default. */
static int to_conf(json_t *o, bool has_annot, const char *annot_err, xm_k8s_prev_fn prev,
		   void *prev_arg, struct xm_lb_svc_conf *out, struct xm_k8s_svc_meta *m)
{
	const struct xm_lb_svc_conf *p;
	char err[600];

	if (!annot_err && !xm_lb_svc_conf_from_json(o, out, err, sizeof(err)))
		return 0;
	if (!annot_err && !has_annot)
		return -EINVAL; /* not the annotations: the service itself (cannot happen) */
	if (!m->annotation_refused) {
		note_add(m, "%s", annot_err ?: err);
		m->annotation_refused = true;
	}
	json_object_del(o, "algorithm");
	json_object_del(o, "params");
	if (xm_lb_svc_conf_from_json(o, out, err, sizeof(err)))
		return -EINVAL;
	p = prev ? prev(prev_arg, &out->key) : NULL;
	if (p) {
		snprintf(out->algorithm, sizeof(out->algorithm), "%s", p->algorithm);
		json_decref(out->params);
		out->params = json_deep_copy(p->params);
		if (!out->params)
			return -ENOMEM;
	}
	return 0;
}

int xm_k8s_result_add(struct xm_k8s_result *r, struct xm_lb_svc_conf *s,
		      const struct xm_k8s_svc_meta *m)
{
	unsigned int n = r->conf.n_svc;

	/* capacity: the next power of two, at least 8 */
	if (n >= 8 ? !(n & (n - 1)) : !n) {
		unsigned int cap = n ? n * 2 : 8;
		struct xm_lb_svc_conf *ns = realloc(r->conf.svc, cap * sizeof(*ns));
		struct xm_k8s_svc_meta *nm;

		if (ns)
			r->conf.svc = ns;
		nm = ns ? realloc(r->meta, cap * sizeof(*nm)) : NULL;
		if (!nm) {
			xm_lb_svc_conf_free(s);
			return -ENOMEM;
		}
		r->meta = nm;
	}
	r->conf.svc[n] = *s;
	r->meta[n] = *m;
	r->conf.n_svc = n + 1;
	return 0;
}

const char *xm_k8s_slice_service(json_t *slice, char *buf, size_t len)
{
	json_t *md = json_object_get(slice, "metadata");
	const char *svc = jstr(json_object_get(md, "labels"), LABEL_SERVICE_NAME);

	if (!svc)
		return NULL;
	snprintf(buf, len, "%s/%s", jstr(md, "namespace") ?: "default", svc);
	return buf;
}

/* Drop obj's keys not in keep (exact names), or not starting with one of them (prefix). */
static void keep_only(json_t *obj, const char *const *keep, bool prefix)
{
	const char *key;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(obj, tmp, key, v) {
		const char *const *k;

		for (k = keep; *k; k++)
			if (prefix ? !strncmp(key, *k, strlen(*k)) : !strcmp(key, *k))
				break;
		if (!*k)
			json_object_del(obj, key);
	}
}

/*
 * The fields read above, and only those: the source holds every Service and
 * EndpointSlice of the cluster, and what the API adds (managedFields,
 * targetRef, status, kubectl's last applied copy) weighs more than what is
 * read. A field the translation starts reading must be added here.
 */
json_t *xm_k8s_prune(json_t *obj)
{
	static const char *const top[] = { "metadata", "spec", "addressType", "endpoints",
					   "ports", NULL };
	static const char *const md[] = { "name", "namespace", "generation", "labels",
					  "annotations", NULL };
	static const char *const labels[] = { LABEL_SERVICE_NAME, LABEL_PROXY_NAME, NULL };
	static const char *const annots[] = { "xmesh.io/", "service.kubernetes.io/", NULL };
	static const char *const spec[] = { "type", "clusterIP", "clusterIPs", "ports",
					    "internalTrafficPolicy", "trafficDistribution",
					    "sessionAffinity", NULL };
	static const char *const ep[] = { "addresses", "conditions", "nodeName", "zone",
					  "hints", NULL };
	json_t *m = json_object_get(obj, "metadata"), *e;
	size_t i;

	keep_only(obj, top, false);
	keep_only(m, md, false);
	keep_only(json_object_get(m, "labels"), labels, false);
	keep_only(json_object_get(m, "annotations"), annots, true);
	keep_only(json_object_get(obj, "spec"), spec, false);
	json_array_foreach(json_object_get(obj, "endpoints"), i, e)
		keep_only(e, ep, false);
	return obj;
}

const char *xm_k8s_object_id(json_t *obj, char *buf, size_t len)
{
	json_t *md = json_object_get(obj, "metadata");

	snprintf(buf, len, "%s/%s", jstr(md, "namespace") ?: "default", jstr(md, "name") ?: "");
	return buf;
}

/* The families of the Service's cluster IPs: bit 0 IPv4, bit 1 IPv6. */
static unsigned int cluster_ip_families(json_t *spec, json_t *ips)
{
	unsigned int fams = 0;
	struct xm_addr a;
	__u8 fam;

	for (size_t k = 0; k < (ips ? json_array_size(ips) : 1); k++) {
		const char *vip = ips ? json_string_value(json_array_get(ips, k))
				      : jstr(spec, "clusterIP");

		if (vip && !xm_addr_parse(vip, &fam, &a))
			fams |= fam == AF_INET ? 1 : 2;
	}
	return fams;
}

/* One Service: every cluster IP x port x protocol. */
int xm_k8s_translate_service(json_t *svc, json_t *svc_slices, const struct xm_k8s_node *node,
			     xm_k8s_prev_fn prev, void *prev_arg, struct xm_k8s_result *r)
{
	json_t *spec = json_object_get(svc, "spec"), *md = json_object_get(svc, "metadata");
	json_t *ips = json_object_get(spec, "clusterIPs"), *algo = NULL, *params = NULL;
	const char *type = jstr(spec, "type"), *itp = jstr(spec, "internalTrafficPolicy");
	const char *aff = jstr(spec, "sessionAffinity");
	bool local_only = itp && !strcmp(itp, "Local");
	struct xm_k8s_svc_meta m = {};
	enum locality loc = service_locality(svc, &m);
	char annot_err[XM_K8S_NOTE_LEN];
	bool annot_bad;
	size_t i, j;
	unsigned int first = r->conf.n_svc;
	json_t *port, *sl;
	int err = 0;

	if ((type && !strcmp(type, "ExternalName")) ||
	    json_object_get(json_object_get(md, "labels"), LABEL_PROXY_NAME)) {
		r->left_alone++;
		return 0;
	}
	if (!json_array_size(ips)) /* before dual stack: clusterIP alone */
		ips = NULL;
	/* headless ("None"), or no cluster IP yet */
	if (!jstr(spec, "clusterIP") || !*jstr(spec, "clusterIP") ||
	    !strcmp(jstr(spec, "clusterIP"), "None")) {
		r->left_alone++;
		return 0;
	}
	xm_k8s_object_id(svc, m.id, sizeof(m.id));
	json_array_foreach(svc_slices, i, sl) {
		json_t *g = json_object_get(json_object_get(sl, "metadata"), "generation");

		m.n_slices++;
		if (json_integer_value(g) > m.generation)
			m.generation = json_integer_value(g);
	}
	if (aff && !strcmp(aff, "ClientIP"))
		note_add(&m, "sessionAffinity ClientIP not implemented: each connection is "
			     "balanced on its own");
	annot_bad = annotations(svc, &algo, &params, annot_err, sizeof(annot_err)) != 0;
	note_unknown_annotations(svc, &m);
	note_slice_leftovers(svc, svc_slices, cluster_ip_families(spec, ips), &m);

	for (size_t k = 0; k < (ips ? json_array_size(ips) : 1) && !err; k++) {
		const char *vip = ips ? json_string_value(json_array_get(ips, k))
				      : jstr(spec, "clusterIP");
		struct xm_addr a;
		__u8 fam;

		if (!vip || !strcmp(vip, "None") || xm_addr_parse(vip, &fam, &a)) {
			note_add(&m, "cluster IP \"%s\" is not an address", vip ?: "");
			continue;
		}
		json_array_foreach(json_object_get(spec, "ports"), j, port) {
			const char *proto = proto_of(port), *pname = jstr(port, "name") ?: "";
			json_t *pn = json_object_get(port, "port"), *o, *bes;
			struct cands cs = {};
			struct xm_lb_svc_conf conf;
			char desc[96], sname[XM_LB_NAME_LEN];

			snprintf(desc, sizeof(desc), "port %s%s%lld/%s", pname, *pname ? " " : "",
				 json_integer_value(pn), proto);
			if (strcmp(proto, "TCP") && strcmp(proto, "UDP")) {
				if (k == 0)
					note_add(&m, "%s skipped: only TCP and UDP are balanced", desc);
				continue;
			}
			err = collect(svc_slices, fam == AF_INET ? "IPv4" : "IPv6", pname, proto,
				      node, &cs);
			bes = err ? NULL : backends_json(&cs, local_only, loc, &m, desc);
			free(cs.c);
			if (!bes) {
				err = -ENOMEM;
				break;
			}
			/* the config's display name; the whole id is in the meta */
			memcpy(sname, m.id, sizeof(sname) - 1);
			sname[sizeof(sname) - 1] = '\0';
			o = json_pack("{s:s,s:s,s:O,s:s,s:o}", "name", sname, "vip", vip, "port", pn,
				      "protocol", strcmp(proto, "UDP") ? "tcp" : "udp", "backends",
				      bes);
			if (!o) {
				err = -ENOMEM;
				break;
			}
			if (algo)
				json_object_set(o, "algorithm", algo);
			if (params)
				json_object_set(o, "params", params);
			if (to_conf(o, algo || params, annot_bad ? annot_err : NULL, prev, prev_arg,
				    &conf, &m)) {
				note_add(&m, "%s: not usable", desc);
			} else {
				err = xm_k8s_result_add(r, &conf, &m);
			}
			json_decref(o);
		}
	}
	/* Notes found after a port was pushed belong to every port of the Service. */
	for (unsigned int s = first; s < r->conf.n_svc; s++)
		r->meta[s] = m;
	/* None pushed: the note is all that says why the Service does nothing. */
	if (!err && r->conf.n_svc == first && m.note[0]) {
		struct xm_k8s_svc_meta *u = realloc(r->unusable, (r->n_unusable + 1) * sizeof(*u));

		if (u) {
			r->unusable = u;
			u[r->n_unusable++] = m;
		} else {
			err = -ENOMEM;
		}
	}
	json_decref(algo);
	json_decref(params);
	return err;
}

/* Iterate an object's values or an array's items alike. */
#define each_item(coll, it, idx, v)                                                          \
	for (it = json_is_object(coll) ? json_object_iter(coll) : NULL, idx = 0;            \
	     (v = json_is_object(coll) ? (it ? json_object_iter_value(it) : NULL)             \
				       : json_array_get(coll, idx)) != NULL;                  \
	     it = json_is_object(coll) ? json_object_iter_next(coll, it) : NULL, idx++)

int xm_k8s_translate(json_t *services, json_t *slices, const struct xm_k8s_node *node,
		     xm_k8s_prev_fn prev, void *prev_arg, struct xm_k8s_result *out)
{
	json_t *by_svc = json_object(), *v;
	void *it;
	size_t idx;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (!by_svc)
		return -ENOMEM;
	/* Group the slices by namespace/service-name label. */
	each_item(slices, it, idx, v) {
		char key[XM_K8S_ID_LEN];
		json_t *arr;

		if (!xm_k8s_slice_service(v, key, sizeof(key)))
			continue;
		arr = json_object_get(by_svc, key);
		if (!arr) {
			arr = json_array();
			if (json_object_set_new(by_svc, key, arr)) {
				err = -ENOMEM;
				break;
			}
		}
		if (json_array_append(arr, v)) {
			err = -ENOMEM;
			break;
		}
	}
	each_item(services, it, idx, v) {
		char key[XM_K8S_ID_LEN];

		if (err)
			break;
		err = xm_k8s_translate_service(v, json_object_get(by_svc, xm_k8s_object_id(v, key, sizeof(key))),
					       node, prev, prev_arg, out);
	}
	json_decref(by_svc);
	if (err)
		xm_k8s_result_free(out);
	return err;
}

void xm_k8s_result_free(struct xm_k8s_result *r)
{
	xm_lb_conf_free(&r->conf);
	free(r->meta);
	r->meta = NULL;
	free(r->unusable);
	r->unusable = NULL;
	r->n_unusable = 0;
}
