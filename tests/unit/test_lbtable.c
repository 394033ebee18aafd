// SPDX-License-Identifier: MIT
/*
 * Unit tests: selection-table apportioning and the latency histogram
 * (user/lib/lbtable.c, include/xmesh/lb.h), config checking with locations
 * (user/lib/lbconfig.c, jsonloc.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "lbconfig.h"
#include "lbtable.h"
#include <xmesh/weight.h>

/* Every backend within one slot (1/1024) of its intended share, slots sum to 1024. */
static void check_apportion(const double *w, unsigned int n)
{
	__u32 slots[XM_LB_SLOTS];
	double sum = 0;
	__u32 total = 0;

	for (unsigned int i = 0; i < n; i++)
		sum += w[i];
	xm_lb_slots_apportion(w, n, slots);
	for (unsigned int i = 0; i < n; i++) {
		double want = w[i] / sum * XM_LB_SLOTS;

		assert_true(fabs(slots[i] - want) < 1.0);
		total += slots[i];
	}
	assert_int_equal(total, XM_LB_SLOTS);
}

static void apportion_within_one_slot(void **state)
{
	double a[] = { 1, 2, 5 }, b[] = { 1, 1, 1 }, c[] = { 0.001, 1000, 3.3, 7 };
	double big[1000];

	check_apportion(a, 3);
	check_apportion(b, 3);
	check_apportion(c, 4);
	srand(7);
	for (int i = 0; i < 1000; i++)
		big[i] = 1 + rand() % 100;
	check_apportion(big, 1000);
}

static void apportion_all_zero_is_empty(void **state)
{
	double w[] = { 0, 0 };
	__u32 slots[2];

	xm_lb_slots_apportion(w, 2, slots);
	assert_int_equal(slots[0] + slots[1], 0);
}

static void table_fill_counts(void **state)
{
	struct xm_lb_table t;
	__u32 ids[] = { 7, 9, 11 }, slots[] = { 128, 256, 640 }, seen[12] = {};

	xm_lb_table_fill(&t, ids, slots, 3);
	for (unsigned int i = 0; i < XM_LB_SLOTS; i++)
		seen[t.backend[i]]++;
	assert_int_equal(seen[7], 128);
	assert_int_equal(seen[9], 256);
	assert_int_equal(seen[11], 640);
}

/* Bucket midpoint within 5% (the design asks; we get 3.2%) of any value, 16 ns .. 60 s. */
static void histogram_relative_error(void **state)
{
	for (double v = 16; v < 6e10; v *= 1.0137) {
		__u64 ns = (__u64)v;
		__u32 b = xm_lb_hist_bucket(ns);
		double mid = xm_lb_hist_lower(b) + (xm_lb_hist_width(b) - 1) / 2.0;

		assert_true(b < XM_LB_HIST_BUCKETS);
		assert_true(ns >= xm_lb_hist_lower(b) && ns < xm_lb_hist_lower(b) + xm_lb_hist_width(b));
		assert_true(fabs(mid - ns) / ns <= 0.05);
	}
	assert_int_equal(xm_lb_hist_bucket(~0ULL), XM_LB_HIST_BUCKETS - 1);
}

static void histogram_quantiles(void **state)
{
	__u64 h[XM_LB_HIST_BUCKETS] = {};

	/* 99 samples at 2 ms and one at 200 ms */
	h[xm_lb_hist_bucket(2000000)] = 99;
	h[xm_lb_hist_bucket(200000000)] = 1;
	assert_true(fabs(xm_lb_hist_quantile(h, 0.5) - 2e6) / 2e6 < 0.05);
	assert_true(fabs(xm_lb_hist_quantile(h, 0.99) - 2e6) / 2e6 < 0.05);
	assert_true(fabs(xm_lb_hist_quantile(h, 1.0) - 2e8) / 2e8 < 0.05);
	memset(h, 0, sizeof(h));
	assert_true(xm_lb_hist_quantile(h, 0.5) < 0);
}

static void success_rate_counts_5xx_and_failed_connects(void **state)
{
	struct xm_lb_probe p = { .req_completed = 100, .http_5xx = 10 };

	assert_true(fabs(xm_lb_success_rate(&p) - 0.90) < 1e-9);
	p.http_5xx = 0;
	p.conn_refused = 25;
	assert_true(fabs(xm_lb_success_rate(&p) - 0.80) < 1e-9);
	p.req_started = 105;
	assert_int_equal(xm_lb_in_flight(&p), 5);
}

