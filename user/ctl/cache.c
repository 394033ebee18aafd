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

/* The cache as read: rows of each map, copied; both printers are fed from them. */
struct flow_row {
	struct xm_ovl_flow_key k;
	const char *state;
	char local[XM_ADDR_STRLEN], remote[XM_ADDR_STRLEN];
};

struct remote_row {
	char pod[XM_ADDR_STRLEN], node[XM_ADDR_STRLEN], via[XM_ADDR_STRLEN];
	char node_mac[18], overlay_mac[18];
	__u32 vni, ifindex;
	int udp_port;
};

struct local_row {
	char pod[XM_ADDR_STRLEN], pod_mac[18], gateway_mac[18];
	__u32 ifindex;
};

struct list_ctx {
	struct ctl_rows flows, remote, local;
	__u32 epoch, tmpl_gen;
	bool enabled;
};

static int flow_row(const struct xm_ovl_flow_key *k, const struct xm_ovl_flow *f, void *arg)
{
	struct list_ctx *c = arg;
	struct flow_row *r = ctl_rows_push(&c->flows);

	if (!r)
		return -ENOMEM;
	if (f->epoch != c->epoch)
		r->state = "stale"; /* from before a flush: never used again */
	else if ((f->seen & XM_OVL_SEEN_BOTH) == XM_OVL_SEEN_BOTH &&
		 (!f->ul_ifindex || f->tmpl_gen != c->tmpl_gen))
		r->state = "relearn"; /* outer header dropped: its next slow-path packet */
	else if ((f->seen & XM_OVL_SEEN_BOTH) == XM_OVL_SEEN_BOTH)
		r->state = "cached";
	else
		r->state = f->seen & XM_OVL_SEEN_OUT ? "seen-out" : "seen-in";
	r->k = *k;
	xm_addr_str(k->family, &k->local, r->local, sizeof(r->local));
	xm_addr_str(k->family, &k->remote, r->remote, sizeof(r->remote));
	return 0;
}

static int remote_row(const struct xm_ovl_addr_key *k, const struct xm_ovl_remote *rm, void *arg)
{
	struct list_ctx *c = arg;
	struct remote_row *r = ctl_rows_push(&c->remote);

	if (!r)
		return -ENOMEM;
	xm_addr_str(k->family, &k->addr, r->pod, sizeof(r->pod));
	xm_addr_str(rm->outer_family, &rm->outer_daddr, r->node, sizeof(r->node));
	xm_addr_str(rm->outer_family, &rm->outer_saddr, r->via, sizeof(r->via));
	r->vni = rm->vni;
	r->ifindex = rm->ifindex;
	mac_str(rm->hdr, r->node_mac, sizeof(r->node_mac));
	mac_str(rm->hdr + XM_OVL_ENCAP4_LEN - 14, r->overlay_mac, sizeof(r->overlay_mac));
	r->udp_port = (rm->hdr[14 + 20 + 2] << 8) | rm->hdr[14 + 20 + 3];
	return 0;
}

static int local_row(const struct xm_ovl_addr_key *k, const struct xm_ovl_local *lo, void *arg)
{
	struct list_ctx *c = arg;
	struct local_row *r = ctl_rows_push(&c->local);

	if (!r)
		return -ENOMEM;
	xm_addr_str(k->family, &k->addr, r->pod, sizeof(r->pod));
	r->ifindex = lo->ifindex;
	mac_str(lo->pod_mac, r->pod_mac, sizeof(r->pod_mac));
	mac_str(lo->gw_mac, r->gateway_mac, sizeof(r->gateway_mac));
	return 0;
}

