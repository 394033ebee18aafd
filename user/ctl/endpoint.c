// SPDX-License-Identifier: MIT
/* xmeshctl endpoint: which pod addresses live on this node, in which netns. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "addr.h"
#include "ctl.h"
#include "endpoint.h"
#include "sys.h"

/* One row of `endpoint list`: the map's entry as read. */
struct ep_row {
	struct xm_endpoint_key k;
	struct xm_endpoint ep;
	char ip[XM_ADDR_STRLEN];
};

static int endpoint_row(const struct xm_endpoint_key *k, const struct xm_endpoint *ep, void *arg)
{
	struct ep_row *r = ctl_rows_push(arg);

	if (!r)
		return -ENOMEM;
	r->k = *k;
	r->ep = *ep;
	xm_addr_str(k->family, &k->addr, r->ip, sizeof(r->ip));
	return 0;
}

static const char *ep_source(const struct ep_row *r)
{
	return r->ep.flags & XM_EP_F_CNI ? "cni" : "manual";
}

static json_t *endpoint_json(const struct ep_row *rows, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:I, s:i, s:i, s:s, s:s}", "ip",
						     rows[i].ip, "netns_cookie",
						     (json_int_t)rows[i].ep.netns_cookie,
						     "host_ifindex", (int)rows[i].ep.host_ifindex,
						     "pod_ifindex", (int)rows[i].ep.pod_ifindex,
						     "owner", rows[i].ep.owner, "source",
						     ep_source(&rows[i])));
	return arr;
}

static void endpoint_plain(const struct ep_row *rows, size_t n)
{
	printf("%-40s %-20s %-8s %-6s %s\n", "IP", "NETNS-COOKIE", "IFINDEX", "SOURCE", "OWNER");
	for (size_t i = 0; i < n; i++)
		printf("%-40s %-20llu %-8u %-6s %s\n", rows[i].ip,
		       (unsigned long long)rows[i].ep.netns_cookie, (unsigned int)rows[i].ep.host_ifindex,
		       ep_source(&rows[i]), rows[i].ep.owner);
}

static int endpoint_list(int argc, char **argv)
{
	struct ctl_rows rows = CTL_ROWS(struct ep_row);
	int err;

	NO_MORE_ARGS();
	err = xm_endpoint_foreach(xm_pin_root, endpoint_row, &rows);
	if (err) {
		ctl_rows_free(&rows);
		if (err == -ENOENT)
			ctl_map_open("xm_endpoints"); /* prints why */
		else if (err != -ENOMEM)
			p_err("list endpoints: %s", strerror(-err));
		return -1;
	}
	if (xm_out_json)
		xm_out_print_json(endpoint_json(rows.v, rows.n));
	else
		endpoint_plain(rows.v, rows.n);
	ctl_rows_free(&rows);
	return 0;
}

int ctl_netns_cookie(const char *path, __u64 *cookie)
{
	int err = xm_netns_cookie_of_path(path, cookie);

	if (err)
		p_err("netns %s: %s", path,
		      err == -EINVAL ? "not a network namespace (give /var/run/netns/NAME or "
				       "/proc/PID/ns/net)"
				     : strerror(-err));
	return err ? -1 : 0;
}

/* endpoint add IP netns NETNS_PATH */
static int endpoint_add(int argc, char **argv)
{
	struct xm_endpoint ep = { 0 };
	struct xm_addr addr;
	const char *ip;
	__u8 family;
	int err;

	REQ_ARGS(3);
	ip = argv[0];
	if (xm_addr_parse(ip, &family, &addr)) {
		p_err("'%s' is not an IPv4 or IPv6 address", ip);
		return -1;
	}
	if (strcmp(argv[1], "netns")) {
		p_err("expected 'netns NETNS_PATH' after the address, got '%s'", argv[1]);
		return -1;
	}
	NEXT_ARG();
	NEXT_ARG();
	if (ctl_netns_cookie(argv[0], &ep.netns_cookie))
		return -1;
	NEXT_ARG();
	NO_MORE_ARGS();
	snprintf(ep.owner, sizeof(ep.owner), "manual");
	err = xm_endpoint_put(xm_pin_root, family, &addr, &ep);
	if (err) {
		if (err == -ENOENT)
			ctl_map_open("xm_endpoints");
		else
			p_err("add %s: %s%s", ip, strerror(-err),
			      err == -ENOSPC ? " (endpoints map full: remove stale endpoints)" : "");
		return -1;
	}
	if (xm_out_json)
		xm_out_print_json(json_pack("{s:s, s:I}", "added", ip, "netns_cookie",
					    (json_int_t)ep.netns_cookie));
	return 0;
}

static int endpoint_del(int argc, char **argv)
{
	struct xm_addr addr;
	__u8 family;
	int err, fd;

	REQ_ARGS(1);
	if (xm_addr_parse(argv[0], &family, &addr)) {
		p_err("'%s' is not an IPv4 or IPv6 address", argv[0]);
		return -1;
	}
	if (argc > 1) {
		p_err("what is '%s'? see 'help'", argv[1]);
		return -1;
	}
	fd = ctl_map_open("xm_endpoints"); /* tells a missing datapath from a missing key */
	if (fd < 0)
		return -1;
	close(fd);
	err = xm_endpoint_del(xm_pin_root, family, &addr);
	if (err) {
		p_err("%s: %s", argv[0],
		      err == -ENOENT ? "not a registered endpoint" : strerror(-err));
		return -1;
	}
	if (xm_out_json)
		xm_out_print_json(json_pack("{s:s}", "deleted", argv[0]));
	return 0;
}

static int endpoint_help(int argc, char **argv)
{
	ctl_help(
		"Usage: xmeshctl endpoint { list | add IP netns NETNS_PATH | del IP }\n"
		"  Pod addresses of this node. A socket using a pod address is redirected only\n"
		"  if that address is registered to the socket's own netns. The CNI plugin\n"
		"  registers pods; 'add' is for pods it did not create.\n");
	return 0;
}

int do_endpoint(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "list", endpoint_list },
		{ "add", endpoint_add },
		{ "del", endpoint_del },
		{ "help", endpoint_help },
		{}
	};

	return cmd_select(cmds, argc, argv, endpoint_help);
}
