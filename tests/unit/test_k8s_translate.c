// SPDX-License-Identifier: MIT
/*
 * Unit tests: Kubernetes Services + EndpointSlices -> service configs
 * (user/lib/k8s_translate.c). Fixtures (tests/fixtures/k8s/NAME.json) hold
 * {"node": {...}, "services": [...], "slices": [...]} as the API returns
 * them (tests run from the top directory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "addr.h"
#include "k8s_translate.h"
#include "lbtable.h"

struct fx {
	json_t *root;
	struct xm_k8s_node node;
	struct xm_k8s_result r;
};

static void fx_load(struct fx *f, const char *name, xm_k8s_prev_fn prev, void *arg)
{
	char path[256];
	json_error_t je;
	json_t *node;

	snprintf(path, sizeof(path), "tests/fixtures/k8s/%s.json", name);
	f->root = json_load_file(path, 0, &je);
	if (!f->root)
		fail_msg("%s:%d: %s", path, je.line, je.text);
	node = json_object_get(f->root, "node");
	f->node.name = json_string_value(json_object_get(node, "name"));
	f->node.zone = json_string_value(json_object_get(node, "zone"));
	assert_int_equal(xm_k8s_translate(json_object_get(f->root, "services"),
					  json_object_get(f->root, "slices"), &f->node, prev, arg,
					  &f->r),
			 0);
}

static void fx_free(struct fx *f)
{
	xm_k8s_result_free(&f->r);
	json_decref(f->root);
}

/* The service "VIP:PORT[/udp]", failing the test if absent; its meta in *m. */
static struct xm_lb_svc_conf *svc(struct fx *f, const char *key, struct xm_k8s_svc_meta **m)
{
	struct xm_lb_svc_key k;

	assert_int_equal(xm_lb_svc_key_parse(key, &k), 0);
	for (unsigned int i = 0; i < f->r.conf.n_svc; i++) {
		if (!memcmp(&f->r.conf.svc[i].key, &k, sizeof(k))) {
			if (m)
				*m = &f->r.meta[i];
			return &f->r.conf.svc[i];
		}
	}
	fail_msg("service %s missing", key);
	return NULL;
}

static bool has_svc(struct fx *f, const char *key)
{
	struct xm_lb_svc_key k;

	assert_int_equal(xm_lb_svc_key_parse(key, &k), 0);
	return xm_lb_conf_find(&f->r.conf, &k) != NULL;
}

/* Weight of backend "ADDR:PORT" in s, or -1 when it is not a backend. */
static double be_weight(const struct xm_lb_svc_conf *s, const char *ap)
{
	struct xm_addr a;
	__u16 port;
	__u8 fam;

	assert_int_equal(xm_addr_port_parse(ap, &fam, &a, &port), 0);
	for (unsigned int i = 0; i < s->n_be; i++)
		if (s->be[i].port == port && s->be[i].family == fam &&
		    !memcmp(&s->be[i].addr, &a, sizeof(a)))
			return s->be[i].weight;
	return -1;
}

