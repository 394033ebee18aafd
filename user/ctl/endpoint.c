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

static int endpoint_json(const struct xm_endpoint_key *k, const struct xm_endpoint *ep, void *arg)
{
	char ip[XM_ADDR_STRLEN];
	json_t *o;

	o = json_pack("{s:s, s:I, s:i, s:i, s:s, s:s}", "ip",
		      xm_addr_str(k->family, &k->addr, ip, sizeof(ip)), "netns_cookie",
		      (json_int_t)ep->netns_cookie, "host_ifindex", (int)ep->host_ifindex,
		      "pod_ifindex", (int)ep->pod_ifindex, "owner", ep->owner, "source",
		      ep->flags & XM_EP_F_CNI ? "cni" : "manual");
	json_array_append_new(arg, o);
	return 0;
}

static void endpoint_plain(json_t *v)
{
	size_t i;
	json_t *e;

	printf("%-40s %-20s %-8s %-6s %s\n", "IP", "NETNS-COOKIE", "IFINDEX", "SOURCE", "OWNER");
	json_array_foreach(v, i, e) {
		printf("%-40s %-20" JSON_INTEGER_FORMAT " %-8" JSON_INTEGER_FORMAT " %-6s %s\n",
		       json_string_value(json_object_get(e, "ip")),
		       json_integer_value(json_object_get(e, "netns_cookie")),
		       json_integer_value(json_object_get(e, "host_ifindex")),
		       json_string_value(json_object_get(e, "source")),
		       json_string_value(json_object_get(e, "owner")));
	}
}

static int endpoint_list(int argc, char **argv)
{
	json_t *arr;
	int err;

	NO_MORE_ARGS();
	arr = json_array();
	err = xm_endpoint_foreach(xm_pin_root, endpoint_json, arr);
	if (err) {
		json_decref(arr);
		if (err == -ENOENT)
			ctl_map_open("xm_endpoints"); /* prints why */
		else
			p_err("list endpoints: %s", strerror(-err));
		return -1;
	}
	ctl_print(arr, endpoint_plain);
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
