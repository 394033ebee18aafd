// SPDX-License-Identifier: MIT
/* xmeshctl service: the services the datapath balances, and changes to them. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "addr.h"
#include "ctl.h"
#include "lbconfig.h"
#include "lbtable.h"
#include "pin.h"

int ctl_lb_open(struct xm_lb_maps *m)
{
	int err = xm_lb_maps_open(m, xm_pin_root);

	if (err == -ENOENT)
		p_err("no xmesh LB datapath at %s: is xmesh-agent running, or is --pin-root right?",
		      xm_pin_root);
	else if (err)
		p_err("open LB maps under %s: %s", xm_pin_root, strerror(-err));
	return err;
}

/*
 * A service as `service list` / `show` print it: the maps' entries, typed,
 * plus what the agent's sources file says of it; both printers, plain and
 * JSON, are fed from these rows.
 */
struct svc_row {
	struct xm_lb_svc_key key;
	struct xm_lb_svc v;
	char ks[96], vip[XM_ADDR_STRLEN];
	struct ctl_rows backends; /* struct xm_lb_backend_info */
	json_t *src;              /* the sources file's entry (owned), or NULL */
	const char *source, *k8s, *note; /* from src; NULL when absent */
	long long generation;
};

static json_t *backend_json(const struct xm_lb_backend_info *bi)
{
	char a[XM_ADDR_STRLEN], ep[XM_ADDR_STRLEN + 10];

	xm_addr_str(bi->be.family, &bi->be.addr, a, sizeof(a));
	snprintf(ep, sizeof(ep), bi->be.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, bi->be.port);
	return json_pack("{s:i, s:s, s:s, s:f, s:i, s:f}", "id", (int)bi->id, "backend", ep,
			 "cluster", bi->cluster, "weight", bi->weight, "slots", (int)bi->slots,
			 "share", (double)bi->slots / XM_LB_SLOTS);
}

static int add_backend(const struct xm_lb_backend_info *bi, void *arg)
{
	struct xm_lb_backend_info *r = ctl_rows_push(arg);

	if (!r)
		return -ENOMEM;
	*r = *bi;
	return 0;
}

/*
 * Where each service came from (file, cluster, control, adopted), its
 * Kubernetes Service and EndpointSlice generation: the run file the agent
 * rewrites on every apply (user/agent/svcsources.h), readable while it is down.
 */
static json_t *sources_by_service(void)
{
	json_t *by = json_object(), *root, *v;
	char path[PATH_MAX];
	size_t i;

	if (xm_run_path(path, sizeof(path), xm_pin_root, "services.json"))
		return by;
	root = json_load_file(path, 0, NULL);
	json_array_foreach(json_object_get(root, "services"), i, v) {
		const char *k = json_string_value(json_object_get(v, "service"));

		if (k)
			json_object_set(by, k, v);
	}
	json_decref(root);
	return by;
}

static void svc_rows_free(struct ctl_rows *rows)
{
	struct svc_row *r = rows->v;

	for (size_t i = 0; i < rows->n; i++) {
		ctl_rows_free(&r[i].backends);
		json_decref(r[i].src);
	}
	ctl_rows_free(rows);
}

/* Services with their backends; only the one at key when key is set. 0, or -1 after p_err(). */
static int services_read(struct xm_lb_maps *m, const struct xm_lb_svc_key *only,
			 struct ctl_rows *rows)
{
	struct xm_lb_svc_key key, next, *prev = NULL;
	json_t *src = sources_by_service();
	int err = 0;