/*
 * xm_lb_table_write on real (unpinned) maps: every backend entry gets its
 * configured weight (and its retired slots field zeroed), keeps its other
 * fields, and entries of other backends are untouched, for close ids (one
 * batched read) and scattered ids (one by one).
 * Skipped without the right to create BPF maps.
 */
static void table_write_updates_backends(void **state)
{
	static const __u32 close_ids[] = { 3, 5, 4, 6 }, far_ids[] = { 1, 40 };
	static const double close_w[] = { 1, 2, 0, 5 }, far_w[] = { 3, 1 };
	struct xm_lb_svc_key key = { .port = 80, .proto = 6, .family = 2 };
	struct xm_lb_svc svc = { .id = 1 };
	struct xm_lb_maps m;
	struct xm_lb_backend be;

	m.svc = bpf_map_create(BPF_MAP_TYPE_HASH, NULL, sizeof(key), sizeof(svc), 4, NULL);
	m.tables = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(struct xm_lb_table), 4, NULL);
	m.be = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(be), 64, NULL);
	if (m.svc < 0 || m.tables < 0 || m.be < 0)
		skip();
	assert_int_equal(bpf_map_update_elem(m.svc, &key, &svc, BPF_ANY), 0);
	for (__u32 id = 0; id < 64; id++) {
		memset(&be, 0, sizeof(be));
		be.addr.ip[0] = 0x0a000000 + id;
		be.port = 8000 + id;
		be.svc_id = 1;
		be.flags = XM_LB_BE_F_USED;
		be.weight_milli = 7;
		be.slots_retired = 7;
		assert_int_equal(bpf_map_update_elem(m.be, &id, &be, BPF_ANY), 0);
	}
	for (int round = 0; round < 2; round++) {
		const __u32 *ids = round ? far_ids : close_ids;
		const double *w = round ? far_w : close_w;
		unsigned int n = round ? 2 : 4;

		assert_int_equal(xm_lb_table_write(&m, &key, ids, w, n), 0);
		for (unsigned int i = 0; i < n; i++) {
			assert_int_equal(bpf_map_lookup_elem(m.be, &ids[i], &be), 0);
			assert_int_equal(be.slots_retired, 0);
			assert_int_equal(be.weight_milli, (__u32)(w[i] * 1000));
			assert_int_equal(be.addr.ip[0], 0x0a000000 + ids[i]);
			assert_int_equal(be.port, 8000 + ids[i]);
			assert_int_equal(be.flags, XM_LB_BE_F_USED);
		}
	}
	for (__u32 id = 0; id < 64; id++) {
		bool written = id == 1 || id == 40 || (id >= 3 && id <= 6);

		assert_int_equal(bpf_map_lookup_elem(m.be, &id, &be), 0);
		assert_int_equal(be.port, 8000 + id);
		if (!written)
			assert_int_equal(be.slots_retired, 7);
	}
	close(m.svc);
	close(m.tables);
	close(m.be);
}

static int foreach_collect(const struct xm_lb_backend_info *bi, void *arg)
{
	struct xm_lb_backend_info *out = arg;

	out[bi->id] = *bi;
	return 0;
}

/*
 * What xmeshctl and /metrics show (xm_lb_backend_foreach()): a backend's slots
 * are those it holds in its service's table in force, counted there, and its
 * weight the one that table was written from. A table flipped the weighting
 * loop's way (xm_lb_tables_write + xm_lb_svc_flip, no write of the backend
 * entries) is shown at once: slots from the table, weights from the loop's
 * xm_lb_wstate rows that say the table is its own (XM_WSTATE_F_TABLE); a row
 * without that flag, or no such map, shows the configured weight.
 */