static void ports_slices_and_dedup(void **state)
{
	struct xm_k8s_svc_meta *m;
	struct xm_lb_svc_conf *s;
	struct fx f = {};

	fx_load(&f, "basic", NULL, NULL);
	/* shop/web: http TCP and dns UDP; SCTP skipped. other/web: one port. */
	assert_int_equal(f.r.conf.n_svc, 3);
	s = svc(&f, "10.96.0.10:80", &m);
	assert_string_equal(m->id, "shop/web");
	assert_string_equal(s->algorithm, "static");
	/* named targetPort resolved through the slice's port "http"; 10.0.1.1 and 10.0.1.2 once */
	assert_int_equal(s->n_be, 3);
	assert_true(be_weight(s, "10.0.1.1:8080") == 1);
	assert_true(be_weight(s, "10.0.1.2:8080") == 1); /* ready absent = ready */
	assert_true(be_weight(s, "10.0.1.4:8080") == 1);
	assert_true(be_weight(s, "10.0.1.3:8080") < 0);  /* not ready */
	assert_int_equal(m->generation, 7);
	assert_int_equal(m->n_slices, 3);
	assert_non_null(strstr(m->note, "SCTP skipped"));
	assert_false(m->annotation_refused);
	/* UDP: only the slice that has a "dns" port contributes */
	s = svc(&f, "10.96.0.10:53/udp", &m);
	assert_int_equal(s->key.proto, IPPROTO_UDP);
	assert_int_equal(s->n_be, 2);
	assert_true(be_weight(s, "10.0.1.1:5353") == 1);
	assert_true(be_weight(s, "10.0.1.2:5353") == 1);
	assert_non_null(strstr(m->note, "SCTP skipped")); /* the note is the Service's */
	assert_false(has_svc(&f, "10.96.0.10:99"));
	/* same name in another namespace: its own slices only */
	s = svc(&f, "10.96.0.11:80", &m);
	assert_string_equal(m->id, "other/web");
	assert_int_equal(s->n_be, 1);
	assert_true(be_weight(s, "10.0.2.1:81") == 1);
	assert_int_equal(f.r.left_alone, 0);
	fx_free(&f);
}

static void dual_stack(void **state)
{
	struct xm_lb_svc_conf *s;
	struct fx f = {};

	fx_load(&f, "dualstack", NULL, NULL);
	assert_int_equal(f.r.conf.n_svc, 2);
	s = svc(&f, "10.96.1.1:443", NULL);
	assert_int_equal(s->key.family, AF_INET);
	assert_int_equal(s->n_be, 2);
	assert_true(be_weight(s, "10.0.3.1:8443") == 1);
	s = svc(&f, "[fd00:96::1]:443", NULL);
	assert_int_equal(s->key.family, AF_INET6);
	assert_int_equal(s->n_be, 1);
	assert_true(be_weight(s, "[fd00:3::1]:8443") == 1);
	fx_free(&f);
}

static void headless_externalname_other_proxy_left_alone(void **state)
{
	struct fx f = {};

	fx_load(&f, "leftalone", NULL, NULL);
	assert_int_equal(f.r.conf.n_svc, 0);
	assert_int_equal(f.r.left_alone, 3);
	fx_free(&f);
}

static void terminating_used_only_when_none_ready(void **state)
{
	struct xm_lb_svc_conf *s;
	struct fx f = {};

	fx_load(&f, "terminating", NULL, NULL);
	/* none ready: serving + terminating ones keep the service up */
	s = svc(&f, "10.96.3.1:80", NULL);
	assert_int_equal(s->n_be, 1);
	assert_true(be_weight(s, "10.0.5.1:80") == 1);
	/* one ready: the terminating one gets no new connections */
	s = svc(&f, "10.96.3.2:80", NULL);
	assert_int_equal(s->n_be, 1);
	assert_true(be_weight(s, "10.0.6.2:80") == 1);
	fx_free(&f);
}

