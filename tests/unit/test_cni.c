// SPDX-License-Identifier: MIT
/*
 * Unit tests: xmesh-cni's stdin parser (user/cni/conf.c, compiled in here:
 * it is not part of libxmesh) and the per-attachment records
 * (user/lib/cni_state.c, cni_names.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "../../user/cni/conf.c"

static int parse(const char *s, struct xm_cni_conf *c, struct xm_cni_err *e)
{
	memset(e, 0, sizeof(*e));
	return xm_cni_conf_parse(s, strlen(s), c, e);
}

/* parse() of a minimal config plus the members fmt formats ("\"k\":v,..."). */
static int parse_with(struct xm_cni_conf *c, struct xm_cni_err *e, const char *fmt, ...)
{
	char members[400], in[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(members, sizeof(members), fmt, ap);
	va_end(ap);
	snprintf(in, sizeof(in), "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"xmesh-cni\",%s}",
		 members);
	return parse(in, c, e);
}

static void parses_chained_add(void **state)
{
	const char *in =
		"{\"cniVersion\":\"1.0.0\",\"name\":\"net\",\"type\":\"xmesh-cni\","
		"\"pinRoot\":\"/sys/fs/bpf/x\",\"runtimeConfig\":{\"portMappings\":[]},"
		"\"prevResult\":{\"cniVersion\":\"1.0.0\",\"interfaces\":["
		"{\"name\":\"cni0\",\"mac\":\"aa:bb:cc:dd:ee:01\"},"
		"{\"name\":\"eth0\",\"mac\":\"aa:bb:cc:dd:ee:02\",\"sandbox\":\"/run/netns/p\"}],"
		"\"ips\":[{\"interface\":1,\"address\":\"10.0.0.5/24\",\"gateway\":\"10.0.0.1\"},"
		"{\"address\":\"::ffff:10.0.0.6/24\"},{\"interface\":1,\"address\":\"fd00::5/64\"}]}}";
	struct xm_cni_conf c;
	struct xm_cni_err e;

	assert_int_equal(parse(in, &c, &e), 0);
	assert_int_equal(c.version, XM_CNI_V(1, 0, 0));
	assert_string_equal(c.name, "net");
	assert_string_equal(c.pin_root, "/sys/fs/bpf/x");
	assert_string_equal(c.state_dir, XM_CNI_STATE_DIR_DEFAULT); /* default kept */
	assert_int_equal(c.n_ifaces, 2);
	assert_string_equal(c.ifaces[1].sandbox, "/run/netns/p");
	assert_true(c.ifaces[1].has_mac);
	assert_int_equal(c.ifaces[1].mac[5], 2);
	assert_int_equal(c.n_ips, 3);
	assert_int_equal(c.ips[0].iface, 1);
	assert_int_equal(c.ips[0].ip.family, AF_INET);
	assert_int_equal(c.ips[0].ip.prefix_len, 24);
	assert_int_equal(c.ips[0].ip.addr.ip[0], htonl(0x0a000005));
	assert_int_equal(c.ips[1].iface, -1);
	/* v4-mapped is normalised like everywhere else in xmesh */
	assert_int_equal(c.ips[1].ip.family, AF_INET);
	assert_int_equal(c.ips[2].ip.family, AF_INET6);
	assert_int_equal(c.ips[2].ip.prefix_len, 64);
	xm_cni_conf_free(&c);
}

struct bad_case {
	const char *in;
	int code;
};

static void rejects_with_spec_codes(void **state)
{
	static const struct bad_case cases[] = {
		{ "", XM_CNI_E_DECODE },
		{ "{\"cniVersion\":", XM_CNI_E_DECODE },
		{ "[1,2]", XM_CNI_E_DECODE },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\"} trailing", XM_CNI_E_DECODE },
		{ "{\"cniVersion\":\"1.0.0\",\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\"}",
		  XM_CNI_E_DECODE },
		{ "{\"name\":\"n\",\"type\":\"t\"}", XM_CNI_E_CONFIG },
		{ "{\"cniVersion\":\"9.9.9\",\"name\":\"n\",\"type\":\"t\"}", XM_CNI_E_VERSION },
		{ "{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"type\":\"t\"}", XM_CNI_E_VERSION },
		{ "{\"cniVersion\":\"1.0\",\"name\":\"n\",\"type\":\"t\"}", XM_CNI_E_VERSION },
		{ "{\"cniVersion\":1,\"name\":\"n\",\"type\":\"t\"}", XM_CNI_E_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"type\":\"t\"}", XM_CNI_E_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"../x\",\"type\":\"t\"}", XM_CNI_E_CONFIG },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\",\"pinRoot\":\"rel\"}",
		  XM_CNI_E_CONFIG },
		{ "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\","
		  "\"cni.dev/valid-attachments\":[{\"ifname\":\"eth0\"}]}", XM_CNI_E_CONFIG },
	};
	struct xm_cni_conf c;
	struct xm_cni_err e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse(cases[i].in, &c, &e) != -1 || e.code != cases[i].code) {
			fail_msg("case %zu (%s): code %d, want %d (%s)", i, cases[i].in, e.code,
				 cases[i].code, e.msg);
		}
		assert_true(e.msg[0] != '\0');
		assert_null(c.root); /* freed on failure */
	}
}