static void foreach_shows_table_in_force(void **state)
{
	struct xm_lb_svc_key ka = { .port = 80, .proto = 6, .family = 2 }, kb = ka;
	struct xm_lb_svc sa = { .id = 0 }, sb = { .id = 1 };
	static const __u32 ida[] = { 1, 2, 3 }, idb[] = { 4, 5 };
	static const double wa[] = { 1, 2, 3 }, wb[] = { 1, 3 };
	static const __u32 loop_slots[] = { 700, 300, 24 };
	struct xm_lb_backend_info *got;
	struct xm_lb_maps m = { -1, -1, -1, -1, -1, -1, -1 };
	struct xm_lb_backend be;
	struct xm_lb_table t;
	struct xm_lb_wstate ws;
	__u32 idx, bslots[2];

	ka.vip.ip[0] = 0x0a000001;
	kb.vip.ip[0] = 0x0a000002;
	m.svc = bpf_map_create(BPF_MAP_TYPE_HASH, NULL, sizeof(ka), sizeof(sa), 4, NULL);
	m.tables = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(struct xm_lb_table), 4, NULL);
	m.be = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(be), 64, NULL);
	m.cluster = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(struct xm_lb_cluster),
				   XM_LB_MAX_CLUSTERS, NULL);
	m.wstate = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(ws), 64, NULL);
	if (m.svc < 0 || m.tables < 0 || m.be < 0 || m.cluster < 0 || m.wstate < 0)
		skip();
	got = calloc(XM_LB_MAX_BACKENDS, sizeof(*got));
	assert_non_null(got);
	assert_int_equal(bpf_map_update_elem(m.svc, &ka, &sa, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(m.svc, &kb, &sb, BPF_ANY), 0);
	for (__u32 id = 1; id <= 5; id++) {
		memset(&be, 0, sizeof(be));
		be.svc_id = id <= 3 ? 0 : 1;
		be.flags = XM_LB_BE_F_USED;
		be.slots_retired = 999; /* an older agent's display value: never shown */
		assert_int_equal(bpf_map_update_elem(m.be, &id, &be, BPF_ANY), 0);
	}
	/* both services written from the config: configured weights, apportioned slots */
	assert_int_equal(xm_lb_table_write(&m, &ka, ida, wa, 3), 0);
	assert_int_equal(xm_lb_table_write(&m, &kb, idb, wb, 2), 0);
	/* the loop's write of service a: table and flip only, its weights in xm_lb_wstate */
	assert_int_equal(bpf_map_lookup_elem(m.svc, &ka, &sa), 0);
	xm_lb_table_fill(&t, ida, loop_slots, 3);
	idx = xm_lb_table_inactive(&sa);
	assert_int_equal(xm_lb_tables_write(&m, &idx, &t, 1), 0);
	assert_int_equal(xm_lb_svc_flip(&m, &ka, &sa, 3), 0);
	for (__u32 id = 1; id <= 3; id++) {
		memset(&ws, 0, sizeof(ws));
		ws.updated_ns = 1;
		ws.weight_ppm = 111111;
		ws.table_weight_ppm = loop_slots[id - 1] * 1000000 / XM_LB_SLOTS;
		/* backend 3's row says the table is not the loop's: its configured weight */
		ws.flags = XM_WSTATE_F_LIVE | (id < 3 ? XM_WSTATE_F_TABLE : 0);
		assert_int_equal(bpf_map_update_elem(m.wstate, &id, &ws, BPF_ANY), 0);
	}

	assert_int_equal(xm_lb_backend_foreach(&m, NULL, foreach_collect, got), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(got[ida[i]].id, ida[i]);
		assert_int_equal(got[ida[i]].slots, loop_slots[i]);
	}
	assert_true(fabs(got[1].weight - 700 / 1024.0) < 1e-6);
	assert_true(fabs(got[2].weight - 300 / 1024.0) < 1e-6);
	assert_true(fabs(got[3].weight - 3.0) < 1e-9);
	xm_lb_slots_apportion(wb, 2, bslots);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(got[idb[i]].slots, bslots[i]);
		assert_true(fabs(got[idb[i]].weight - wb[i]) < 1e-9);
	}

	/* one service only, and without the loop's map: configured weights */
	close(m.wstate);
	m.wstate = -1;
	memset(got, 0, XM_LB_MAX_BACKENDS * sizeof(*got));
	assert_int_equal(xm_lb_backend_foreach(&m, &ka, foreach_collect, got), 0);
	assert_int_equal(got[4].id, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(got[ida[i]].slots, loop_slots[i]);
		assert_true(fabs(got[ida[i]].weight - wa[i]) < 1e-9);
	}
	free(got);
	close(m.svc);
	close(m.tables);
	close(m.be);
	close(m.cluster);
}

/*
 * The weighting loop's batched writes: tables of several services in one
 * xm_lb_tables_write() (into each one's inactive table), then each flipped
 * from a held copy of its entry; every service ends on its new table, with
 * its backend count, and the held copies match the map. A flip of a service
 * deleted meanwhile fails with ENOENT and does not bring it back.
 * xm_array_lookup_ids() reads ids in any order, close or scattered.
 */
