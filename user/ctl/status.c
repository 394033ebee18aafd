// SPDX-License-Identifier: MIT
/* xmeshctl status: what is loaded and attached at the pin root. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "attach.h"
#include "ctl.h"
#include "kernel_uapi.h"
#include "kfeatures.h"
#include "pin.h"

static const char *link_type_name(__u32 t)
{
	switch (t) {
	case BPF_LINK_TYPE_CGROUP: return "cgroup";
	case BPF_LINK_TYPE_NETNS: return "netns";
	case BPF_LINK_TYPE_XDP: return "xdp";
	case XM_BPF_LINK_TYPE_SOCKMAP: return "sockmap";
	case XM_BPF_LINK_TYPE_TCX: return "tcx";
	case XM_BPF_LINK_TYPE_NETKIT: return "netkit";
	default: return "other";
	}
}

/* Entries in a map: arrays are always full; others are counted key by key. */
static long map_fill(int fd, const struct bpf_map_info *info)
{
	char key[256], next[256];
	void *prev = NULL;
	long n = 0;

	if (info->type == BPF_MAP_TYPE_ARRAY || info->type == BPF_MAP_TYPE_PERCPU_ARRAY)
		return info->max_entries;
	if (info->key_size > sizeof(key) || info->type == BPF_MAP_TYPE_SK_STORAGE)
		return -1;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, info->key_size);
		prev = key;
		n++;
	}
	return n;
}

static json_t *describe_map(const char *name, int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return NULL;
	return json_pack("{s:s, s:i, s:I, s:I}", "name", name, "id", info.id, "max_entries",
			 (json_int_t)info.max_entries, "entries", (json_int_t)map_fill(fd, &info));
}

static json_t *describe_link(const char *name, int fd)
{
	struct bpf_link_info info = {};
	struct bpf_prog_info pinfo = {};
	__u32 len = sizeof(info), plen = sizeof(pinfo);
	int pfd;

	if (xm_bpf_fd_is_prog(fd)) {
		/* a cls_bpf filter's program (attach.h): no link, the filter holds it */
		if (bpf_obj_get_info_by_fd(fd, &pinfo, &plen))
			return NULL;
		return json_pack("{s:s, s:s, s:i, s:i, s:s}", "name", name, "type", "cls_bpf", "id",
				 0, "prog_id", pinfo.id, "prog_name", pinfo.name);
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return NULL;
	pfd = bpf_prog_get_fd_by_id(info.prog_id);
	if (pfd >= 0) {
		bpf_obj_get_info_by_fd(pfd, &pinfo, &plen);
		close(pfd);
	}
	return json_pack("{s:s, s:s, s:i, s:i, s:s}", "name", name, "type",
			 link_type_name(info.type), "id", info.id, "prog_id", info.prog_id,
			 "prog_name", pinfo.name);
}

struct describe_ctx {
	json_t *(*describe)(const char *name, int fd);
	json_t *arr;
};

static int describe_one(const char *name, int fd, void *arg)
{
	struct describe_ctx *c = arg;
	json_t *o = c->describe(name, fd);

	if (o)
		json_array_append_new(c->arr, o);
	return 0;
}

/* One JSON object per object pinned in <pin root>/<sub>, as describe() sees it. */
static json_t *pinned_objects(const char *sub, json_t *(*describe)(const char *name, int fd))
{
	struct describe_ctx c = { describe, json_array() };

	xm_pin_walk(xm_pin_root, sub, describe_one, &c);
	return c.arr;
}

/*
 * The kernel features the agent found (kfeatures.h) and, for each missing
 * one, the fallback in use. null when the agent did not record them.
 */
static json_t *kernel_features(const struct xm_meta *meta)
{
	json_t *arr;

	if (!(meta->kfeatures & XM_KF_VALID))
		return json_null();
	arr = json_array();
	for (int f = 0; f < XM_KF_COUNT; f++) {
		bool has = xm_kf_has(meta->kfeatures, f);

		json_array_append_new(arr, json_pack("{s:s, s:b, s:s, s:s?}", "name",
						     xm_kfeatures[f].name, "present", has, "since",
						     xm_kfeatures[f].since, "fallback",
						     has ? NULL : xm_kfeatures[f].without));
	}
	return arr;
}

/* pid of the agent holding this pin root's lock, or 0 if none runs. */
static int agent_pid(void)
{
	char path[PATH_MAX], buf[32] = "";
	int fd, pid = 0;

	if (xm_run_path(path, sizeof(path), xm_pin_root, "lock"))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK) {
		if (read(fd, buf, sizeof(buf) - 1) > 0)
			pid = atoi(buf);
		pid = pid ?: -1;
	}
	close(fd);
	return pid;
}