/*
 * Our own fields: a misspelt one ("pin_root", "LogLevel") is refused with
 * code 2 and the right name instead of being ignored as not ours (the plugin
 * then ran on the default pin root); an unknown logLevel is refused instead
 * of dropped. Both were taken before, so the parse defers them (own_err:
 * ADD and CHECK refuse, DEL goes on with the defaults); a bad value of a
 * field is refused at once as before. Fields of others stay ignored.
 */
static void refuses_misspelt_own_fields(void **state)
{
	static const struct {
		const char *field;
		int code;
		bool deferred;
		const char *says;
	} cases[] = {
		{ "\"pinroot\":\"/x\"", XM_CNI_E_FIELD, true, "did you mean \"pinRoot\"" },
		{ "\"pin_root\":\"/x\"", XM_CNI_E_FIELD, true, "did you mean \"pinRoot\"" },
		{ "\"state-dir\":\"/x\"", XM_CNI_E_FIELD, true, "did you mean \"stateDir\"" },
		{ "\"LogLevel\":\"debug\"", XM_CNI_E_FIELD, true, "did you mean \"logLevel\"" },
		{ "\"logLevel\":\"verbose\"", XM_CNI_E_CONFIG, true, "logLevel 'verbose'" },
		{ "\"logLevel\":3", XM_CNI_E_CONFIG, false, "must be a string" },
		{ "\"logFile\":\"x.log\"", XM_CNI_E_CONFIG, false, "absolute" },
		{ "\"logLevel\":\"DEBUG\"", 0, false, NULL },
		{ "\"pinRootDir\":\"/x\"", 0, false, NULL },
		{ "\"ipMasq\":true", 0, false, NULL },
	};
	struct xm_cni_conf c;
	struct xm_cni_err e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct xm_cni_err *got = &e;

		if (!cases[i].code || cases[i].deferred) {
			if (parse_with(&c, &e, "%s", cases[i].field))
				fail_msg("%s refused: %s", cases[i].field, e.msg);
			/* a misspelt pinRoot is not taken: the default, as before */
			assert_string_equal(c.pin_root, XM_PIN_ROOT_DEFAULT);
			if (!cases[i].code) {
				assert_int_equal(c.own_err.code, 0);
				xm_cni_conf_free(&c);
				continue;
			}
			e = c.own_err;
			xm_cni_conf_free(&c);
		} else if (parse_with(&c, &e, "%s", cases[i].field) != -1) {
			fail_msg("%s: parsed, want code %d at once", cases[i].field, cases[i].code);
		}
		if (got->code != cases[i].code)
			fail_msg("%s: code %d, want %d (%s)", cases[i].field, got->code, cases[i].code,
				 got->msg);
		if (!strstr(got->msg, cases[i].says))
			fail_msg("%s: '%s' does not say '%s'", cases[i].field, got->msg,
				 cases[i].says);
	}
}

/*
 * A prevResult that does not parse is not a config error for DEL (teardown
 * must never stick): the config parses, prev_err holds code 7 and a message
 * that says what is wrong, and no address of it is kept.
 */