static void batched_flips_and_lookups(void **state)
{
	enum { NS = 5, NB = 3 };
	struct xm_lb_svc_key keys[NS];
	struct xm_lb_svc svcs[NS], got;
	struct xm_lb_table t[NS], active;
	__u32 idx[NS], ids[NS][NB], slots[NS][NB];
	double w[NB] = { 1, 2, 0 };
	struct xm_lb_maps m = { .svc = -1, .tables = -1, .be = -1, .wstate = -1 };
	__u32 want_ids[] = { 9, 2, 3, 4, 40, 1 }, keys_buf[8];
	struct xm_lb_backend vals_buf[8], out[6], be;
	struct xm_batch_buf buf = { keys_buf, vals_buf, 8 };

	m.svc = bpf_map_create(BPF_MAP_TYPE_HASH, NULL, sizeof(keys[0]), sizeof(svcs[0]), NS, NULL);
	m.tables = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(struct xm_lb_table), NS * 2,
				  NULL);
	m.be = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(be), 64, NULL);
	if (m.svc < 0 || m.tables < 0 || m.be < 0)
		skip();
	for (int s = 0; s < NS; s++) {
		memset(&keys[s], 0, sizeof(keys[s]));
		keys[s].vip.ip[0] = 0x0a000001 + s;
		keys[s].port = 80;
		keys[s].proto = 6;
		keys[s].family = 2;
		memset(&svcs[s], 0, sizeof(svcs[s]));
		svcs[s].id = s;
		svcs[s].active = s & 1; /* both tables in use somewhere */
		assert_int_equal(bpf_map_update_elem(m.svc, &keys[s], &svcs[s], BPF_ANY), 0);
		for (int b = 0; b < NB; b++)
			ids[s][b] = s * NB + b + 1;
		xm_lb_slots_apportion(w, NB, slots[s]);
		xm_lb_table_fill(&t[s], ids[s], slots[s], NB);
		idx[s] = xm_lb_table_inactive(&svcs[s]);
	}
	assert_int_equal(xm_lb_tables_write(&m, idx, t, NS), 0);
	/* service 3 deleted between its table and its flip */
	assert_int_equal(bpf_map_delete_elem(m.svc, &keys[3]), 0);
	for (int s = 0; s < NS; s++) {
		__u8 was = svcs[s].active;
		int err = xm_lb_svc_flip(&m, &keys[s], &svcs[s], xm_lb_slots_used(slots[s], NB));

		if (s == 3) {
			assert_int_equal(err, -ENOENT);
			assert_int_not_equal(bpf_map_lookup_elem(m.svc, &keys[s], &got), 0);
			continue;
		}
		assert_int_equal(err, 0);
		assert_int_equal(svcs[s].active, was ^ 1);
		assert_int_equal(bpf_map_lookup_elem(m.svc, &keys[s], &got), 0);
		assert_memory_equal(&got, &svcs[s], sizeof(got));
		assert_int_equal(got.backend_count, 2);
		idx[s] = got.id * 2 + got.active;
		assert_int_equal(bpf_map_lookup_elem(m.tables, &idx[s], &active), 0);
		assert_memory_equal(&active, &t[s], sizeof(active));
	}
	for (__u32 id = 0; id < 64; id++) {
		memset(&be, 0, sizeof(be));
		be.port = 1000 + id;
		assert_int_equal(bpf_map_update_elem(m.be, &id, &be, BPF_ANY), 0);
	}
	assert_int_equal(xm_array_lookup_ids(m.be, want_ids, 6, sizeof(be), out, &buf), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(out[i].port, 1000 + want_ids[i]);
	close(m.svc);
	close(m.tables);
	close(m.be);
}

static void expect_error(const char *text, const char *where)
{
	struct xm_lb_conf c;
	char err[512];

	assert_int_equal(xm_lb_conf_parse("f.json", text, strlen(text), &c, err, sizeof(err)), -EINVAL);
	if (!strstr(err, where))
		fail_msg("expected '%s' in '%s'", where, err);
}

