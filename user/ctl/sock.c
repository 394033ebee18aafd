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
#include "numparse.h"

/* One row of `sock list`: the redirect map's key and the socket's cookie. */
struct sock_row {
	struct xm_sock_key key;
	__u64 cookie;
	char local[XM_ADDR_STRLEN], remote[XM_ADDR_STRLEN];
};

static json_t *sock_json(const struct sock_row *rows, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct sock_row *r = &rows[i];

		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:i, s:s, s:i, s:I, s:I, s:I, s:I}", "family",
				       r->key.family == AF_INET ? "inet" : "inet6", "local", r->local,
				       "local_port", r->key.local_port, "remote", r->remote,
				       "remote_port", r->key.remote_port, "scope",
				       (json_int_t)r->key.scope, "local_isn",
				       (json_int_t)r->key.local_isn, "remote_isn",
				       (json_int_t)r->key.remote_isn, "cookie", (json_int_t)r->cookie));
	}
	return arr;
}

static void sock_plain(const struct sock_row *rows, size_t n)
{
	printf("%-46s %-46s %-20s %s\n", "LOCAL", "REMOTE", "SCOPE", "COOKIE");
	for (size_t i = 0; i < n; i++) {
		const struct sock_row *r = &rows[i];
		const char *fmt = r->key.family == AF_INET ? "%s:%d" : "[%s]:%d";
		char l[64], rm[64];

		snprintf(l, sizeof(l), fmt, r->local, r->key.local_port);
		snprintf(rm, sizeof(rm), fmt, r->remote, r->key.remote_port);
		printf("%-46s %-46s %-20llu %llu\n", l, rm, (unsigned long long)r->key.scope,
		       (unsigned long long)r->cookie);
	}
}

static int sock_list(int argc, char **argv)
{
	struct ctl_rows rows = CTL_ROWS(struct sock_row);
	struct xm_sock_key key, next;
	void *prev = NULL;
	int fd;

	NO_MORE_ARGS();
	fd = ctl_map_open("xm_socks");
	if (fd < 0)
		return -1;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct sock_row *r;
		__u64 cookie = 0;

		key = next;
		prev = &key;
		/* A SOCKHASH lookup from user space returns the socket cookie. */
		if (bpf_map_lookup_elem(fd, &key, &cookie))
			continue; /* closed meanwhile */
		r = ctl_rows_push(&rows);
		if (!r) {
			close(fd);
			ctl_rows_free(&rows);
			return -1;
		}
		r->key = key;
		r->cookie = cookie;
		xm_addr_str(key.family, &key.local, r->local, sizeof(r->local));
		xm_addr_str(key.family, &key.remote, r->remote, sizeof(r->remote));
	}
	close(fd);
	if (xm_out_json)
		xm_out_print_json(sock_json(rows.v, rows.n));
	else
		sock_plain(rows.v, rows.n);
	ctl_rows_free(&rows);
	return 0;
}

/* "port N" or "netns PATH" into a skip key. */
static int skip_key_parse(int argc, char **argv, struct xm_redirect_skip_key *k)
{
	unsigned int port;

	memset(k, 0, sizeof(*k));
	if (argc != 2 || (strcmp(argv[0], "port") && strcmp(argv[0], "netns"))) {
		p_err("give 'port N' or 'netns NETNS_PATH'; see 'xmeshctl sock help'");
		return -1;
	}
	if (!strcmp(argv[0], "port")) {
		if (xm_uint_parse(argv[1], 1, 65535, &port)) {
			p_err("port '%s': give a TCP port 1..65535", argv[1]);
			return -1;
		}
		k->port = port;
		return 0;
	}
	return ctl_netns_cookie(argv[1], &k->netns_cookie);
}

/* A skip entry as read from the map: its key and flags. */
struct skip_row {
	struct xm_redirect_skip_key key;
	__u32 flags;
};