static void status_plain(json_t *v)
{
	json_t *e;
	size_t i;
	int pid = json_integer_value(json_object_get(v, "agent_pid"));

	printf("pin root:  %s\n", json_string_value(json_object_get(v, "pin_root")));
	printf("datapath:  ABI %" JSON_INTEGER_FORMAT ", loaded by agent %s\n",
	       json_integer_value(json_object_get(v, "abi_version")),
	       json_string_value(json_object_get(v, "agent_version")));
	if (pid > 0)
		printf("agent:     running (pid %d)\n", pid);
	else
		printf("agent:     not running (the datapath keeps working)\n");
	printf("kernel features:%s\n",
	       json_is_array(json_object_get(v, "kernel_features")) ? "" : " (not recorded)");
	json_array_foreach(json_object_get(v, "kernel_features"), i, e) {
		bool has = json_is_true(json_object_get(e, "present"));

		printf("  %-20s %-3s (Linux >= %s)%s%s\n",
		       json_string_value(json_object_get(e, "name")), has ? "yes" : "no",
		       json_string_value(json_object_get(e, "since")), has ? "" : ": ",
		       has ? "" : json_string_value(json_object_get(e, "fallback")));
	}
	printf("links:\n");
	json_array_foreach(json_object_get(v, "links"), i, e)
		printf("  %-16s %-8s link %-5" JSON_INTEGER_FORMAT " prog %s\n",
		       json_string_value(json_object_get(e, "name")),
		       json_string_value(json_object_get(e, "type")),
		       json_integer_value(json_object_get(e, "id")),
		       json_string_value(json_object_get(e, "prog_name")));
	printf("maps:\n");
	json_array_foreach(json_object_get(v, "maps"), i, e) {
		json_int_t n = json_integer_value(json_object_get(e, "entries"));
		json_int_t max = json_integer_value(json_object_get(e, "max_entries"));

		if (n >= 0)
			printf("  %-16s %8" JSON_INTEGER_FORMAT " / %-8" JSON_INTEGER_FORMAT "\n",
			       json_string_value(json_object_get(e, "name")), n, max);
		else
			printf("  %-16s %8s / %-8" JSON_INTEGER_FORMAT "\n",
			       json_string_value(json_object_get(e, "name")), "-", max);
	}
}

static int status_show(int argc, char **argv)
{
	struct xm_meta meta;
	json_t *o, *links;
	bool loaded;
	int err;

	NO_MORE_ARGS();
	err = xm_meta_read(xm_pin_root, &meta);
	if (err == -EPROTO || (!err && meta.abi_version != XM_ABI_VERSION)) {
		p_err("the datapath at %s is of another ABI (%u) than this xmeshctl (%d): use the "
		      "matching xmeshctl", xm_pin_root, err ? 0 : meta.abi_version, XM_ABI_VERSION);
		return -1;
	}
	if (err || meta.magic != XM_META_MAGIC) {
		p_err("no xmesh datapath loaded at %s%s", xm_pin_root,
		      err == -EPERM || err == -EACCES ? " (or not root)" : "");
		return -1;
	}
	links = pinned_objects(XM_PIN_LINKS, describe_link);
	loaded = json_array_size(links) > 0;
	o = json_pack("{s:s, s:b, s:i, s:s, s:i, s:o, s:o, s:o}", "pin_root", xm_pin_root, "loaded",
		      loaded, "abi_version", meta.abi_version, "agent_version",
		      meta.agent_version, "agent_pid", agent_pid(), "kernel_features",
		      kernel_features(&meta), "links", links, "maps",
		      pinned_objects(XM_PIN_MAPS, describe_map));
	ctl_print(o, status_plain);
	if (!loaded) {
		p_err("datapath maps are pinned at %s but no program is attached", xm_pin_root);
		return -1;
	}
	return 0;
}

static int status_help(int argc, char **argv)
{
	fprintf(stderr, "Usage: xmeshctl status\n"
			"  What is loaded and attached at the pin root, whether the agent runs,\n"
			"  and map fill levels. Exit 0 only when the datapath is loaded.\n");
	return 0;
}

int do_status(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show", status_show },
		{ "help", status_help },
		{}
	};

	return cmd_select(cmds, argc, argv, status_help);
}