static json_t *cache_json(const struct list_ctx *c)
{
	const struct flow_row *f = c->flows.v;
	const struct remote_row *rm = c->remote.v;
	const struct local_row *lo = c->local.v;
	json_t *flows = json_array(), *remote = json_array(), *local = json_array();

	for (size_t i = 0; i < c->flows.n; i++)
		json_array_append_new(flows, json_pack("{s:s, s:s, s:i, s:s, s:i, s:s}", "proto",
						       proto_str(f[i].k.proto), "local", f[i].local,
						       "local_port", f[i].k.local_port, "remote",
						       f[i].remote, "remote_port", f[i].k.remote_port,
						       "state", f[i].state));
	for (size_t i = 0; i < c->remote.n; i++)
		json_array_append_new(remote, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:i}",
							"pod", rm[i].pod, "node", rm[i].node, "via",
							rm[i].via, "vni", (int)rm[i].vni, "ifindex",
							(int)rm[i].ifindex, "node_mac", rm[i].node_mac,
							"overlay_mac", rm[i].overlay_mac, "udp_port",
							rm[i].udp_port));
	for (size_t i = 0; i < c->local.n; i++)
		json_array_append_new(local, json_pack("{s:s, s:i, s:s, s:s}", "pod", lo[i].pod,
						       "ifindex", (int)lo[i].ifindex, "pod_mac",
						       lo[i].pod_mac, "gateway_mac", lo[i].gateway_mac));
	return json_pack("{s:i, s:b, s:o, s:o, s:o}", "epoch", (int)c->epoch, "enabled", c->enabled,
			 "flows", flows, "remote", remote, "local", local);
}

static void cache_plain(const struct list_ctx *c)
{
	const struct flow_row *f = c->flows.v;
	const struct remote_row *rm = c->remote.v;
	const struct local_row *lo = c->local.v;

	printf("flows (epoch %d):\n", (int)c->epoch);
	printf("  %-5s %-22s %-22s %s\n", "PROTO", "LOCAL", "REMOTE", "STATE");
	for (size_t i = 0; i < c->flows.n; i++) {
		const char *fmt = f[i].k.family == AF_INET6 ? "[%s]:%d" : "%s:%d";
		char l[64], r[64];

		snprintf(l, sizeof(l), fmt, f[i].local, f[i].k.local_port);
		snprintf(r, sizeof(r), fmt, f[i].remote, f[i].k.remote_port);
		printf("  %-5s %-22s %-22s %s\n", proto_str(f[i].k.proto), l, r, f[i].state);
	}
	printf("remote pods (outer headers):\n");
	printf("  %-16s %-16s %-6s %-18s %s\n", "POD", "NODE", "VNI", "NODE-MAC", "OVERLAY-MAC");
	for (size_t i = 0; i < c->remote.n; i++)
		printf("  %-16s %-16s %-6d %-18s %s\n", rm[i].pod, rm[i].node, (int)rm[i].vni,
		       rm[i].node_mac, rm[i].overlay_mac);
	printf("local pods (delivery):\n");
	printf("  %-16s %-8s %-18s %s\n", "POD", "IFINDEX", "POD-MAC", "GATEWAY-MAC");
	for (size_t i = 0; i < c->local.n; i++)
		printf("  %-16s %-8d %-18s %s\n", lo[i].pod, (int)lo[i].ifindex, lo[i].pod_mac,
		       lo[i].gateway_mac);
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
	struct list_ctx c = { .flows = CTL_ROWS(struct flow_row),
			      .remote = CTL_ROWS(struct remote_row),
			      .local = CTL_ROWS(struct local_row) };
	struct xm_ovl_cfg cfg;
	int err;

	NO_MORE_ARGS();
	err = xm_overlay_cfg_read(xm_pin_root, &cfg);
	if (err)
		return no_cache(err);
	c.epoch = cfg.epoch;
	c.tmpl_gen = cfg.tmpl_gen;
	c.enabled = cfg.enabled != 0;
	err = xm_overlay_foreach_flow(xm_pin_root, flow_row, &c);
	if (!err)
		err = xm_overlay_foreach_remote(xm_pin_root, remote_row, &c);
	if (!err)
		err = xm_overlay_foreach_local(xm_pin_root, local_row, &c);
	if (!err && xm_out_json)
		xm_out_print_json(cache_json(&c));
	else if (!err)
		cache_plain(&c);
	ctl_rows_free(&c.flows);
	ctl_rows_free(&c.remote);
	ctl_rows_free(&c.local);
	if (err == -ENOMEM)
		return -1; /* said by ctl_rows_push */
	return err ? no_cache(err) : 0;
}

static int cache_flush(int argc, char **argv)
{
	int n;

	NO_MORE_ARGS();
	n = xm_overlay_flush(xm_pin_root, true);
	if (n < 0)
		return no_cache(n);
	if (xm_out_json)
		xm_out_print_json(json_pack("{s:i}", "removed", n));
	else
		printf("flushed %d entries\n", n);
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
