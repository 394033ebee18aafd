// SPDX-License-Identifier: MIT
/*
 * The per-service configuration's errors (user/lib/lbconfig.c, weightcfg.c,
 * rebal.c, ctlproto.c; docs/config.md, docs/weighting.md): every refusal says
 * what the place takes, points at the offending value, suggests the nearest
 * known name for a misspelt one (nearname.c), prints whole-number ranges as
 * digits; the switches that read as on above 0 take only 0 or 1; a switch that
 * acts only through another is refused without it; a valid config still
 * passes as it did; and the docs' tables of the parameters agree with the
 * parsers' tables both ways.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctlproto.h"
#include "lbconfig.h"
#include "nearname.h"
#include "numparse.h"
#include "rebal.h"
#include "weight.h"
#include "weightcfg.h"

/* The error of text as a config file named f.json (which must be refused). */
static const char *refused(const char *text)
{
	static char err[1024];
	struct xm_lb_conf c;

	if (xm_lb_conf_parse("f.json", text, strlen(text), &c, err, sizeof(err)) != -EINVAL)
		fail_msg("taken: %s", text);
	return err;
}

static void says(const char *err, const char *what)
{
	if (!strstr(err, what))
		fail_msg("'%s' does not say '%s'", err, what);
}

static void not_says(const char *err, const char *what)
{
	if (strstr(err, what))
		fail_msg("'%s' says '%s'", err, what);
}

/* "f.json:LINE:COL: " of where mark (unique in text) begins. */
static const char *where(const char *text, const char *mark)
{
	static char buf[64];
	const char *at = strstr(text, mark);
	int line = 1, col = 1;

	assert_non_null(at);
	assert_null(strstr(at + 1, mark));
	for (const char *p = text; p < at; p++) {
		if (*p == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	snprintf(buf, sizeof(buf), "f.json:%d:%d: ", line, col);
	return buf;
}

/* The refusal of text points at mark: the message starts with its place. */
static const char *refused_at(const char *text, const char *mark)
{
	const char *err = refused(text);
	const char *w = where(text, mark);

	if (strncmp(err, w, strlen(w)))
		fail_msg("'%s' is not at %s(%s)", err, w, mark);
	return err;
}

/* One service: VIP 10.0.0.1:80, algorithm and the rest of its members as given. */
static const char *svc(const char *algo, const char *rest)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
		 "{\"services\": [\n {\"vip\": \"10.0.0.1\", \"port\": 80,\n"
		 "  \"algorithm\": \"%s\"%s%s}]}",
		 algo, *rest ? ",\n  " : "", rest);
	return buf;
}

static void edit_distance_and_near_names(void **state)
{
	static const char *const fields[] = { "address", "port", "weight", "cluster", NULL };
	static const char *const tails[] = { "tail_factor", "tail_self", "tail_slow", NULL };
	char hint[96];

	assert_int_equal(xm_edit_distance("weight", "weight"), 0);
	assert_int_equal(xm_edit_distance("wieght", "weight"), 1); /* a swap is one edit */
	assert_int_equal(xm_edit_distance("TCP", "tcp"), 0);
	assert_int_equal(xm_edit_distance("", "abc"), 3);
	assert_int_equal(xm_edit_distance("kitten", "sitting"), 3);
	assert_string_equal(xm_nearname_hint_in("wieght", fields, hint, sizeof(hint)),
			    "; did you mean \"weight\"?");
	assert_string_equal(xm_nearname_hint_in("prot", fields, hint, sizeof(hint)),
			    "; did you mean \"port\"?");
	/* nothing near: no guess */
	assert_string_equal(xm_nearname_hint_in("zzzzzz", fields, hint, sizeof(hint)), "");
	assert_string_equal(xm_nearname_hint_in("", fields, hint, sizeof(hint)), "");
	assert_string_equal(xm_nearname_hint_in(NULL, fields, hint, sizeof(hint)), "");
	/* a prefix of one name, but not of three */
	assert_string_equal(xm_nearname_hint_in("clust", fields, hint, sizeof(hint)),
			    "; did you mean \"cluster\"?");
	assert_string_equal(xm_nearname_hint_in("tail", tails, hint, sizeof(hint)), "");
	/* far longer than any name: far from all, no overflow */
	{
		char longname[300];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		assert_string_equal(xm_nearname_hint_in(longname, fields, hint, sizeof(hint)), "");
	}
}

