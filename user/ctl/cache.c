// SPDX-License-Identifier: MIT
/*
 * xmeshctl cache: the overlay cache. `list` reads the pinned maps; `flush`
 * bumps the epoch and deletes the entries directly (an operation, not
 * desired state: nothing for the agent to keep), so it works without agent.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "addr.h"
#include "ctl.h"
#include "overlay.h"

static const char *mac_str(const __u8 *m, char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

static const char *proto_str(__u8 p)
{
	return p == 6 ? "tcp" : p == 17 ? "udp" : "?";
}

struct list_ctx {
	json_t *flows, *remote, *local;
	__u32 epoch;
};

static int flow_json(const struct xm_ovl_flow_key *k, const struct xm_ovl_flow *f, void *arg)
{
	struct list_ctx *c = arg;
	char l[XM_ADDR_STRLEN], r[XM_ADDR_STRLEN];
	const char *state;

	if (f->epoch != c->epoch)
		state = "stale"; /* from before a flush: never used again */
	else if ((f->seen & XM_OVL_SEEN_BOTH) == XM_OVL_SEEN_BOTH)
		state = "cached";
	else
		state = f->seen & XM_OVL_SEEN_OUT ? "seen-out" : "seen-in";
	json_array_append_new(c->flows,
			      json_pack("{s:s, s:s, s:i, s:s, s:i, s:s}", "proto", proto_str(k->proto),
					"local", xm_addr_str(k->family, &k->local, l, sizeof(l)),
					"local_port", k->local_port, "remote",
					xm_addr_str(k->family, &k->remote, r, sizeof(r)),
					"remote_port", k->remote_port, "state", state));
	return 0;
}

static int remote_json(const struct xm_ovl_addr_key *k, const struct xm_ovl_remote *rm, void *arg)
{
	struct list_ctx *c = arg;
	char a[XM_ADDR_STRLEN], n[XM_ADDR_STRLEN], s[XM_ADDR_STRLEN], m1[18], m2[18];

	json_array_append_new(
		c->remote,
		json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:i}", "pod",
			  xm_addr_str(k->family, &k->addr, a, sizeof(a)), "node",
			  xm_addr_str(rm->outer_family, &rm->outer_daddr, n, sizeof(n)), "via",
			  xm_addr_str(rm->outer_family, &rm->outer_saddr, s, sizeof(s)), "vni",
			  (int)rm->vni, "ifindex", (int)rm->ifindex, "node_mac",
			  mac_str(rm->hdr, m1, sizeof(m1)), "overlay_mac",
			  mac_str(rm->hdr + XM_OVL_ENCAP4_LEN - 14, m2, sizeof(m2)), "udp_port",
			  (int)((rm->hdr[14 + 20 + 2] << 8) | rm->hdr[14 + 20 + 3])));
	return 0;
}

static int local_json(const struct xm_ovl_addr_key *k, const struct xm_ovl_local *lo, void *arg)
{
	struct list_ctx *c = arg;
	char a[XM_ADDR_STRLEN], m1[18], m2[18];

	json_array_append_new(c->local,
			      json_pack("{s:s, s:i, s:s, s:s}", "pod",
					xm_addr_str(k->family, &k->addr, a, sizeof(a)), "ifindex",
					(int)lo->ifindex, "pod_mac",
					mac_str(lo->pod_mac, m1, sizeof(m1)), "gateway_mac",
					mac_str(lo->gw_mac, m2, sizeof(m2))));
	return 0;
}