	*rows = CTL_ROWS(struct svc_row);
	while (!err && bpf_map_get_next_key(m->svc, prev, &next) == 0) {
		struct xm_lb_svc v;
		struct svc_row *r;

		key = next;
		prev = &key;
		if (only && memcmp(only, &key, sizeof(key)))
			continue;
		if (bpf_map_lookup_elem(m->svc, &key, &v))
			continue;
		r = ctl_rows_push(rows);
		if (!r) {
			err = -ENOMEM;
			break;
		}
		r->key = key;
		r->v = v;
		r->backends = CTL_ROWS(struct xm_lb_backend_info);
		xm_lb_svc_key_str(&key, r->ks, sizeof(r->ks));
		xm_addr_str(key.family, &key.vip, r->vip, sizeof(r->vip));
		r->src = json_incref(json_object_get(src, r->ks));
		r->source = json_string_value(json_object_get(r->src, "source"));
		r->k8s = json_string_value(json_object_get(r->src, "k8s"));
		r->note = json_string_value(json_object_get(r->src, "note"));
		r->generation = json_integer_value(json_object_get(r->src, "generation"));
		err = xm_lb_backend_foreach(m, &key, add_backend, &r->backends);
	}
	json_decref(src);
	if (err) {
		svc_rows_free(rows);
		if (err != -ENOMEM)
			p_err("read the backends: %s", strerror(-err));
		return -1;
	}
	return 0;
}

static json_t *service_json(const struct svc_row *r)
{
	const struct xm_lb_backend_info *b = r->backends.v;
	json_t *o, *arr = json_array();

	for (size_t i = 0; i < r->backends.n; i++)
		json_array_append_new(arr, backend_json(&b[i]));
	o = json_pack("{s:s, s:s, s:i, s:s, s:i, s:i, s:i, s:o}", "service", r->ks, "vip", r->vip,
		      "port", (int)r->key.port, "protocol", xm_lb_proto_str(r->key.proto), "id",
		      (int)r->v.id, "active_table", (int)r->v.active, "backend_count",
		      (int)r->v.backend_count, "backends", arr);
	/* the sources file's fields (source, k8s, generation, note...) as the agent wrote them */
	json_object_update_missing(o, r->src);
	return o;
}

static json_t *services_json(const struct ctl_rows *rows)
{
	const struct svc_row *r = rows->v;
	json_t *arr = json_array();

	for (size_t i = 0; i < rows->n; i++)
		json_array_append_new(arr, service_json(&r[i]));
	return arr;
}

static void service_list_plain(const struct ctl_rows *rows)
{
	const struct svc_row *r = rows->v;

	printf("%-44s %-5s %-6s %-9s %-11s %-8s %s\n", "SERVICE", "ID", "TABLE", "BACKENDS",
	       "SELECTABLE", "SOURCE", "KUBERNETES (GENERATION)");
	for (size_t i = 0; i < rows->n; i++) {
		char gen[32] = "";

		if (r[i].k8s)
			snprintf(gen, sizeof(gen), " (%lld)", r[i].generation);
		printf("%-44s %-5u %-6u %-9zu %-11u %-8s %s%s\n", r[i].ks, (unsigned int)r[i].v.id,
		       (unsigned int)r[i].v.active, r[i].backends.n,
		       (unsigned int)r[i].v.backend_count, r[i].source ?: "-", r[i].k8s ?: "-", gen);
		if (r[i].note && *r[i].note)
			printf("    note: %s\n", r[i].note);
	}
}

static void service_show_plain(const struct svc_row *r)
{
	const struct xm_lb_backend_info *b = r->backends.v;

	printf("service %s  id %u  active table %u  selectable backends %u\n", r->ks,
	       (unsigned int)r->v.id, (unsigned int)r->v.active, (unsigned int)r->v.backend_count);
	printf("  %-5s %-44s %-12s %-10s %-6s %s\n", "ID", "BACKEND", "CLUSTER", "WEIGHT", "SLOTS",
	       "SHARE");
	for (size_t i = 0; i < r->backends.n; i++) {
		char a[XM_ADDR_STRLEN], ep[XM_ADDR_STRLEN + 10];

		xm_addr_str(b[i].be.family, &b[i].be.addr, a, sizeof(a));
		snprintf(ep, sizeof(ep), b[i].be.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a,
			 b[i].be.port);
		printf("  %-5u %-44s %-12s %-10.3f %-6u %.2f%%\n", (unsigned int)b[i].id, ep,
		       b[i].cluster, b[i].weight, (unsigned int)b[i].slots,
		       100.0 * b[i].slots / XM_LB_SLOTS);
	}
}