static void traffic_policy_and_locality(void **state)
{
	struct xm_lb_svc_conf *s;
	struct fx f = {};

	fx_load(&f, "locality", NULL, NULL);
	/* internalTrafficPolicy Local: this node's endpoints only */
	s = svc(&f, "10.96.4.1:80", NULL);
	assert_int_equal(s->n_be, 1);
	assert_true(be_weight(s, "10.0.8.1:80") == 1);
	/* PreferSameZone: hints decide over the endpoint's own zone; no hints: its zone */
	s = svc(&f, "10.96.4.2:80", NULL);
	assert_int_equal(s->n_be, 3);
	assert_true(be_weight(s, "10.0.9.1:80") == 1);
	assert_true(be_weight(s, "10.0.9.2:80") == XM_K8S_FALLBACK_WEIGHT);
	assert_true(be_weight(s, "10.0.9.3:80") == 1);
	/* PreferSameNode: this node's endpoint preferred, the other kept as a fallback */
	s = svc(&f, "10.96.4.3:80", NULL);
	assert_true(be_weight(s, "10.0.10.1:80") == 1);
	assert_true(be_weight(s, "10.0.10.2:80") == XM_K8S_FALLBACK_WEIGHT);
	/* no trafficDistribution: all equal whatever the zones */
	s = svc(&f, "10.96.4.4:80", NULL);
	assert_true(be_weight(s, "10.0.11.1:80") == 1);
	assert_true(be_weight(s, "10.0.11.2:80") == 1);
	/* PreferClose with nothing in this zone: all equal, nothing starves */
	s = svc(&f, "10.96.4.5:80", NULL);
	assert_true(be_weight(s, "10.0.12.1:80") == 1);
	assert_true(be_weight(s, "10.0.12.2:80") == 1);
	fx_free(&f);
}

static const struct xm_lb_svc_conf *prev_is_c3(void *arg, const struct xm_lb_svc_key *key)
{
	struct xm_lb_svc_conf *p = arg;
	struct xm_lb_svc_key k;

	xm_lb_svc_key_parse("10.96.5.2:80", &k);
	return memcmp(&k, key, sizeof(k)) ? NULL : p;
}

static void annotations_checked_as_the_config_file(void **state)
{
	struct xm_lb_svc_conf prev = { .algorithm = "c3" }, *s;
	struct xm_k8s_svc_meta *m;
	struct fx f = {};

	prev.params = json_pack("{s:f}", "penalty_s", 0.3);
	fx_load(&f, "annotations", prev_is_c3, &prev);
	s = svc(&f, "10.96.5.1:80", &m);
	assert_string_equal(s->algorithm, "l3");
	assert_true(json_real_value(json_object_get(s->params, "penalty_s")) == 0.2);
	assert_false(m->annotation_refused);
	assert_string_equal(m->note, "");
	assert_int_equal(s->n_be, 1);
	/* unknown algorithm: the previous one stays (port 80), else the default (port 81) */
	s = svc(&f, "10.96.5.2:80", &m);
	assert_string_equal(s->algorithm, "c3");
	assert_true(json_real_value(json_object_get(s->params, "penalty_s")) == 0.3);
	assert_true(m->annotation_refused);
	assert_non_null(strstr(m->note, "unknown algorithm \"fastest\""));
	s = svc(&f, "10.96.5.2:81", &m);
	assert_string_equal(s->algorithm, "static");
	assert_non_null(strstr(m->note, "unknown algorithm \"fastest\""));
	/* params not JSON, or refused by the algorithm's own checks */
	s = svc(&f, "10.96.5.3:80", &m);
	assert_string_equal(s->algorithm, "static");
	assert_non_null(strstr(m->note, "xmesh.io/params is not JSON"));
	s = svc(&f, "10.96.5.4:80", &m);
	assert_string_equal(s->algorithm, "static");
	assert_true(m->annotation_refused);
	assert_non_null(strstr(m->note, "penalty_s"));
	/* sessionAffinity: said plainly */
	s = svc(&f, "10.96.5.5:80", &m);
	assert_non_null(strstr(m->note, "sessionAffinity ClientIP not implemented"));
	assert_int_equal(s->n_be, 0);
	/* a misspelt xmesh.io/ annotation is named, not silently the default algorithm */
	s = svc(&f, "10.96.5.6:80", &m);
	assert_string_equal(s->algorithm, "static");
	assert_non_null(strstr(m->note, "annotation xmesh.io/algoritm ignored: a Service takes "
				       "xmesh.io/algorithm and xmesh.io/params"));
	assert_null(strstr(m->note, "other.io"));
	/* a Service that gives no entry at all still says why */
	assert_false(has_svc(&f, "10.96.5.7:9"));
	assert_int_equal(f.r.n_unusable, 1);
	assert_string_equal(f.r.unusable[0].id, "default/sctp-only");
	assert_non_null(strstr(f.r.unusable[0].note, "port 9/SCTP skipped: only TCP and UDP"));
	fx_free(&f);
	json_decref(prev.params);
}