static void bad_prev_result_is_deferred(void **state)
{
	static const struct {
		const char *prev, *says;
	} cases[] = {
		{ "[]", "prevResult must be an object" },
		{ "{\"ips\":[{\"address\":\"10.0.0.1\"}]}", "has no prefix length" },
		{ "{\"ips\":[{\"address\":\"10.0.0.1/33\"}]}", "is not an ADDRESS/PREFIX" },
		{ "{\"ips\":[{\"address\":\"10.0.0.2/24\"},{\"address\":\"10.0.0.1/24\",\"interface\":0}]}",
		  "not an index" },
		{ "{\"interfaces\":[{\"name\":\"e\",\"mac\":\"zz\"}]}", "6-byte Ethernet MAC" },
		{ "{\"interfaces\":[{\"name\":\"ib0\",\"mac\":"
		  "\"80:00:00:48:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0c:e5:f1\"}]}",
		  "6-byte Ethernet MAC" },
	};
	struct xm_cni_conf c;
	struct xm_cni_err e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse_with(&c, &e, "\"prevResult\":%s", cases[i].prev))
			fail_msg("case %zu: the config must parse (DEL needs it): %s", i, e.msg);
		if (c.prev_err.code != XM_CNI_E_CONFIG || !strstr(c.prev_err.msg, cases[i].says))
			fail_msg("case %zu: code %d '%s', want %d '...%s...'", i, c.prev_err.code,
				 c.prev_err.msg, XM_CNI_E_CONFIG, cases[i].says);
		assert_int_equal(c.n_ips, 0);
		xm_cni_conf_free(&c);
	}
}

static void reads_gc_and_old_versions(void **state)
{
	const char *gc = "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"t\","
			 "\"cni.dev/attachments\":[{\"containerID\":\"a\",\"ifname\":\"eth0\"},"
			 "{\"containerID\":\"b\"}]}";
	const char *v03 = "{\"cniVersion\":\"0.3.0\",\"name\":\"antrea\",\"type\":\"xmesh-cni\","
			  "\"prevResult\":{\"ips\":[{\"version\":\"4\",\"address\":\"10.1.0.2/24\"}]}}";
	struct xm_cni_conf c;
	struct xm_cni_err e;

	assert_int_equal(parse(gc, &c, &e), 0);
	assert_true(c.has_valid);
	assert_int_equal(c.n_valid, 2);
	assert_string_equal(c.valid[1].container_id, "b");
	assert_string_equal(c.valid[1].ifname, "");
	xm_cni_conf_free(&c);
	assert_int_equal(parse(v03, &c, &e), 0);
	assert_int_equal(c.version, XM_CNI_V(0, 3, 0));
	assert_int_equal(c.n_ips, 1);
	xm_cni_conf_free(&c);
}

/* A huge result is cut, never refused: refusing would fail the pod. */
static void keeps_what_fits_of_a_huge_result(void **state)
{
	size_t cap = 64 * 1024, n;
	char *buf = malloc(cap);
	struct xm_cni_conf c;
	struct xm_cni_err e;

	n = snprintf(buf, cap, "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\","
		     "\"prevResult\":{\"interfaces\":[");
	for (int i = 0; i < 70; i++)
		n += snprintf(buf + n, cap - n, "%s{\"name\":\"e%d\",\"sandbox\":\"/x\"}",
			      i ? "," : "", i);
	n += snprintf(buf + n, cap - n, "],\"ips\":[");
	for (int i = 0; i < 70; i++)
		n += snprintf(buf + n, cap - n, "%s{\"interface\":%d,\"address\":\"10.0.%d.1/24\"}",
			      i ? "," : "", 69 - i, i);
	snprintf(buf + n, cap - n, "]}}");
	assert_int_equal(parse(buf, &c, &e), 0);
	assert_int_equal(c.n_ifaces, XM_CNI_MAX_IFACES);
	assert_int_equal(c.dropped_ifaces, 70 - XM_CNI_MAX_IFACES);
	assert_int_equal(c.n_ips, XM_CNI_MAX_RESULT_IPS);
	assert_int_equal(c.dropped_ips, 70 - XM_CNI_MAX_RESULT_IPS);
	assert_int_equal(c.ips[0].iface, -2); /* interface 69 was not kept */
	assert_int_equal(c.ips[10].iface, 59);
	xm_cni_conf_free(&c);
	free(buf);
}