static int service_list(int argc, char **argv)
{
	struct ctl_rows rows;
	struct xm_lb_maps m;
	int err;

	NO_MORE_ARGS();
	if (ctl_lb_open(&m))
		return -1;
	err = services_read(&m, NULL, &rows);
	xm_lb_maps_close(&m);
	if (err)
		return -1;
	if (xm_out_json)
		xm_out_print_json(services_json(&rows));
	else
		service_list_plain(&rows);
	svc_rows_free(&rows);
	return 0;
}

int ctl_svc_key_arg(const char *s, struct xm_lb_svc_key *key)
{
	if (xm_lb_svc_key_parse(s, key)) {
		p_err("'%s' is not a service: give VIP:PORT, [VIP6]:PORT, optionally /tcp or /udp", s);
		return -1;
	}
	return 0;
}

static int service_show(int argc, char **argv)
{
	struct xm_lb_svc_key key;
	struct xm_lb_maps m;
	struct ctl_rows rows;
	int err;

	REQ_ARGS(1);
	if (ctl_svc_key_arg(argv[0], &key))
		return -1;
	NEXT_ARG();
	NO_MORE_ARGS();
	if (ctl_lb_open(&m))
		return -1;
	err = services_read(&m, &key, &rows);
	xm_lb_maps_close(&m);
	if (err)
		return -1;
	if (rows.n == 0) {
		svc_rows_free(&rows);
		p_err("no service %s", argv[-1]);
		return -1;
	}
	if (xm_out_json)
		xm_out_print_json(service_json(rows.v));
	else
		service_show_plain(rows.v);
	svc_rows_free(&rows);
	return 0;
}

/*
 * service add JSON: a service object as in the config file. A key twice is
 * refused here, as in the file and on the socket: parsed leniently, the
 * second "port" replaced the first before the agent could see both.
 */
static int service_add(int argc, char **argv)
{
	json_error_t je;
	json_t *s;

	REQ_ARGS(1);
	s = json_loads(argv[0], JSON_REJECT_DUPLICATES, &je);
	if (!s) {
		p_err("service JSON: %d:%d: %s", je.line, je.column, je.text);
		return -1;
	}
	NEXT_ARG();
	NO_MORE_ARGS();
	return ctl_agent_request(json_pack("{s:s, s:o}", "cmd", "service-add", "service", s));
}

static int service_del(int argc, char **argv)
{
	struct xm_lb_svc_key key;

	REQ_ARGS(1);
	if (ctl_svc_key_arg(argv[0], &key))
		return -1;
	NEXT_ARG();
	NO_MORE_ARGS();
	return ctl_agent_request(json_pack("{s:s, s:s}", "cmd", "service-del", "service", argv[-1]));
}

static int service_reload(int argc, char **argv)
{
	NO_MORE_ARGS();
	return ctl_agent_request(json_pack("{s:s}", "cmd", "reload"));
}

static int service_help(int argc, char **argv)
{
	ctl_help(
		"Usage: xmeshctl service { list | show SERVICE | add JSON | del SERVICE | reload }\n"
		"  SERVICE := VIP:PORT[/tcp|/udp] (IPv6: [VIP]:PORT)\n"
		"  list, show      read the pinned maps (work while the agent is down)\n"
		"  add JSON        add or replace a service, JSON as in the config's \"services\"\n"
		"  del SERVICE     stop balancing SERVICE (live connections keep their backend)\n"
		"  reload          make the agent re-read its config file\n"
		"  add/del/reload go through the agent's control socket and last until the\n"
		"  next reload of the config file.\n");
	return 0;
}

int do_service(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "list", service_list },
		{ "show", service_show },
		{ "add", service_add },
		{ "del", service_del },
		{ "reload", service_reload },
		{ "help", service_help },
		{}
	};

	return cmd_select(cmds, argc, argv, service_help);
}