/*
 * What the agent takes but cannot use is noted on its Service (the note that
 * is logged and shown by `service list`), once per kind, never silently
 * dropped: locality values it does not know, slice ports that serve no
 * Service port, endpoints without a usable address.
 */
/* Service key serves backend ap alone, at weight 1, and its note has note: the note. */
static struct xm_k8s_svc_meta *one_backend_noted(struct fx *f, const char *key, const char *ap,
						 const char *note)
{
	struct xm_k8s_svc_meta *m;
	struct xm_lb_svc_conf *s = svc(f, key, &m);

	assert_int_equal(s->n_be, 1);
	assert_true(be_weight(s, ap) == 1);
	assert_non_null(strstr(m->note, note));
	return m;
}

static void unused_inputs_noted(void **state)
{
	struct xm_k8s_svc_meta *m;
	struct xm_lb_svc_conf *s;
	struct fx f = {};

	fx_load(&f, "ignored", NULL, NULL);
	/* an unknown trafficDistribution asks for nothing, and says so */
	s = svc(&f, "10.96.6.1:80", &m);
	assert_true(be_weight(s, "10.0.14.1:80") == 1);
	assert_true(be_weight(s, "10.0.14.2:80") == 1);
	assert_non_null(strstr(m->note, "trafficDistribution \"PreferSameRack\" not known: "
				       "ignored (xmesh knows PreferSameZone, PreferClose, "
				       "PreferSameNode)"));
	/* so does an unknown topology-mode */
	s = svc(&f, "10.96.6.2:80", &m);
	assert_true(be_weight(s, "10.0.15.2:80") == 1);
	assert_non_null(strstr(m->note, "annotation service.kubernetes.io/topology-mode "
				       "\"Balanced\" not known: ignored (it takes Auto or "
				       "Disabled)"));
	/* known values: no note, and locality as asked */
	s = svc(&f, "10.96.6.3:80", &m);
	assert_string_equal(m->note, "");
	assert_true(be_weight(s, "10.0.16.1:80") == 1);
	assert_true(be_weight(s, "10.0.16.2:80") == XM_K8S_FALLBACK_WEIGHT);
	/*
	 * the deprecated topology-aware-hints, read as the EndpointSlice
	 * controller and kube-proxy read it: Auto asks for zone hints, and it
	 * wins over topology-mode when both are set
	 */
	s = svc(&f, "10.96.6.4:80", &m);
	assert_string_equal(m->note, "");
	assert_true(be_weight(s, "10.0.17.1:80") == 1);
	assert_true(be_weight(s, "10.0.17.2:80") == XM_K8S_FALLBACK_WEIGHT);
	s = svc(&f, "10.96.6.7:80", &m);
	assert_string_equal(m->note, "");
	assert_true(be_weight(s, "10.0.20.2:80") == 1);
	/* "Auto" or "auto" only (the controller's rule): "AUTO" asks for nothing, and says so */
	s = svc(&f, "10.96.6.8:80", &m);
	assert_true(be_weight(s, "10.0.21.2:80") == 1);
	assert_non_null(strstr(m->note, "topology-mode \"AUTO\" not known"));
	/*
	 * slice ports of no Service port (another name, another protocol, no
	 * number): one note for the Service, counting them, naming the first
	 */
	m = one_backend_noted(&f, "10.96.6.5:80", "10.0.18.1:8080",
			      "EndpointSlice ports not used: 3 (first: default/ports-1 port metrics "
			      "9090/TCP): a slice port needs a number and the name and protocol of a "
			      "Service port");
	assert_null(strstr(strstr(m->note, "not used") + 1, "not used"));
	s = svc(&f, "10.96.6.5:53/udp", NULL);
	assert_int_equal(s->n_be, 0);
	/*
	 * endpoints without an address (absent, empty, not an address, another
	 * family): skipped with one note; the others still serve (an address that
	 * is none made the whole port unusable before)
	 */
	m = one_backend_noted(&f, "10.96.6.6:80", "10.0.19.1:80",
			      "endpoints skipped: 4 without an address of their slice's addressType "
			      "(first in EndpointSlice default/noaddr-1)");
	assert_null(strstr(m->note, "not usable"));
	/*
	 * whole slices no VIP reads: one of a family the Service has no
	 * cluster IP of, and an FQDN one; counted in one note, the first named
	 */
	m = one_backend_noted(&f, "10.96.6.9:80", "10.0.22.1:80",
			      "EndpointSlices not read: 2 (first: default/unread-v6: addressType "
			      "IPv6, and the Service has no cluster IP of it)");
	assert_null(strstr(m->note, "endpoints skipped"));
	fx_free(&f);
}