static void config_errors_have_locations(void **state)
{
	expect_error("{\n \"services\": 3\n}", "f.json:2:14: \"services\" must be an array");
	expect_error("{\"services\": [\n {\"vip\": \"10.0.0.1\", \"port\": 70000}]}",
		     "f.json:2:30: \"port\" must be an integer");
	expect_error("{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 80},\n"
		     "  {\"vip\": \"10.0.0.1\", \"port\": 80}]}",
		     "f.json:2:11: service 10.0.0.1:80/tcp is defined twice");
	expect_error("{\"services\": [{\"vip\": \"fd00::1\", \"port\": 80, \"backends\": [\n"
		     "   {\"address\": \"10.0.0.2\", \"port\": 80}]}]}",
		     "f.json:2:16: backend address family differs");
	expect_error("{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 80, \"backends\": [\n"
		     "   {\"address\": \"10.0.0.2\", \"port\": 80, \"wieght\": 1}]}]}",
		     "f.json:2:50: unknown field \"wieght\" (known here: address, port, weight");
	/* a misspelt section is not its default */
	expect_error("{\"weigthing\": {\"tick_ms\": 100},\n \"services\": []}",
		     "f.json:1:15: unknown field \"weigthing\" (known here: services, weighting, "
		     "probes, probes_clientless_s, redirect_recv_counters); did you mean \"weighting\"?");
	/* rebalancing with fixed weights would never retire a connection */
	expect_error("{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 80,\n"
		     "  \"algorithm\": \"round-robin\", \"rebalance\": true}]}",
		     "rebalancing needs an algorithm whose weights come from the weighting loop");
	expect_error("{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 80, \"rebalance\": {}}]}",
		     "rebalancing needs an algorithm");
	expect_error("{\"services\": [", "f.json:1:");
}

static void config_parses(void **state)
{
	const char *t = "{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.1\", "
			"\"port\": 80, \"protocol\": \"udp\", \"algorithm\": \"round-robin\", "
			"\"backends\": [{\"address\": \"10.0.0.2\", \"port\": 8080, \"weight\": 3, "
			"\"cluster\": \"paris\"}]}]}";
	struct xm_lb_conf c;
	struct xm_lb_svc_key k;
	char err[512];
	double w[1];

	assert_int_equal(xm_lb_conf_parse("f", t, strlen(t), &c, err, sizeof(err)), 0);
	assert_int_equal(c.n_svc, 1);
	assert_int_equal(xm_lb_svc_key_parse("10.96.0.1:80/udp", &k), 0);
	assert_non_null(xm_lb_conf_find(&c, &k));
	assert_int_equal(c.svc[0].n_be, 1);
	assert_string_equal(c.svc[0].be[0].cluster, "paris");
	xm_lb_conf_weights(&c.svc[0], w);
	assert_true(w[0] == 1.0); /* round-robin: equal weights whatever the config says */
	xm_lb_conf_free(&c);
}