static void numbers_as_digits(void **state)
{
	char b[32];

	assert_string_equal(xm_number_str(3600000, b, sizeof(b)), "3600000");
	assert_string_equal(xm_number_str(1e9, b, sizeof(b)), "1000000000");
	assert_string_equal(xm_number_str(0, b, sizeof(b)), "0");
	assert_string_equal(xm_number_str(0.25, b, sizeof(b)), "0.25");
	assert_string_equal(xm_number_str(-1, b, sizeof(b)), "-1");
}

/* Item: protocol and algorithm errors list what is accepted, whatever the value was. */
static void protocol_and_algorithm_list_accepted_values(void **state)
{
	const char *t, *err;
	char names[256] = "";

	t = svc("static", "\"protocol\": \"sctp\"");
	err = refused_at(t, "\"sctp\"");
	says(err, "\"protocol\" must be \"tcp\" or \"udp\"");
	/* not a string, or longer than any: the same list (it said "a string of at most 7") */
	says(refused(svc("static", "\"protocol\": 6")), "\"protocol\" must be \"tcp\" or \"udp\"");
	says(refused(svc("static", "\"protocol\": \"tcp-and-udp\"")),
	     "\"protocol\" must be \"tcp\" or \"udp\"");
	says(refused(svc("static", "\"protocol\": \"TCP\"")), "; did you mean \"tcp\"?");

	/* every algorithm a config may name, from the loop's table */
	snprintf(names, sizeof(names), "%s", XM_LB_ALGO_STATIC);
	for (unsigned int i = 0; xm_weight_algos[i]; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), ", %s",
			 xm_weight_algos[i]->name);
	t = svc("fastest", "");
	err = refused_at(t, "\"fastest\"");
	says(err, "unknown algorithm \"fastest\"");
	says(err, names);
	says(refused(svc("l3-pek", "")), "; did you mean \"l3-peak\"?");
	/* the loop's short name is not a config name: say which one it is */
	says(refused(svc("rr", "")), "; did you mean \"round-robin\"?");
	says(refused(svc("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "")), names);
	err = refused("{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 80, \"algorithm\": 3}]}");
	says(err, "\"algorithm\" must be a string, one of: ");
	says(err, names);
}

/* Item: the unknown-field error of "rebalance" lists the parser's own fields. */
static void rebalance_unknown_field_lists_the_table(void **state)
{
	const char *t = svc("l3x", "\"rebalance\": {\"max_per_s\": 5, \"idle_s\": 100}");
	const char *err = refused_at(t, "100}");
	char err2[600];
	json_t *o;

	says(err, "rebalance.idle_s: unknown field (known here: enabled, max_per_s, idle_ms,");
	assert_true(xm_rebal_field_count() > 10);
	for (unsigned int i = 0; i < xm_rebal_field_count(); i++)
		says(err, xm_rebal_field_name(i));
	says(err, "; did you mean \"idle_ms\"?");
	/* the whole list fits the agent's 600-byte message */
	o = json_loads("{\"a_field_nobody_knows_at_all\": 1}", 0, NULL);
	assert_int_equal(xm_rebal_conf_parse(o, &(struct xm_rebal_conf){}, err2, sizeof(err2)),
			 -EINVAL);
	says(err2, "hold_on_read)");
	json_decref(o);
}

/* Item: a value a sub-parser refuses is pointed at, not its object. */
static void errors_point_at_the_value(void **state)
{
	const char *t;

	t = svc("l3x", "\"params\": {\"floor\": 0.02,\n   \"hl_latency_s\": -3}");
	says(refused_at(t, "-3}"), "params.hl_latency_s: must be a number from 0 to 3600");
	t = svc("l3x", "\"params\": {\"floor\": 0.02, \"flor\": 0.5}");
	says(refused_at(t, "0.5}"), "params.flor: unknown parameter; did you mean \"floor\"?");
	t = svc("l3x", "\"params\": {\"latency_filter\": \"peek\"}");
	says(refused_at(t, "\"peek\""), "params.latency_filter: must be \"ewma\" or \"peak\"; "
					 "did you mean \"peak\"?");
	t = svc("l3x", "\"rebalance\": {\"max_per_s\": 5,\n   \"idle_ms\": -1}");
	says(refused_at(t, "-1}"), "rebalance.idle_ms: must be a number from 0 to 3600000");
	t = svc("l3x", "\"rebalance\": {\"enabled\": \"yes\"}");
	says(refused_at(t, "\"yes\""), "rebalance.enabled: must be true or false");
	t = "{\"weighting\": {\"tick_ms\": 5},\n \"services\": []}";
	says(refused_at(t, "5}"), "weighting.tick_ms: must be an integer from 10 to 60000");
	t = "{\"weighting\": {\"tick\": 500}}";
	says(refused_at(t, "500"), "weighting.tick: unknown field (known here: tick_ms); "
				   "did you mean \"tick_ms\"?");
	/* an object that is not one: the object itself */
	t = svc("l3x", "\"rebalance\": 7");
	says(refused_at(t, "7}"), "rebalance: must be an object or true/false");
}

/* Item: switches read as on above 0 take only 0 or 1; conn_cap 0 or 1..1000. */
static void switches_take_0_or_1(void **state)
{
	static const char *const sw[] = { "sticky_pooled", "unmeasured_typical" };
	const struct xm_weight_algo *l3x = xm_weight_algo_find("l3x");
	struct xm_weight_params p;
	char err[512], buf[256];
	json_t *o;

	for (unsigned int i = 0; i < 2; i++) {
		static const char *const bad[] = { "0.5", "2", "-1", "true", "\"1\"", "1e-9" };
		static const char *const good[] = { "0", "1", "1.0", "0.0" };

		for (unsigned int j = 0; j < sizeof(good) / sizeof(good[0]); j++) {
			snprintf(buf, sizeof(buf), "{\"%s\": %s}", sw[i], good[j]);
			o = json_loads(buf, 0, NULL);
			assert_non_null(o);
			if (xm_weight_params_parse(l3x, o, &p, err, sizeof(err)))
				fail_msg("%s refused: %s", buf, err);
			json_decref(o);
		}
		for (unsigned int j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			snprintf(buf, sizeof(buf), "\"params\": {\"%s\": %s}", sw[i], bad[j]);
			says(refused_at(svc("l3x", buf), bad[j]), "must be 0 or 1");
		}
	}
	o = json_loads("{\"sticky_pooled\": 0, \"unmeasured_typical\": 0}", 0, NULL);
	assert_int_equal(xm_weight_params_parse(l3x, o, &p, err, sizeof(err)), 0);
	assert_true(p.sticky_pooled == 0 && p.unmeasured_typical == 0);
	json_decref(o);

	{
		static const double good[] = { 0, 1, 1.5, 2, 1000 };
		static const char *const bad[] = { "0.5", "0.999", "1000.5", "-1", "false" };

		for (unsigned int j = 0; j < sizeof(good) / sizeof(good[0]); j++) {
			o = json_pack("{s:f}", "conn_cap", good[j]);
			if (xm_weight_params_parse(l3x, o, &p, err, sizeof(err)))
				fail_msg("conn_cap %g refused: %s", good[j], err);
			assert_true(p.conn_cap == good[j]);
			json_decref(o);
		}
		for (unsigned int j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			snprintf(buf, sizeof(buf), "\"params\": {\"conn_cap\": %s}", bad[j]);
			says(refused_at(svc("l3x", buf), bad[j]),
			     "params.conn_cap: must be 0 (off) or a number from 1 to 1000");
		}
	}
}

/* Item: a switch that acts only through another is refused while that one is off. */
static void switch_needs_its_partner(void **state)
{
	static const char *const good[] = {
		"{\"tail_self\": 1}", /* tail_factor's default is 4 */
		"{\"tail_factor\": 0}",
		"{\"tail_self\": 0, \"tail_factor\": 0}",
		"{\"tail_self\": 1, \"tail_factor\": 2}",
		"{\"hold_on_read\": 1}", /* on_read's default is 1 */
		"{\"on_read\": 0}",
		"{\"hold_on_read\": 0, \"on_read\": 0}",
		"{\"hold_on_read\": 1, \"on_read\": 1}",
	};
	struct xm_rebal_conf c;
	const char *t, *err, *at;
	char e[512];

	for (unsigned int i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_t *o = json_loads(good[i], 0, NULL);

		if (xm_rebal_conf_parse(o, &c, e, sizeof(e)))
			fail_msg("%s refused: %s", good[i], e);
		json_decref(o);
	}
	t = svc("l3x", "\"rebalance\": {\"tail_self\": 1, \"tail_factor\": 0}");
	err = refused_at(t, "1, \"tail_factor\"");
	says(err, "rebalance.tail_self: 1 needs \"tail_factor\" above 0");
	/* either order: the place is tail_self's */
	t = svc("l3x", "\"rebalance\": {\"tail_factor\": 0, \"tail_self\": 1}");
	refused_at(t, "1}");
	t = svc("l3x", "\"rebalance\": {\"on_read\": 0, \"hold_on_read\": 1}");
	says(refused_at(t, "1}"), "rebalance.hold_on_read: 1 needs \"on_read\" 1");
	/* the same rule without a file: the member is named */
	{
		json_t *o = json_loads("{\"hold_on_read\": 1, \"on_read\": 0}", 0, NULL);

		assert_int_equal(xm_rebal_conf_parse_at(o, &c, e, sizeof(e), &at), -EINVAL);
		assert_string_equal(at, "hold_on_read");
		json_decref(o);
	}
}

/* Item: every place that refuses an unknown name suggests the nearest known one. */
static void did_you_mean_everywhere(void **state)
{
	struct xm_ctl_request r;
	char err[1024];
	const char *req;

	says(refused("{\"servics\": []}"), "; did you mean \"services\"?");
	says(refused("{\"probes\": \"weigted\"}"), "; did you mean \"weighted\"?");
	says(refused(svc("static", "\"backend\": []")), "; did you mean \"backends\"?");
	says(refused(svc("static", "\"backends\": [{\"adress\": \"10.0.0.2\", \"port\": 1}]")),
	     "unknown field \"adress\" (known here: address, port, weight, cluster); "
	     "did you mean \"address\"?");
	says(refused(svc("l3x", "\"params\": {\"hl_latency\": 1}")),
	     "; did you mean \"hl_latency_s\"?");
	says(refused(svc("l3x", "\"rebalance\": {\"tail_slf\": 1}")),
	     "; did you mean \"tail_self\"?");
	says(refused(svc("static", "\"protocol\": \"udpp\"")), "; did you mean \"udp\"?");
	/* nothing near: no guess */
	not_says(refused(svc("l3x", "\"params\": {\"zzzzzzzz\": 1}")), "did you mean");

	/* the control socket: a cmd, a member, and the service (no file: no location) */
	req = "{\"cmd\": \"service-ad\", \"service\": {}}";
	assert_int_equal(xm_ctl_request_parse(req, strlen(req), &r, err, sizeof(err)), -EINVAL);
	says(err, "unknown cmd \"service-ad\" (known: service-add, service-del, backend-weight, "
		  "reload); did you mean \"service-add\"?");
	req = "{\"cmd\": \"backend-weight\", \"service\": \"10.0.0.1:80\", \"wieght\": 1}";
	assert_int_equal(xm_ctl_request_parse(req, strlen(req), &r, err, sizeof(err)), -EINVAL);
	says(err, "takes no \"wieght\"; it takes: service, backend, weight; did you mean "
		  "\"weight\"?");
	req = "{\"cmd\": \"service-add\", \"service\": {\"vip\": \"10.0.0.1\", \"port\": 80, "
	      "\"algorithm\": \"l3x\", \"rebalance\": {\"idle\": 100}}}";
	assert_int_equal(xm_ctl_request_parse(req, strlen(req), &r, err, sizeof(err)), -EINVAL);
	says(err, "service: rebalance.idle: unknown field (known here: enabled,");
	says(err, "; did you mean \"idle_ms\"?");
}

/* Item: ranges of whole numbers in digits, integers said to be integers. */
static void ranges_in_digits(void **state)
{
	const char *err;
	char buf[256], range[64];

	says(refused(svc("l3x", "\"rebalance\": {\"idle_ms\": 4000000}")),
	     "rebalance.idle_ms: must be a number from 0 to 3600000");
	says(refused(svc("l3x", "\"rebalance\": {\"min_conns\": 0}")),
	     "rebalance.min_conns: must be an integer from 1 to 1000000");
	says(refused(svc("l3x", "\"rebalance\": {\"ticks\": 1.5}")),
	     "rebalance.ticks: must be an integer from 1 to 1000");
	says(refused(svc("l3x", "\"rebalance\": {\"tail_slow\": 2}")),
	     "rebalance.tail_slow: must be 0 or 1");
	says(refused(svc("l3x", "\"params\": {\"default_rps\": -1}")),
	     "params.default_rps: must be a number from 0 to 1000000000");
	/* every field, refused: no exponent anywhere, and its docs range in the message */
	for (unsigned int i = 1; i < xm_rebal_field_count(); i++) {
		snprintf(buf, sizeof(buf), "\"rebalance\": {\"%s\": \"x\"}",
			 xm_rebal_field_name(i));
		err = refused(svc("l3x", buf));
		not_says(err, "e+");
		xm_rebal_field_type(i, range, sizeof(range));
		if (strcmp(range, "0 or 1")) {
			char *dots = strstr(range, "..");

			assert_non_null(dots);
			*dots = '\0';
			snprintf(buf, sizeof(buf), " from %s to %s", strchr(range, ' ') + 1,
				 dots + 2);
			says(err, buf);
		}
	}
	for (unsigned int i = 0; i < xm_weight_param_count(); i++) {
		snprintf(buf, sizeof(buf), "\"params\": {\"%s\": \"x\"}", xm_weight_param_name(i));
		err = refused(svc("l3x", buf));
		not_says(err, "e+");
		says(err, xm_weight_param_name(i));
	}
}

/* A valid config with every kind of field still passes, with the values it gives. */
static void valid_config_passes(void **state)
{
	const char *t =
		"{\"weighting\": {\"tick_ms\": 250}, \"probes\": \"weighted\",\n"
		" \"redirect_recv_counters\": false,\n"
		" \"services\": [\n"
		"  {\"name\": \"api\", \"vip\": \"10.96.0.12\", \"port\": 80,\n"
		"   \"protocol\": \"tcp\",\n"
		"   \"algorithm\": \"l3x\",\n"
		"   \"params\": {\"floor\": 0.02, \"sticky_pooled\": 1,\n"
		"     \"unmeasured_typical\": 0,\n"
		"     \"conn_cap\": 1.5, \"latency_filter\": \"ewma\", \"rate_control\": false,\n"
		"     \"adopt_first\": true, \"default_rps\": 1000000000, \"age_bound\": 0},\n"
		"   \"rebalance\": {\"max_per_s\": 10, \"share_per_tick\": 0.2,\n"
		"     \"tail_self\": 1, \"hold_on_read\": 1, \"min_conns\": 1000000,\n"
		"     \"idle_ms\": 3600000, \"urgent_ms\": 10000}},\n"
		"  {\"vip\": \"10.96.0.13\", \"port\": 53, \"protocol\": \"udp\",\n"
		"   \"algorithm\": \"round-robin\", \"params\": {\"sticky_pooled\": 0},\n"
		"   \"backends\": [{\"address\": \"10.1.0.5\", \"port\": 53, \"weight\": 2,\n"
		"     \"cluster\": \"fra\"}]},\n"
		"  {\"vip\": \"10.96.0.14\", \"port\": 80,\n"
		"   \"params\": {\"anything\": \"static keeps it\"}}]}";
	struct xm_weight_params p;
	struct xm_lb_conf c;
	char err[1024];

	if (xm_lb_conf_parse("f.json", t, strlen(t), &c, err, sizeof(err)))
		fail_msg("refused: %s", err);
	assert_int_equal(c.n_svc, 3);
	assert_int_equal(c.tick_ms, 250);
	assert_int_equal(c.probes, XM_LB_PROBES_WEIGHTED);
	assert_string_equal(c.svc[0].algorithm, "l3x");
	assert_true(c.svc[0].rebalance.enabled);
	assert_int_equal(c.svc[0].rebalance.tail_self, 1);
	assert_int_equal(c.svc[0].rebalance.hold_on_read, 1);
	assert_int_equal(c.svc[0].rebalance.min_conns, 1000000);
	assert_true(fabs(c.svc[0].rebalance.idle_s - 3600) < 1e-9);
	assert_true(fabs(c.svc[0].rebalance.urgent_s - 10) < 1e-9);
	assert_int_equal(xm_weight_params_parse(xm_weight_algo_find("l3x"), c.svc[0].params, &p,
						err, sizeof(err)),
			 0);
	assert_true(p.floor == 0.02 && p.sticky_pooled == 1 && p.unmeasured_typical == 0);
	assert_true(p.conn_cap == 1.5 && p.latency_filter == XM_FILTER_EWMA && !p.rate_control);
	assert_true(p.adopt_first && p.default_rps == 1e9 && p.age_bound == 0);
	assert_int_equal(c.svc[1].key.proto, IPPROTO_UDP);
	assert_string_equal(c.svc[1].algorithm, "round-robin");
	assert_int_equal(c.svc[1].n_be, 1);
	assert_string_equal(c.svc[2].algorithm, XM_LB_ALGO_STATIC);
	xm_lb_conf_free(&c);
}

/* The repository's docs/NAME (tests run from the top; else from the binary's place). */
static FILE *open_doc(const char *name)
{
	char path[PATH_MAX], exe[PATH_MAX];
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "docs/%s", name);
	f = fopen(path, "r");
	if (f)
		return f;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	/* build/tests/unit/test_config_check: four levels below the top */
	for (int i = 0; i < 4; i++) {
		char *slash = strrchr(exe, '/');

		if (!slash)
			return NULL;
		*slash = '\0';
	}
	if (snprintf(path, sizeof(path), "%.3000s/docs/%s", exe, name) >= (int)sizeof(path))
		return NULL;
	return fopen(path, "r");
}

/*
 * The rows of the first table after the line `heading`: the first cell's
 * name (in backticks) and the cell number col (0-based), without backticks
 * and blanks around. Returns the number of rows.
 */
struct doc_row {
	char name[64], cell[128];
};

static unsigned int doc_table(const char *doc, const char *heading, unsigned int col,
			      struct doc_row *rows, unsigned int max)
{
	char line[8192];
	bool in_section = false, in_table = false;
	unsigned int n = 0;
	FILE *f = open_doc(doc);

	if (!f)
		fail_msg("docs/%s not found", doc);
	while (fgets(line, sizeof(line), f)) {
		char *cells[16], *p = line;
		unsigned int nc = 0;

		if (!in_section) {
			in_section = !strncmp(line, heading, strlen(heading));
			continue;
		}
		if (line[0] != '|') {
			if (in_table)
				break;
			continue;
		}
		in_table = true;
		/* split on '|' (no cell of these tables holds one) */
		while (nc < 16 && (p = strchr(p, '|')) && p[1] != '\n' && p[1]) {
			*p++ = '\0';
			cells[nc++] = p;
		}
		if (p)
			*p = '\0';
		if (nc <= col || !strchr(cells[0], '`'))
			continue; /* the header and the rule */
		assert_true(n < max);
		for (unsigned int k = 0; k < 2; k++) {
			const char *src = k ? cells[col] : cells[0];
			char *dst = k ? rows[n].cell : rows[n].name;
			size_t len = k ? sizeof(rows[n].cell) : sizeof(rows[n].name), j = 0;

			for (; *src && j + 1 < len; src++)
				if (*src != '`')
					dst[j++] = *src;
			dst[j] = '\0';
			/* trim */
			while (j && dst[j - 1] == ' ')
				dst[--j] = '\0';
			memmove(dst, dst + strspn(dst, " "), strlen(dst + strspn(dst, " ")) + 1);
		}
		n++;
	}
	fclose(f);
	if (!n)
		fail_msg("no table under '%s' in docs/%s", heading, doc);
	return n;
}

/* Item: the docs' tables and the parsers' tables name the same fields with the same ranges. */
static void docs_tables_match_the_code(void **state)
{
	struct doc_row rows[64];
	char range[64];
	unsigned int n, i, j;

	/* docs/weighting.md "Parameters": | parameter | range | meaning | ... */
	n = doc_table("weighting.md", "## Parameters", 1, rows, 64);
	for (i = 0; i < xm_weight_param_count(); i++) {
		xm_weight_param_range(i, range, sizeof(range));
		for (j = 0; j < n && strcmp(rows[j].name, xm_weight_param_name(i)); j++)
			;
		if (j == n)
			fail_msg("params.%s is not in docs/weighting.md", xm_weight_param_name(i));
		if (strcmp(rows[j].cell, range))
			fail_msg("params.%s: docs/weighting.md says '%s', the code '%s'",
				 rows[j].name, rows[j].cell, range);
	}
	for (j = 0; j < n; j++) {
		for (i = 0; i < xm_weight_param_count() && strcmp(rows[j].name,
								  xm_weight_param_name(i)); i++)
			;
		if (i == xm_weight_param_count())
			fail_msg("docs/weighting.md lists '%s', which params does not take",
				 rows[j].name);
	}
	assert_int_equal(n, xm_weight_param_count());

	/* docs/config.md "rebalance": | field | type | default | meaning | */
	n = doc_table("config.md", "## `rebalance`", 1, rows, 64);
	for (i = 0; i < xm_rebal_field_count(); i++) {
		xm_rebal_field_type(i, range, sizeof(range));
		for (j = 0; j < n && strcmp(rows[j].name, xm_rebal_field_name(i)); j++)
			;
		if (j == n)
			fail_msg("rebalance.%s is not in docs/config.md", xm_rebal_field_name(i));
		if (strcmp(rows[j].cell, range))
			fail_msg("rebalance.%s: docs/config.md says '%s', the code '%s'",
				 rows[j].name, rows[j].cell, range);
	}
	for (j = 0; j < n; j++) {
		for (i = 0; i < xm_rebal_field_count() && strcmp(rows[j].name,
								 xm_rebal_field_name(i)); i++)
			;
		if (i == xm_rebal_field_count())
			fail_msg("docs/config.md lists '%s', which rebalance does not take",
				 rows[j].name);
	}
	assert_int_equal(n, xm_rebal_field_count());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(edit_distance_and_near_names),
		cmocka_unit_test(numbers_as_digits),
		cmocka_unit_test(protocol_and_algorithm_list_accepted_values),
		cmocka_unit_test(rebalance_unknown_field_lists_the_table),
		cmocka_unit_test(errors_point_at_the_value),
		cmocka_unit_test(switches_take_0_or_1),
		cmocka_unit_test(switch_needs_its_partner),
		cmocka_unit_test(did_you_mean_everywhere),
		cmocka_unit_test(ranges_in_digits),
		cmocka_unit_test(valid_config_passes),
		cmocka_unit_test(docs_tables_match_the_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