static void names_follow_the_spec(void **state)
{
	assert_true(xm_cni_valid_container_id("3f6940ab5ab43bc5"));
	assert_true(xm_cni_valid_container_id("a.b_c-d"));
	assert_false(xm_cni_valid_container_id(""));
	assert_false(xm_cni_valid_container_id("-a"));
	assert_false(xm_cni_valid_container_id("a/b"));
	assert_false(xm_cni_valid_container_id("a:b"));
	assert_true(xm_cni_valid_ifname("eth0"));
	assert_true(xm_cni_valid_ifname("net@1"));
	assert_false(xm_cni_valid_ifname("."));
	assert_false(xm_cni_valid_ifname(".."));
	assert_false(xm_cni_valid_ifname("a:b"));
	assert_false(xm_cni_valid_ifname("a b"));
	assert_false(xm_cni_valid_ifname("0123456789abcdef")); /* 16 > 15 */
	assert_false(xm_cni_valid_network_name("a/../b"));
}

/* A pod's annotations, as containerd passes them in runtimeConfig. */
static int parse_annotations(const char *annotations, struct xm_cni_conf *c, struct xm_cni_err *e)
{
	char in[1024];

	snprintf(in, sizeof(in), "{\"cniVersion\":\"1.0.0\",\"name\":\"net\",\"type\":\"xmesh-cni\","
		 "\"runtimeConfig\":{\"io.kubernetes.cri.pod-annotations\":%s}}", annotations);
	return parse(in, c, e);
}

static void reads_redirect_optout_annotations(void **state)
{
	struct xm_cni_conf c;
	struct xm_cni_err e;

	assert_int_equal(parse_annotations("{\"xmesh.io/redirect\":\"off\",\"other\":\"x\"}", &c, &e),
			 0);
	assert_int_equal(c.optout_err.code, 0);
	assert_true(c.optout.redirect_off);
	assert_int_equal(c.optout.n_ports, 0);
	xm_cni_conf_free(&c);

	assert_int_equal(parse_annotations("{\"xmesh.io/redirect\":\"on\","
					   "\"xmesh.io/redirect-skip-ports\":\" 5432, 6379,5432\"}",
					   &c, &e), 0);
	assert_int_equal(c.optout_err.code, 0);
	assert_false(c.optout.redirect_off);
	assert_int_equal(c.optout.n_ports, 2); /* the repeated port once */
	assert_int_equal(c.optout.ports[0], 5432);
	assert_int_equal(c.optout.ports[1], 6379);
	xm_cni_conf_free(&c);

	/* No annotations, or none of ours: nothing opted out. */
	assert_int_equal(parse_annotations("{\"app\":\"db\"}", &c, &e), 0);
	assert_false(c.optout.redirect_off || c.optout.n_ports || c.optout_err.code);
	xm_cni_conf_free(&c);
}

static void refuses_bad_optout_annotations(void **state)
{
	static const char *const bad[] = {
		"{\"xmesh.io/redirect\":\"false\"}",
		"{\"xmesh.io/redirect\":false}",
		"{\"xmesh.io/redirect-skip-ports\":\"5432;6379\"}",
		"{\"xmesh.io/redirect-skip-ports\":\"0\"}",
		"{\"xmesh.io/redirect-skip-ports\":\"65536\"}",
		"{\"xmesh.io/redirect-skip-ports\":\"54x2\"}",
		"{\"xmesh.io/redirect-skip-ports\":\"5432,\"}",
		"{\"xmesh.io/redirect-skip-ports\":\"-1\"}",
		"{\"xmesh.io/redirect-skip-ports\":5432}",
		"[\"xmesh.io/redirect\"]",
	};
	char many[400] = "{\"xmesh.io/redirect-skip-ports\":\"1";
	struct xm_cni_conf c;
	struct xm_cni_err e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* The configuration itself parses (DEL must go on); ADD refuses with this. */
		assert_int_equal(parse_annotations(bad[i], &c, &e), 0);
		assert_int_equal(c.optout_err.code, XM_CNI_E_CONFIG);
		assert_true(strstr(c.optout_err.msg, "xmesh.io/redirect") ||
			    strstr(c.optout_err.msg, "annotations"));
		xm_cni_conf_free(&c);
	}
	for (int p = 2; p <= XM_CNI_MAX_SKIP_PORTS + 1; p++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), ",%d", p);
	strcat(many, "\"}");
	assert_int_equal(parse_annotations(many, &c, &e), 0);
	assert_non_null(strstr(c.optout_err.msg, "more than"));
	xm_cni_conf_free(&c);
}