/* The example shipped in deploy/ must be a valid config (tests run from the top directory). */
static void deploy_example_parses(void **state)
{
	struct xm_lb_conf c;
	char err[512] = "";

	if (xm_lb_conf_load("deploy/xmesh-config.json", &c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.n_svc, 4);
	xm_lb_conf_free(&c);
}

/*
 * The weighting loop's p50/p99 come from per-tick deltas of sparse
 * histogram snapshots (xm_lb_hist_sparse_delta + xm_lb_hist_quantile_sparse):
 * they must equal the quantiles of the dense histogram of what happened in
 * between, also across a 32-bit counter wrap and buckets appearing.
 */
static void sparse_delta_quantile_matches_dense(void **state)
{
	static __u64 before[XM_LB_HIST_BUCKETS], after[XM_LB_HIST_BUCKETS], diff[XM_LB_HIST_BUCKETS];
	__u16 pidx[XM_LB_HIST_BUCKETS], cidx[XM_LB_HIST_BUCKETS];
	__u32 pcnt[XM_LB_HIST_BUCKETS], ccnt[XM_LB_HIST_BUCKETS];
	__u64 dlt[XM_LB_HIST_BUCKETS], total;
	unsigned int pn = 0, cn = 0;
	unsigned int seed = 7;

	for (__u32 i = 0; i < XM_LB_HIST_BUCKETS; i++) {
		seed = seed * 1103515245 + 12345;
		before[i] = (seed >> 8) % 3 ? 0 : (seed >> 4) % 1000;
		diff[i] = (seed >> 12) % 5 ? 0 : (seed >> 3) % 700;
	}
	before[100] = 0xfffffff0ULL; /* wraps in 32 bits */
	diff[100] = 0x20;
	diff[3] = 5; /* a bucket that appears */
	before[3] = 0;
	for (__u32 i = 0; i < XM_LB_HIST_BUCKETS; i++) {
		after[i] = before[i] + diff[i];
		if ((__u32)before[i]) {
			pidx[pn] = i;
			pcnt[pn++] = (__u32)before[i];
		}
		if ((__u32)after[i]) {
			cidx[cn] = i;
			ccnt[cn++] = (__u32)after[i];
		}
	}
	total = xm_lb_hist_sparse_delta(pidx, pcnt, pn, cidx, ccnt, cn, dlt);
	assert_int_equal(total, xm_lb_hist_count(diff));
	for (double q = 0.01; q <= 1.0; q += 0.07)
		assert_true(xm_lb_hist_quantile_sparse(cidx, dlt, cn, q) == xm_lb_hist_quantile(diff, q));
	assert_true(xm_lb_hist_quantile_sparse(cidx, dlt, cn, 0.99) ==
		    xm_lb_hist_quantile(diff, 0.99));
	/* no new samples: empty */
	total = xm_lb_hist_sparse_delta(cidx, ccnt, cn, cidx, ccnt, cn, dlt);
	assert_int_equal(total, 0);
	assert_true(xm_lb_hist_quantile_sparse(cidx, dlt, cn, 0.5) < 0);
}

/*
 * Several quantiles in one pass (the weighting loop's p50, p99 and tail
 * rank) equal each taken alone by counting samples one by one: ranks in any
 * order, a quantile of 0 and of 1, ranks landing on a bucket's last sample,
 * an empty histogram.
 */
static void hist_quantiles_in_one_pass(void **state)
{
	const double q[5] = { 0.99, 0.5, 1.0, 0.0, 0.97 };
	__u16 idx[40];
	__u64 cnt[40];
	double out[5];

	(void)state;
	srand(7);
	for (int round = 0; round < 200; round++) {
		unsigned int n = 1 + rand() % 40, b = rand() % 16;
		__u64 total = 0;

		for (unsigned int k = 0; k < n; k++) {
			b += 1 + rand() % 12;
			idx[k] = b;
			cnt[k] = rand() % 4 == 0 ? 0 : 1 + rand() % (round % 2 ? 3 : 500);
			total += cnt[k];
		}
		xm_lb_hist_quantiles_sparse(idx, cnt, n, total, q, out, 5);
		for (unsigned int j = 0; j < 5; j++) {
			/* the sample of rank ceil(q * total) (at least 1), counted out */
			__u64 rank = (__u64)ceil(q[j] * (double)total), seen = 0;
			double want = -1;

			if (rank < 1)
				rank = 1;
			for (unsigned int k = 0; total && k < n && want < 0; k++)
				for (__u64 c = 0; c < cnt[k] && want < 0; c++)
					if (++seen == rank)
						want = (double)xm_lb_hist_lower(idx[k]) +
						       (double)(xm_lb_hist_width(idx[k]) - 1) / 2.0;
			assert_true(out[j] == want);
		}
	}
	memset(cnt, 0, sizeof(cnt));
	xm_lb_hist_quantiles_sparse(idx, cnt, 3, 0, q, out, 5);
	for (unsigned int j = 0; j < 5; j++)
		assert_true(out[j] == -1);
}

/*
 * The loop's read without a full scan (xm_lb_hist_delta_known): when every
 * completion the probes counted landed in buckets the baseline knows, its
 * deltas and quantiles are the full scan's, also across a 32-bit wrap; when
 * one landed in a new bucket it refuses (0, baseline untouched), so the full
 * scan sees the change in the same read; later, that bucket is counted whole.
 */
static void hist_delta_known_or_refuse(void **state)
{
	static __u32 cur[XM_LB_HIST_BUCKETS];
	static __u64 diff[XM_LB_HIST_BUCKETS];
	__u16 idx[4] = { 20, 100, 101, 300 };
	__u32 cnt[4] = { 5, 0xfffffff0U, 7, 1 }, keep[4];
	__u64 dlt[XM_LB_HIST_BUCKETS], expect = 0;
	__u16 cidx[XM_LB_HIST_BUCKETS];
	__u32 ccnt[XM_LB_HIST_BUCKETS];
	unsigned int cn = 0;

	for (unsigned int k = 0; k < 4; k++)
		cur[idx[k]] = cnt[k];
	/* new completions in known buckets only: 3 at 20, 0x20 at 100 (wraps), 9 at 300 */
	cur[20] += 3;
	cur[100] += 0x20;
	cur[300] += 9;
	diff[20] = 3;
	diff[100] = 0x20;
	diff[300] = 9;
	expect = 3 + 0x20 + 9;
	assert_int_equal(xm_lb_hist_delta_known(idx, cnt, 4, cur, expect, dlt), expect);
	for (double q = 0.01; q <= 1.0; q += 0.07)
		assert_true(xm_lb_hist_quantile_sparse(idx, dlt, 4, q) ==
			    xm_lb_hist_quantile(diff, q));
	for (unsigned int k = 0; k < 4; k++)
		assert_int_equal(cnt[k], cur[idx[k]]);
	/* a read that caught the counters ahead of a bucket's add: refused, nothing changed */
	cur[20] += 2;
	memcpy(keep, cnt, sizeof(keep));
	assert_int_equal(xm_lb_hist_delta_known(idx, cnt, 4, cur, 3, dlt), 0);
	assert_memory_equal(cnt, keep, sizeof(keep));
	/* a slow request in a bucket new to this backend: refused, and the full scan sees it */
	cur[400] += 1;
	assert_int_equal(xm_lb_hist_delta_known(idx, cnt, 4, cur, 3, dlt), 0);
	for (__u32 i = 0; i < XM_LB_HIST_BUCKETS; i++)
		if (cur[i]) {
			cidx[cn] = i;
			ccnt[cn++] = cur[i];
		}
	assert_int_equal(xm_lb_hist_sparse_delta(idx, cnt, 4, cidx, ccnt, cn, dlt), 3);
	assert_true(xm_lb_hist_quantile_sparse(cidx, dlt, cn, 0.99) ==
		    (double)xm_lb_hist_lower(400) + (double)(xm_lb_hist_width(400) - 1) / 2.0);
	/* nothing expected (no completions): never taken for a read */
	assert_int_equal(xm_lb_hist_delta_known(idx, cnt, 4, cur, 0, dlt), 0);
}

/*
 * The kernel's histogram has 32-bit counts (half the bytes the loop copies
 * per read): read through the maps and differenced with xm_lb_probe_delta,
 * every quantile equals the one of a 64-bit histogram of the same samples,
 * also when counts wrap past 2^32 between the reads.
 */
static void hist_u32_same_quantiles(void **state)
{
	static __u64 ref[XM_LB_HIST_BUCKETS];
	static struct xm_lb_probe_snap before, after, d;
	struct xm_lb_hist h;
	struct xm_lb_maps m = { .svc = -1, .tables = -1, .be = -1, .cluster = -1, .wstate = -1 };
	unsigned long long seed = 0x2545f491;
	__u32 id = 1;

	assert_int_equal(sizeof(h), XM_LB_HIST_BUCKETS * sizeof(__u32));
	m.probe = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, NULL, 4,
				 sizeof(struct xm_lb_probe_page), 1, NULL);
	m.hist = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(h), 2, NULL);
	if (m.probe < 0 || m.hist < 0)
		skip();
	/* Counts just below 2^32: the samples below wrap most buckets they touch. */
	for (__u32 i = 0; i < XM_LB_HIST_BUCKETS; i++)
		h.bucket[i] = 0xffffffffU - i % 7;
	assert_int_equal(bpf_map_update_elem(m.hist, &id, &h, BPF_ANY), 0);
	assert_int_equal(xm_lb_probe_read(&m, id, &before), 0);
	for (int k = 0; k < 20000; k++) {
		double u1, u2, z;
		__u64 ns;
		__u32 b;

		seed ^= seed >> 12, seed ^= seed << 25, seed ^= seed >> 27;
		u1 = ((seed * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
		seed ^= seed >> 12, seed ^= seed << 25, seed ^= seed >> 27;
		u2 = ((seed * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
		z = sqrt(-2 * log(u1 > 1e-12 ? u1 : 1e-12)) * cos(2 * M_PI * u2);
		ns = (__u64)(8e6 * exp(0.8 * z)); /* median 8 ms, p99 ~50 ms */
		b = xm_lb_hist_bucket(ns);
		ref[b]++;
		h.bucket[b]++;
	}
	assert_int_equal(bpf_map_update_elem(m.hist, &id, &h, BPF_ANY), 0);
	assert_int_equal(xm_lb_probe_read(&m, id, &after), 0);
	xm_lb_probe_delta(&before, &after, &d);
	assert_int_equal(xm_lb_hist_count(d.hist), 20000);
	for (double q = 0.01; q < 1.0; q += 0.01)
		assert_true(xm_lb_hist_quantile(d.hist, q) == xm_lb_hist_quantile(ref, q));
	assert_true(xm_lb_hist_quantile(d.hist, 0.99) == xm_lb_hist_quantile(ref, 0.99));
	close(m.probe);
	close(m.hist);
}

/*
 * Probe counters in pages of 64 backends (xm_lb_probe_page): a backend's are
 * read from its page and slot, summed over CPUs, and zeroing one (an id being
 * reused) leaves the other backends of its page as they were.
 */
static void probe_pages_read_and_zero(void **state)
{
	int ncpu = libbpf_num_possible_cpus();
	struct xm_lb_maps m = { .svc = -1, .tables = -1, .be = -1, .cluster = -1, .wstate = -1 };
	static struct xm_lb_probe_snap a, b;
	struct xm_lb_probe_page *pc;
	struct xm_lb_hist h = { 0 };
	__u32 id = XM_LB_PROBE_PAGE + 6, page = 1;

	assert_true(ncpu > 0);
	m.probe = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, NULL, 4,
				 sizeof(struct xm_lb_probe_page), 2, NULL);
	m.hist = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, sizeof(h), 2 * XM_LB_PROBE_PAGE,
				NULL);
	if (m.probe < 0 || m.hist < 0)
		skip();
	pc = calloc(ncpu, sizeof(*pc));
	assert_non_null(pc);
	for (int c = 0; c < ncpu; c++) {
		pc[c].b[6].req_started = 10 + c;
		pc[c].b[7].req_started = 100 + c;
		pc[c].b[5].req_completed = 1000;
	}
	assert_int_equal(bpf_map_update_elem(m.probe, &page, pc, BPF_ANY), 0);
	h.bucket[3] = 7;
	assert_int_equal(bpf_map_update_elem(m.hist, &id, &h, BPF_ANY), 0);

	assert_int_equal(xm_lb_probe_read(&m, id, &a), 0);
	assert_int_equal(a.c.req_started, 10 * ncpu + ncpu * (ncpu - 1) / 2);
	assert_int_equal(a.c.req_completed, 0);
	assert_int_equal(a.hist[3], 7);
	assert_int_equal(xm_lb_probe_read(&m, id + 1, &b), 0);
	assert_int_equal(b.c.req_started, 100 * ncpu + ncpu * (ncpu - 1) / 2);

	assert_int_equal(xm_lb_probe_zero(&m, id), 0);
	assert_int_equal(xm_lb_probe_read(&m, id, &a), 0);
	assert_int_equal(a.c.req_started, 0);
	assert_int_equal(a.hist[3], 0);
	assert_int_equal(xm_lb_probe_read(&m, id + 1, &b), 0);
	assert_int_equal(b.c.req_started, 100 * ncpu + ncpu * (ncpu - 1) / 2);
	assert_int_equal(xm_lb_probe_read(&m, id - 1, &b), 0);
	assert_int_equal(b.c.req_completed, 1000 * ncpu);
	free(pc);
	close(m.probe);
	close(m.hist);
}

/* The rank definition on a tiny histogram: 1-based ceil(q * n), bucket midpoints. */
static void quantile_rank_definition(void **state)
{
	__u16 idx[3] = { 1, 5, 9 }; /* buckets of width 1: the values 1, 5, 9 */
	__u64 cnt[3] = { 50, 49, 1 };

	assert_true(xm_lb_hist_quantile_sparse(idx, cnt, 3, 0.5) == 1);
	assert_true(xm_lb_hist_quantile_sparse(idx, cnt, 3, 0.51) == 5);
	assert_true(xm_lb_hist_quantile_sparse(idx, cnt, 3, 0.99) == 5);
	assert_true(xm_lb_hist_quantile_sparse(idx, cnt, 3, 0.995) == 9);
	assert_true(xm_lb_hist_quantile_sparse(idx, cnt, 3, 0) == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sparse_delta_quantile_matches_dense),
		cmocka_unit_test(hist_delta_known_or_refuse),
		cmocka_unit_test(quantile_rank_definition),
		cmocka_unit_test(hist_u32_same_quantiles),
		cmocka_unit_test(probe_pages_read_and_zero),
		cmocka_unit_test(apportion_within_one_slot),
		cmocka_unit_test(apportion_all_zero_is_empty),
		cmocka_unit_test(table_fill_counts),
		cmocka_unit_test(table_write_updates_backends),
		cmocka_unit_test(foreach_shows_table_in_force),
		cmocka_unit_test(batched_flips_and_lookups),
		cmocka_unit_test(histogram_relative_error),
		cmocka_unit_test(histogram_quantiles),
		cmocka_unit_test(hist_quantiles_in_one_pass),
		cmocka_unit_test(success_rate_counts_5xx_and_failed_connects),
		cmocka_unit_test(config_errors_have_locations),
		cmocka_unit_test(config_parses),
		cmocka_unit_test(deploy_example_parses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