static void cache_plain(json_t *v)
{
	json_t *e;
	size_t i;

	printf("flows (epoch %" JSON_INTEGER_FORMAT "):\n",
	       json_integer_value(json_object_get(v, "epoch")));
	printf("  %-5s %-22s %-22s %s\n", "PROTO", "LOCAL", "REMOTE", "STATE");
	json_array_foreach(json_object_get(v, "flows"), i, e) {
		char l[64], r[64];

		const char *la = json_string_value(json_object_get(e, "local"));
		const char *ra = json_string_value(json_object_get(e, "remote"));
		bool v6 = strchr(la, ':') != NULL;

		snprintf(l, sizeof(l), v6 ? "[%s]:%" JSON_INTEGER_FORMAT : "%s:%" JSON_INTEGER_FORMAT,
			 la, json_integer_value(json_object_get(e, "local_port")));
		snprintf(r, sizeof(r), v6 ? "[%s]:%" JSON_INTEGER_FORMAT : "%s:%" JSON_INTEGER_FORMAT,
			 ra, json_integer_value(json_object_get(e, "remote_port")));
		printf("  %-5s %-22s %-22s %s\n", json_string_value(json_object_get(e, "proto")), l,
		       r, json_string_value(json_object_get(e, "state")));
	}
	printf("remote pods (outer headers):\n");
	printf("  %-16s %-16s %-6s %-18s %s\n", "POD", "NODE", "VNI", "NODE-MAC", "OVERLAY-MAC");
	json_array_foreach(json_object_get(v, "remote"), i, e)
		printf("  %-16s %-16s %-6" JSON_INTEGER_FORMAT " %-18s %s\n",
		       json_string_value(json_object_get(e, "pod")),
		       json_string_value(json_object_get(e, "node")),
		       json_integer_value(json_object_get(e, "vni")),
		       json_string_value(json_object_get(e, "node_mac")),
		       json_string_value(json_object_get(e, "overlay_mac")));
	printf("local pods (delivery):\n");
	printf("  %-16s %-8s %-18s %s\n", "POD", "IFINDEX", "POD-MAC", "GATEWAY-MAC");
	json_array_foreach(json_object_get(v, "local"), i, e)
		printf("  %-16s %-8" JSON_INTEGER_FORMAT " %-18s %s\n",
		       json_string_value(json_object_get(e, "pod")),
		       json_integer_value(json_object_get(e, "ifindex")),
		       json_string_value(json_object_get(e, "pod_mac")),
		       json_string_value(json_object_get(e, "gateway_mac")));
}

static int no_cache(int err)
{
	if (err == -ENOENT)
		p_err("no overlay cache at %s: is xmesh-agent running with --overlay-dev, "
		      "or is --pin-root right?", xm_pin_root);
	else
		p_err("read overlay cache: %s", strerror(-err));
	return -1;
}

static int cache_list(int argc, char **argv)
{
	struct list_ctx c = {};
	struct xm_ovl_cfg cfg;
	json_t *o;
	int err;

	NO_MORE_ARGS();
	err = xm_overlay_cfg_read(xm_pin_root, &cfg);
	if (err)
		return no_cache(err);
	c.epoch = cfg.epoch;
	c.flows = json_array();
	c.remote = json_array();
	c.local = json_array();
	o = json_pack("{s:i, s:b, s:o, s:o, s:o}", "epoch", (int)cfg.epoch, "enabled",
		      cfg.enabled != 0, "flows", c.flows, "remote", c.remote, "local", c.local);
	err = xm_overlay_foreach_flow(xm_pin_root, flow_json, &c);
	if (!err)
		err = xm_overlay_foreach_remote(xm_pin_root, remote_json, &c);
	if (!err)
		err = xm_overlay_foreach_local(xm_pin_root, local_json, &c);
	if (err) {
		json_decref(o);
		return no_cache(err);
	}
	ctl_print(o, cache_plain);
	return 0;
}

static void flush_plain(json_t *v)
{
	printf("flushed %" JSON_INTEGER_FORMAT " entries\n",
	       json_integer_value(json_object_get(v, "removed")));
}

static int cache_flush(int argc, char **argv)
{
	int n;

	NO_MORE_ARGS();
	n = xm_overlay_flush(xm_pin_root, true);
	if (n < 0)
		return no_cache(n);
	ctl_print(json_pack("{s:i}", "removed", n), flush_plain);
	return 0;
}

static int cache_help(int argc, char **argv)
{
	ctl_help(
		"Usage: xmeshctl cache { list | flush }\n"
		"  list   flows (cached = seen both ways by the slow path), outer headers\n"
		"         learned per remote pod, deliveries learned per local pod\n"
		"  flush  every flow back to the slow path now; headers relearned\n");
	return 0;
}

int do_cache(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "list", cache_list },
		{ "flush", cache_flush },
		{ "help", cache_help },
		{}
	};

	return cmd_select(cmds, argc, argv, cache_help);
}
