// SPDX-License-Identifier: MIT
/* xmeshctl sock: the sockets in the redirect map. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

/* "port N" or "netns PATH" into a skip key. */
static int skip_key_parse(int argc, char **argv, struct xm_redirect_skip_key *k)
{
	char *end;
	long port;

	memset(k, 0, sizeof(*k));
	if (argc != 2 || (strcmp(argv[0], "port") && strcmp(argv[0], "netns"))) {
		p_err("give 'port N' or 'netns NETNS_PATH'; see 'xmeshctl sock help'");
		return -1;
	}
	if (!strcmp(argv[0], "port")) {
		port = strtol(argv[1], &end, 10);
		if (*end || port < 1 || port > 65535) {
			p_err("port '%s': give a TCP port 1..65535", argv[1]);
			return -1;
		}
		k->port = port;
		return 0;
	}
	return ctl_netns_cookie(argv[1], &k->netns_cookie);
}

static void skip_plain(json_t *v)
{
	size_t i;
	json_t *e;

	printf("%-10s %s\n", "KIND", "VALUE");
	json_array_foreach(v, i, e) {
		json_t *port = json_object_get(e, "port"), *ns = json_object_get(e, "netns_cookie");

		if (port && ns)
			printf("%-10s %" JSON_INTEGER_FORMAT " port %" JSON_INTEGER_FORMAT "\n",
			       "pod-port", json_integer_value(ns), json_integer_value(port));
		else if (port)
			printf("%-10s %" JSON_INTEGER_FORMAT "\n", "port", json_integer_value(port));
		else
			printf("%-10s %" JSON_INTEGER_FORMAT "%s\n", "netns", json_integer_value(ns),
			       json_is_true(json_object_get(e, "ports_only")) ? " (pod-port entries only)"
									: "");
	}
}

/* sock skip list | add (port N | netns PATH) | del (port N | netns PATH) */
static int sock_skip(int argc, char **argv)
{
	struct xm_redirect_skip_key k, next;
	const char *verb = argc ? argv[0] : "list";
	void *prev = NULL;
	__u32 flags = 0;
	json_t *arr;
	int fd, err = 0;

	fd = ctl_map_open("xm_redirect_skip");
	if (fd < 0)
		return -1;
	if (argc)
		NEXT_ARG();
	if (is_prefix(verb, "list")) {
		if (argc) {
			close(fd);
			NO_MORE_ARGS();
		}
		arr = json_array();
		while (bpf_map_get_next_key(fd, prev, &next) == 0) {
			__u32 f = 0;
			json_t *o = json_object();

			k = next;
			prev = &k;
			bpf_map_lookup_elem(fd, &k, &f);
			/* netns_cookie and port both set: a pod's annotation (xmesh-cni) */
			if (k.netns_cookie)
				json_object_set_new(o, "netns_cookie", json_integer(k.netns_cookie));
			if (k.port)
				json_object_set_new(o, "port", json_integer(k.port));
			if (!k.port && (f & XM_REDIRECT_SKIP_F_PORTS))
				json_object_set_new(o, "ports_only", json_true());
			json_array_append_new(arr, o);
		}
		close(fd);
		ctl_print(arr, skip_plain);
		return 0;
	}
	if (!is_prefix(verb, "add") && !is_prefix(verb, "delete")) {
		close(fd);
		p_err("what is '%s'? use list, add or del", verb);
		return -1;
	}
	if (skip_key_parse(argc, argv, &k)) {
		close(fd);
		return -1;
	}
	if (is_prefix(verb, "add"))
		err = bpf_map_update_elem(fd, &k, &flags, BPF_ANY) ? -errno : 0;
	else if (bpf_map_delete_elem(fd, &k))
		err = errno == ENOENT ? 0 : -errno;
	close(fd);
	if (err) {
		p_err("%s: %s%s", verb, strerror(-err),
		      err == -E2BIG ? " (opt-out map full)" : "");
		return -1;
	}
	return 0;
}

static int sock_help(int argc, char **argv)
{
	ctl_help( "Usage: xmeshctl sock { list | skip [ACTION] }\n"
			"       ACTION := list | add|del port N | add|del netns NETNS_PATH\n"
			"  Sockets in the redirect map. SCOPE is the netns cookie for loopback\n"
			"  pairs and 0 for pod addresses. JSON adds local_isn/remote_isn, the\n"
			"  initial sequence numbers that make each connection's key unique.\n"
			"  skip: opt connections out of redirection: every connection with local\n"
			"  or remote port N, or every connection of a pod's network namespace.\n"
			"  Applies to connections established afterwards; open ones keep their\n"
			"  path. See docs/redirect-compat.md for the symptoms it avoids.\n"
			"  pod-port entries come from a pod's xmesh.io/redirect-skip-ports\n"
			"  annotation (xmesh-cni); the pod's netns entry then says ports only.\n");
	return 0;
}

int do_sock(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "list", sock_list },
		{ "skip", sock_skip },
		{ "help", sock_help },
		{}
	};

	return cmd_select(cmds, argc, argv, sock_help);
}
