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

static json_t *backend_json(const struct xm_lb_backend_info *bi)
{
	char a[XM_ADDR_STRLEN], ep[XM_ADDR_STRLEN + 10];

	xm_addr_str(bi->be.family, &bi->be.addr, a, sizeof(a));
	snprintf(ep, sizeof(ep), bi->be.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, bi->be.port);
	return json_pack("{s:i, s:s, s:s, s:f, s:i, s:f}", "id", (int)bi->id, "backend", ep,
			 "cluster", bi->cluster, "weight", bi->be.weight_milli / 1000.0, "slots",
			 (int)bi->be.slots, "share", (double)bi->be.slots / XM_LB_SLOTS);
}

static int add_backend(const struct xm_lb_backend_info *bi, void *arg)
{
	json_t *svcs = arg, *s = json_array_get(svcs, json_array_size(svcs) - 1);
	char ks[96];

	xm_lb_svc_key_str(&bi->svc, ks, sizeof(ks));
	if (!s || strcmp(json_string_value(json_object_get(s, "service")), ks)) {
		/* first backend of the next service; services without backends come later */
		return 0;
	}
	json_array_append_new(json_object_get(s, "backends"), backend_json(bi));
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

/* Services with their backends; only the one at key when key is set. */
static json_t *services_json(struct xm_lb_maps *m, const struct xm_lb_svc_key *only)
{
	struct xm_lb_svc_key key, next, *prev = NULL;
	json_t *arr = json_array(), *src = sources_by_service();

	while (bpf_map_get_next_key(m->svc, prev, &next) == 0) {
		struct xm_lb_svc v;
		char ks[96], a[XM_ADDR_STRLEN];

		key = next;
		prev = &key;
		if (only && memcmp(only, &key, sizeof(key)))
			continue;
		if (bpf_map_lookup_elem(m->svc, &key, &v))
			continue;
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:i, s:s, s:i, s:i, s:i, s:[]}", "service",
				       xm_lb_svc_key_str(&key, ks, sizeof(ks)), "vip",
				       xm_addr_str(key.family, &key.vip, a, sizeof(a)), "port",
				       (int)key.port, "protocol", xm_lb_proto_str(key.proto), "id",
				       (int)v.id, "active_table", (int)v.active, "backend_count",
				       (int)v.backend_count, "backends"));
		json_object_update_missing(json_array_get(arr, json_array_size(arr) - 1),
					   json_object_get(src, ks));
		xm_lb_backend_foreach(m, &key, add_backend, arr);
	}
	json_decref(src);
	return arr;
}

static void service_list_plain(json_t *v)
{
	size_t i;
	json_t *s;

	printf("%-44s %-5s %-6s %-9s %-11s %-8s %s\n", "SERVICE", "ID", "TABLE", "BACKENDS",
	       "SELECTABLE", "SOURCE", "KUBERNETES (GENERATION)");
	json_array_foreach(v, i, s) {
		const char *k8s = json_string_value(json_object_get(s, "k8s"));
		const char *note = json_string_value(json_object_get(s, "note"));
		char gen[32] = "";

		if (k8s)
			snprintf(gen, sizeof(gen), " (%lld)",
				 json_integer_value(json_object_get(s, "generation")));
		printf("%-44s %-5lld %-6lld %-9zu %-11lld %-8s %s%s\n",
		       json_string_value(json_object_get(s, "service")),
		       json_integer_value(json_object_get(s, "id")),
		       json_integer_value(json_object_get(s, "active_table")),
		       json_array_size(json_object_get(s, "backends")),
		       json_integer_value(json_object_get(s, "backend_count")),
		       json_string_value(json_object_get(s, "source")) ?: "-", k8s ?: "-", gen);
		if (note && *note)
			printf("    note: %s\n", note);
	}
}

static void service_show_plain(json_t *v)
{
	json_t *s = json_array_get(v, 0), *b;
	size_t i;

	printf("service %s  id %lld  active table %lld  selectable backends %lld\n",
	       json_string_value(json_object_get(s, "service")),
	       json_integer_value(json_object_get(s, "id")),
	       json_integer_value(json_object_get(s, "active_table")),
	       json_integer_value(json_object_get(s, "backend_count")));
	printf("  %-5s %-44s %-12s %-10s %-6s %s\n", "ID", "BACKEND", "CLUSTER", "WEIGHT", "SLOTS",
	       "SHARE");
	json_array_foreach(json_object_get(s, "backends"), i, b)
		printf("  %-5lld %-44s %-12s %-10.3f %-6lld %.2f%%\n",
		       json_integer_value(json_object_get(b, "id")),
		       json_string_value(json_object_get(b, "backend")),
		       json_string_value(json_object_get(b, "cluster")),
		       json_real_value(json_object_get(b, "weight")),
		       json_integer_value(json_object_get(b, "slots")),
		       100 * json_real_value(json_object_get(b, "share")));
}

static int service_list(int argc, char **argv)
{
	struct xm_lb_maps m;

	NO_MORE_ARGS();
	if (ctl_lb_open(&m))
		return -1;
	ctl_print(services_json(&m, NULL), service_list_plain);
	xm_lb_maps_close(&m);
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
	json_t *v;

	REQ_ARGS(1);
	if (ctl_svc_key_arg(argv[0], &key))
		return -1;
	NEXT_ARG();
	NO_MORE_ARGS();
	if (ctl_lb_open(&m))
		return -1;
	v = services_json(&m, &key);
	xm_lb_maps_close(&m);
	if (json_array_size(v) == 0) {
		json_decref(v);
		p_err("no service %s", argv[-1]);
		return -1;
	}
	if (xm_out_json) {
		xm_out_print_json(json_incref(json_array_get(v, 0)));
		json_decref(v);
		return 0;
	}
	ctl_print(v, service_show_plain);
	return 0;
}

/* service add JSON: a service object as in the config file. */
static int service_add(int argc, char **argv)
{
	json_error_t je;
	json_t *s;

	REQ_ARGS(1);
	s = json_loads(argv[0], 0, &je);
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
	fprintf(stderr,
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