/*
 * A port, a netns cookie, or both: a pod's port from its
 * xmesh.io/redirect-skip-ports annotation (xmesh-cni), whose netns entry then
 * carries XM_REDIRECT_SKIP_F_PORTS (ports only).
 */
static json_t *skip_json(const struct skip_row *rows, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct xm_redirect_skip_key *k = &rows[i].key;
		json_t *o = json_object();

		if (k->netns_cookie)
			json_object_set_new(o, "netns_cookie", json_integer(k->netns_cookie));
		if (k->port)
			json_object_set_new(o, "port", json_integer(k->port));
		if (!k->port && (rows[i].flags & XM_REDIRECT_SKIP_F_PORTS))
			json_object_set_new(o, "ports_only", json_true());
		json_array_append_new(arr, o);
	}
	return arr;
}

static void skip_plain(const struct skip_row *rows, size_t n)
{
	printf("%-10s %s\n", "KIND", "VALUE");
	for (size_t i = 0; i < n; i++) {
		const struct xm_redirect_skip_key *k = &rows[i].key;

		if (k->port && k->netns_cookie)
			printf("%-10s %llu port %u\n", "pod-port",
			       (unsigned long long)k->netns_cookie, (unsigned int)k->port);
		else if (k->port)
			printf("%-10s %u\n", "port", (unsigned int)k->port);
		else
			printf("%-10s %llu%s\n", "netns", (unsigned long long)k->netns_cookie,
			       rows[i].flags & XM_REDIRECT_SKIP_F_PORTS ? " (pod-port entries only)" : "");
	}
}

/* sock skip list | add (port N | netns PATH) | del (port N | netns PATH) */
static int sock_skip(int argc, char **argv)
{
	struct xm_redirect_skip_key k, next;
	const char *verb = argc ? argv[0] : "list";
	struct ctl_rows rows = CTL_ROWS(struct skip_row);
	void *prev = NULL;
	__u32 flags = 0;
	int fd, err = 0;
	bool add;

	if (argc)
		NEXT_ARG();
	/* The arguments first: a typo is named as such, also when no datapath is there. */
	if (!is_prefix(verb, "list") && !is_prefix(verb, "add") && !is_prefix(verb, "delete")) {
		p_err("what is '%s'? use list, add or del", verb);
		return -1;
	}
	if (is_prefix(verb, "list"))
		NO_MORE_ARGS();
	else if (skip_key_parse(argc, argv, &k))
		return -1;
	fd = ctl_map_open("xm_redirect_skip");
	if (fd < 0)
		return -1;
	if (is_prefix(verb, "list")) {
		while (bpf_map_get_next_key(fd, prev, &next) == 0) {
			struct skip_row *r = ctl_rows_push(&rows);

			if (!r) {
				close(fd);
				ctl_rows_free(&rows);
				return -1;
			}
			k = next;
			prev = &k;
			r->key = k;
			r->flags = 0;
			bpf_map_lookup_elem(fd, &k, &r->flags);
		}
		close(fd);
		if (xm_out_json)
			xm_out_print_json(skip_json(rows.v, rows.n));
		else
			skip_plain(rows.v, rows.n);
		ctl_rows_free(&rows);
		return 0;
	}
	add = is_prefix(verb, "add");
	if (add)
		err = bpf_map_update_elem(fd, &k, &flags, BPF_ANY) ? -errno : 0;
	else
		err = bpf_map_delete_elem(fd, &k) ? -errno : 0;
	close(fd);
	/* A del that matches nothing (a mistyped port) must not look like success. */
	if (err == -ENOENT) {
		p_err("%s %s is not opted out; see 'xmeshctl sock skip list'", argv[0], argv[1]);
		return -1;
	}
	if (err) {
		p_err("%s: %s%s", add ? "add" : "del", strerror(-err),
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
			"  path; del of an entry that is not there is an error. See\n"
			"  docs/redirect-compat.md for the symptoms it avoids.\n"
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
