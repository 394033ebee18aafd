// SPDX-License-Identifier: MIT
/* xmeshctl: inspect and steer the xmesh datapath of this node. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "version.h"
#include "ctl.h"
#include "pin.h"

const char *xm_pin_root = XM_PIN_ROOT_DEFAULT;

static int do_help(int argc, char **argv)
{
	ctl_help(
		"Usage: xmeshctl [OPTIONS] OBJECT COMMAND [ARGS]\n"
		"       xmeshctl OBJECT help\n"
		"\n"
		"OBJECT := { status | stats | endpoint | sock | service | backend | cache | top | prog }\n"
		"OPTIONS := { -j|--json | -p|--pretty | --pin-root DIR | -V|--version | -h|--help }\n"
		"\n"
		"  status                          what is loaded and attached, map fill levels\n"
		"  stats                           datapath counters\n"
		"  endpoint list | add IP netns NETNS_PATH | del IP\n"
		"  sock list | skip [list | add|del port N | add|del netns NETNS_PATH]\n"
		"                                  sockets in the redirect map; opt connections out of it\n"
		"  service list | show VIP:PORT | add JSON | del VIP:PORT | reload\n"
		"  backend list [VIP:PORT] | set VIP:PORT ADDR:PORT weight W\n"
		"  cache list | flush              overlay cache\n"
		"  top                             live per-backend view, refreshed every second\n"
		"  prog list | profile [SECONDS | -- CMD]  per-program BPF run time (ns per run)\n"
		"\n"
		"Commands match by unambiguous prefix: 'xmeshctl e l' is 'endpoint list'.\n"
		"Read commands read the pinned maps (default pin root %s), so they work\n"
		"while the agent is down.\n",
		XM_PIN_ROOT_DEFAULT);
	return 0;
}

static const struct cmd objects[] = {
	{ "help", do_help },
	{ "status", do_status },
	{ "stats", do_stats },
	{ "endpoint", do_endpoint },
	{ "sock", do_sock },
	{ "service", do_service },
	{ "backend", do_backend },
	{ "top", do_top },
	{ "cache", do_cache },
	{ "prog", do_prog },
	{}
};

void ctl_help(const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* In JSON mode help is JSON too: scripts never get prose on stdout. */
	if (xm_out_json)
		xm_out_print_json(json_pack("{s:s}", "help", text));
	else
		fputs(text, stderr);
	free(text);
}

bool is_prefix(const char *pfx, const char *str)
{
	return *pfx && !strncmp(str, pfx, strlen(pfx));
}

int cmd_select(const struct cmd *cmds, int argc, char **argv, int (*help)(int argc, char **argv))
{
	const struct cmd *match = NULL;
	int n = 0;

	if (argc < 1)
		return cmds[0].func(argc, argv);
	for (const struct cmd *c = cmds; c->name; c++) {
		if (!strcmp(argv[0], c->name)) {
			match = c;
			n = 1;
			break;
		}
		if (is_prefix(argv[0], c->name)) {
			match = c;
			n++;
		}
	}
	if (n == 1)
		return match->func(argc - 1, argv + 1);
	if (n > 1) {
		char names[256] = "";

		for (const struct cmd *c = cmds; c->name; c++) {
			if (is_prefix(argv[0], c->name)) {
				strncat(names, names[0] ? ", " : "", sizeof(names) - strlen(names) - 1);
				strncat(names, c->name, sizeof(names) - strlen(names) - 1);
			}
		}
		p_err("'%s' is ambiguous: %s", argv[0], names);
		return -1;
	}
	p_err("what is '%s'? see 'help'", argv[0]);
	if (!xm_out_json && help)
		help(0, argv);
	return -1;
}

int ctl_map_open(const char *name)
{
	int fd = xm_map_open(xm_pin_root, name);

	if (fd == -ENOENT)
		p_err("no xmesh datapath at %s (map %s missing): is xmesh-agent running, "
		      "or is --pin-root right?", xm_pin_root, name);
	else if (fd < 0)
		p_err("open %s/maps/%s: %s%s", xm_pin_root, name, strerror(-fd),
		      fd == -EPERM || fd == -EACCES ? " (run as root)" : "");
	return fd;
}

void *ctl_rows_push(struct ctl_rows *r)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		void *v = realloc(r->v, cap * r->size);

		if (!v) {
			p_err("out of memory for %zu rows", cap);
			return NULL;
		}
		r->v = v;
		r->cap = cap;
	}
	return memset((char *)r->v + r->n++ * r->size, 0, r->size);
}

void ctl_rows_free(struct ctl_rows *r)
{
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "pin-root", required_argument, NULL, 'r' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int opt, at = optind;

	/*
	 * '+': options end at the object, as in bpftool. ':' and opterr = 0:
	 * one error line of ours, in JSON under -j, instead of getopt's prose
	 * followed by a wrong "unknown option" for a missing value.
	 */
	opterr = 0;
	/* at: the element getopt works on (optind moves past it only once it is done) */
	while ((opt = getopt_long(argc, argv, "+:jpr:Vh", opts, NULL)) != -1) {
		bool long_opt = !strncmp(argv[at], "--", 2);

		switch (opt) {
		case 'j': xm_out_json = true; break;
		case 'p': xm_out_json = xm_out_pretty = true; break;
		case 'r': xm_pin_root = optarg; break;
		case 'V': printf("xmeshctl %s (datapath ABI %d)\n", XM_VERSION, XM_ABI_VERSION); return 0;
		case 'h': do_help(0, NULL); return 0;
		case ':':
			if (long_opt)
				p_err("option '%s' needs a value; see 'xmeshctl help'", argv[at]);
			else
				p_err("option '-%c' needs a value; see 'xmeshctl help'", optopt);
			return 1;
		default:
			if (long_opt) /* unknown, or "--json=1": a value it does not take */
				p_err("what is option '%s'? see 'xmeshctl help'", argv[at]);
			else
				p_err("what is option '-%c'? see 'xmeshctl help'", optopt);
			return 1;
		}
		at = optind;
	}
	argc -= optind;
	argv += optind;
	/* As the agent's --pin-root: the control socket is keyed by the absolute path. */
	if (xm_pin_root[0] != '/') {
		p_err("--pin-root '%s': give an absolute path below a bpffs mount", xm_pin_root);
		return 1;
	}
	if (argc < 1) {
		do_help(0, NULL);
		return 1;
	}
	return cmd_select(objects, argc, argv, do_help) ? 1 : 0;
}