/* Objects keyed by name (the source's store) translate as arrays do. */
static void object_store_same_as_array(void **state)
{
	json_t *root, *svcs = json_object(), *slices = json_object(), *v;
	struct xm_k8s_node node = { .name = "node-a", .zone = "z1" };
	struct xm_k8s_result r;
	json_error_t je;
	size_t i;
	char key[32];

	root = json_load_file("tests/fixtures/k8s/basic.json", 0, &je);
	assert_non_null(root);
	json_array_foreach(json_object_get(root, "services"), i, v) {
		snprintf(key, sizeof(key), "s%zu", i);
		json_object_set(svcs, key, v);
	}
	json_array_foreach(json_object_get(root, "slices"), i, v) {
		snprintf(key, sizeof(key), "e%zu", i);
		json_object_set(slices, key, v);
	}
	assert_int_equal(xm_k8s_translate(svcs, slices, &node, NULL, NULL, &r), 0);
	assert_int_equal(r.conf.n_svc, 3);
	for (i = 0; i < r.conf.n_svc; i++)
		if (r.conf.svc[i].key.port == 80 && !strcmp(r.meta[i].id, "shop/web"))
			assert_int_equal(r.conf.svc[i].n_be, 3);
	xm_k8s_result_free(&r);
	json_decref(svcs);
	json_decref(slices);
	json_decref(root);
}

/* Translate root's services and slices (pruned first or not) for node-a/z1. */
static void translate_root(json_t *root, bool pruned, struct xm_k8s_result *r)
{
	struct xm_k8s_node node = { .name = "node-a", .zone = "z1" };
	json_t *svcs = json_deep_copy(json_object_get(root, "services"));
	json_t *slices = json_deep_copy(json_object_get(root, "slices"));
	json_t *v;
	size_t i;

	if (pruned) {
		json_array_foreach(svcs, i, v)
			xm_k8s_prune(v);
		json_array_foreach(slices, i, v)
			xm_k8s_prune(v);
	}
	assert_int_equal(xm_k8s_translate(svcs, slices, &node, NULL, NULL, r), 0);
	json_decref(svcs);
	json_decref(slices);
}

/*
 * The source keeps objects pruned to the fields the translation reads: every
 * fixture, with the fields the API adds on top, translates the same pruned
 * (a field read but pruned away changes a result).
 */