static void record_round_trip(void **state)
{
	char dir[] = "/tmp/xm-unit-cni.XXXXXX", path[PATH_MAX];
	struct xm_cni_state s = {}, r;

	assert_non_null(mkdtemp(dir));
	strcpy(s.network, "net");
	strcpy(s.container_id, "c1");
	strcpy(s.ifname, "eth0");
	strcpy(s.netns, "/run/netns/p1");
	strcpy(s.pin_root, "/sys/fs/bpf/xmesh");
	strcpy(s.host_ifname, "veth1");
	s.netns_cookie = 4097;
	s.host_netns_cookie = 1;
	s.pod_ifindex = 2;
	s.host_ifindex = 9;
	memcpy(s.pod_mac, "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(s.host_mac, "\x02\x00\x00\x00\x00\x02", 6);
	s.optout.n_ports = 2;
	s.optout.ports[0] = 5432;
	s.optout.ports[1] = 6379;
	s.n_ips = 2;
	xm_addr_parse("10.0.0.5", &s.ips[0].family, &s.ips[0].addr);
	s.ips[0].prefix_len = 24;
	xm_addr_parse("fd00::5", &s.ips[1].family, &s.ips[1].addr);
	s.ips[1].prefix_len = 64;

	assert_int_equal(xm_cni_state_write(dir, &s), 0);
	assert_int_equal(xm_cni_state_load(dir, "net", "c1", "eth0", &r), 0);
	assert_memory_equal(&r, &s, sizeof(s));
	/* the key is (network, container id, ifname): names nothing outside dir */
	assert_int_equal(xm_cni_state_path(path, sizeof(path), dir, "net", "c1", "eth0"), 0);
	assert_non_null(strstr(path, "/net/c1:eth0.json"));
	assert_int_equal(xm_cni_state_path(path, sizeof(path), dir, "net", "../c1", "eth0"), -EINVAL);
	assert_int_equal(xm_cni_state_remove(dir, "net", "c1", "eth0"), 0);
	assert_int_equal(xm_cni_state_remove(dir, "net", "c1", "eth0"), 0); /* gone: fine */
	assert_int_equal(xm_cni_state_load(dir, "net", "c1", "eth0", &r), -ENOENT);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

static void owner_keeps_63_characters(void **state)
{
	const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct xm_cni_state s = {};
	struct xm_endpoint ep;

	strcpy(s.container_id, id);
	xm_cni_endpoint_fill(&s, &ep);
	assert_int_equal(strlen(ep.owner), 63);
	assert_int_equal(ep.flags, XM_EP_F_CNI);
	assert_true(xm_cni_owner_match(&ep, id));
	assert_false(xm_cni_owner_match(&ep, "0123456789abcdef"));
	ep.flags = 0; /* `xmeshctl endpoint add` entries are never the plugin's */
	assert_false(xm_cni_owner_match(&ep, id));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_chained_add),
		cmocka_unit_test(rejects_with_spec_codes),
		cmocka_unit_test(refuses_misspelt_own_fields),
		cmocka_unit_test(bad_prev_result_is_deferred),
		cmocka_unit_test(reads_gc_and_old_versions),
		cmocka_unit_test(keeps_what_fits_of_a_huge_result),
		cmocka_unit_test(names_follow_the_spec),
		cmocka_unit_test(reads_redirect_optout_annotations),
		cmocka_unit_test(refuses_bad_optout_annotations),
		cmocka_unit_test(record_round_trip),
		cmocka_unit_test(owner_keeps_63_characters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
