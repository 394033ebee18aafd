// SPDX-License-Identifier: MIT
/* xmeshctl sock: the sockets in the redirect map. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <xmesh/redirect.h>
#include "addr.h"
#include "ctl.h"

static void sock_plain(json_t *v)
{
	size_t i;
	json_t *e;

	printf("%-46s %-46s %-20s %s\n", "LOCAL", "REMOTE", "SCOPE", "COOKIE");
	json_array_foreach(v, i, e) {
		char l[64], r[64];
		const char *fam = json_string_value(json_object_get(e, "family"));
		const char *fmt = !strcmp(fam, "inet6") ? "[%s]:%d" : "%s:%d";

		snprintf(l, sizeof(l), fmt, json_string_value(json_object_get(e, "local")),
			 (int)json_integer_value(json_object_get(e, "local_port")));
		snprintf(r, sizeof(r), fmt, json_string_value(json_object_get(e, "remote")),
			 (int)json_integer_value(json_object_get(e, "remote_port")));
		printf("%-46s %-46s %-20" JSON_INTEGER_FORMAT " %" JSON_INTEGER_FORMAT "\n", l, r,
		       json_integer_value(json_object_get(e, "scope")),
		       json_integer_value(json_object_get(e, "cookie")));
	}
}

static int sock_list(int argc, char **argv)
{
	struct xm_sock_key key, next;
	void *prev = NULL;
	json_t *arr;
	int fd;

	NO_MORE_ARGS();
	fd = ctl_map_open("xm_socks");
	if (fd < 0)
		return -1;
	arr = json_array();
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		char l[XM_ADDR_STRLEN], r[XM_ADDR_STRLEN];
		__u64 cookie = 0;

		key = next;
		prev = &key;
		/* A SOCKHASH lookup from user space returns the socket cookie. */
		if (bpf_map_lookup_elem(fd, &key, &cookie))
			continue; /* closed meanwhile */
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:i, s:s, s:i, s:I, s:I, s:I, s:I}", "family",
				       key.family == AF_INET ? "inet" : "inet6", "local",
				       xm_addr_str(key.family, &key.local, l, sizeof(l)), "local_port",
				       key.local_port, "remote",
				       xm_addr_str(key.family, &key.remote, r, sizeof(r)),
				       "remote_port", key.remote_port, "scope", (json_int_t)key.scope,
				       "local_isn", (json_int_t)key.local_isn, "remote_isn",
				       (json_int_t)key.remote_isn, "cookie", (json_int_t)cookie));
	}
	close(fd);
	ctl_print(arr, sock_plain);
	return 0;
}

static int sock_help(int argc, char **argv)
{
	fprintf(stderr, "Usage: xmeshctl sock list\n"
			"  Sockets in the redirect map. SCOPE is the netns cookie for loopback\n"
			"  pairs and 0 for pod addresses. JSON adds local_isn/remote_isn, the\n"
			"  initial sequence numbers that make each connection's key unique.\n");
	return 0;
}

int do_sock(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "list", sock_list },
		{ "help", sock_help },
		{}
	};

	return cmd_select(cmds, argc, argv, sock_help);
}