static void pruned_objects_translate_the_same(void **state)
{
	static const char *const names[] = { "basic", "dualstack", "leftalone", "locality",
					     "terminating", "annotations", "ignored" };
	json_t *extra = json_loads("{\"kind\":\"X\",\"status\":{\"loadBalancer\":{}},"
				   "\"metadata\":{\"managedFields\":[{\"manager\":\"m\"}]}}",
				   0, NULL);

	assert_non_null(extra);
	for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
		struct xm_k8s_result a, b;
		char path[256];
		json_error_t je;
		json_t *root, *v, *e;
		size_t i, j;

		snprintf(path, sizeof(path), "tests/fixtures/k8s/%s.json", names[n]);
		root = json_load_file(path, 0, &je);
		assert_non_null(root);
		json_array_foreach(json_object_get(root, "slices"), i, v) {
			json_object_update_missing(v, extra);
			json_array_foreach(json_object_get(v, "endpoints"), j, e)
				json_object_set_new(e, "targetRef", json_pack("{s:s,s:s}", "kind",
									      "Pod", "name", "p"));
		}
		translate_root(root, false, &a);
		translate_root(root, true, &b);
		assert_int_equal(a.conf.n_svc, b.conf.n_svc);
		assert_int_equal(a.left_alone, b.left_alone);
		for (i = 0; i < a.conf.n_svc; i++) {
			const struct xm_lb_svc_conf *x = &a.conf.svc[i], *y = &b.conf.svc[i];

			assert_memory_equal(&x->key, &y->key, sizeof(x->key));
			assert_string_equal(x->algorithm, y->algorithm);
			assert_true(json_equal(x->params, y->params));
			assert_int_equal(x->n_be, y->n_be);
			for (j = 0; j < x->n_be; j++) {
				assert_memory_equal(&x->be[j].addr, &y->be[j].addr, sizeof(x->be[j].addr));
				assert_int_equal(x->be[j].port, y->be[j].port);
				assert_true(x->be[j].weight == y->be[j].weight);
			}
			assert_string_equal(a.meta[i].id, b.meta[i].id);
			assert_string_equal(a.meta[i].note, b.meta[i].note);
			assert_int_equal(a.meta[i].generation, b.meta[i].generation);
			assert_int_equal(a.meta[i].n_slices, b.meta[i].n_slices);
		}
		xm_k8s_result_free(&a);
		xm_k8s_result_free(&b);
		json_decref(root);
	}
	json_decref(extra);
}

/* What the API adds and no translation reads is dropped; what is read stays. */
static void prune_drops_what_is_not_read(void **state)
{
	json_t *o = json_loads(
		"{\"kind\":\"EndpointSlice\",\"addressType\":\"IPv4\",\"metadata\":{\"name\":\"s\","
		"\"namespace\":\"n\",\"uid\":\"u\",\"generation\":3,\"managedFields\":[{}],"
		"\"labels\":{\"kubernetes.io/service-name\":\"web\",\"app\":\"web\"},"
		"\"annotations\":{\"xmesh.io/algorithm\":\"l3x\",\"other\":\"x\"}},"
		"\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"nodeName\":\"a\","
		"\"targetRef\":{\"kind\":\"Pod\"}}],\"ports\":[]}",
		0, NULL);
	json_t *want = json_loads(
		"{\"addressType\":\"IPv4\",\"metadata\":{\"name\":\"s\",\"namespace\":\"n\","
		"\"generation\":3,\"labels\":{\"kubernetes.io/service-name\":\"web\"},"
		"\"annotations\":{\"xmesh.io/algorithm\":\"l3x\"}},"
		"\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"nodeName\":\"a\"}],\"ports\":[]}",
		0, NULL);

	assert_non_null(o);
	assert_non_null(want);
	assert_true(json_equal(xm_k8s_prune(o), want));
	json_decref(o);
	json_decref(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ports_slices_and_dedup),
		cmocka_unit_test(dual_stack),
		cmocka_unit_test(headless_externalname_other_proxy_left_alone),
		cmocka_unit_test(terminating_used_only_when_none_ready),
		cmocka_unit_test(traffic_policy_and_locality),
		cmocka_unit_test(annotations_checked_as_the_config_file),
		cmocka_unit_test(unused_inputs_noted),
		cmocka_unit_test(object_store_same_as_array),
		cmocka_unit_test(pruned_objects_translate_the_same),
		cmocka_unit_test(prune_drops_what_is_not_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
