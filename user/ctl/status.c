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
#include "drain.h"
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

/* A pinned map or link as status shows it; both printers read these rows. */
struct obj_row {
	char name[64];
	const char *type;     /* links: cgroup, tcx, cls_bpf, ... */
	__u32 id, prog_id;    /* links: link id (0 for a cls_bpf filter) and program */
	char prog_name[BPF_OBJ_NAME_LEN];
	long long max_entries, entries; /* maps; entries < 0: not countable */
};

static int describe_map(struct obj_row *r, int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -1;
	r->id = info.id;
	r->max_entries = info.max_entries;
	r->entries = map_fill(fd, &info);
	return 0;
}

static int describe_link(struct obj_row *r, int fd)
{
	struct bpf_link_info info = {};
	struct bpf_prog_info pinfo = {};
	__u32 len = sizeof(info), plen = sizeof(pinfo);
	int pfd;

	if (xm_bpf_fd_is_prog(fd)) {
		/* a cls_bpf filter's program (attach.h): no link, the filter holds it */
		if (bpf_obj_get_info_by_fd(fd, &pinfo, &plen))
			return -1;
		r->type = "cls_bpf";
		r->prog_id = pinfo.id;
		snprintf(r->prog_name, sizeof(r->prog_name), "%s", pinfo.name);
		return 0;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -1;
	pfd = bpf_prog_get_fd_by_id(info.prog_id);
	if (pfd >= 0) {
		bpf_obj_get_info_by_fd(pfd, &pinfo, &plen);
		close(pfd);
	}
	r->type = link_type_name(info.type);
	r->id = info.id;
	r->prog_id = info.prog_id;
	snprintf(r->prog_name, sizeof(r->prog_name), "%s", pinfo.name);
	return 0;
}

struct describe_ctx {
	int (*describe)(struct obj_row *r, int fd);
	struct ctl_rows rows;
};

static int describe_one(const char *name, int fd, void *arg)
{
	struct describe_ctx *c = arg;
	struct obj_row *r = ctl_rows_push(&c->rows);

	if (!r)
		return -ENOMEM;
	snprintf(r->name, sizeof(r->name), "%s", name);
	if (c->describe(r, fd))
		c->rows.n--; /* gone meanwhile */
	return 0;
}

/* One row per object pinned in <pin root>/<sub>, as describe() sees it. */
static struct ctl_rows pinned_objects(const char *sub, int (*describe)(struct obj_row *r, int fd))
{
	struct describe_ctx c = { describe, CTL_ROWS(struct obj_row) };

	xm_pin_walk(xm_pin_root, sub, describe_one, &c);
	return c.rows;
}

static json_t *links_json(const struct ctl_rows *rows)
{
	const struct obj_row *r = rows->v;
	json_t *arr = json_array();

	for (size_t i = 0; i < rows->n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:i, s:s}", "name", r[i].name,
						     "type", r[i].type, "id", (int)r[i].id, "prog_id",
						     (int)r[i].prog_id, "prog_name", r[i].prog_name));
	return arr;
}

static json_t *maps_json(const struct ctl_rows *rows)
{
	const struct obj_row *r = rows->v;
	json_t *arr = json_array();

	for (size_t i = 0; i < rows->n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:i, s:I, s:I}", "name", r[i].name, "id",
						     (int)r[i].id, "max_entries",
						     (json_int_t)r[i].max_entries, "entries",
						     (json_int_t)r[i].entries));
	return arr;
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

/* Everything status shows, read once; the plain text and the JSON are made from it. */
struct status {
	struct xm_meta meta;
	bool loaded, socket_ready, draining;
	int pid;
	long long draining_sockets;
	struct ctl_rows links, maps;
};

static json_t *status_json(const struct status *st)
{
	json_t *o = json_pack("{s:s, s:b, s:i, s:s, s:i, s:b, s:o, s:o, s:o}", "pin_root",
			      xm_pin_root, "loaded", st->loaded, "abi_version",
			      st->meta.abi_version, "agent_version", st->meta.agent_version,
			      "agent_pid", st->pid, "agent_socket", st->socket_ready,
			      "kernel_features", kernel_features(&st->meta), "links",
			      links_json(&st->links), "maps", maps_json(&st->maps));

	if (st->draining)
		json_object_set_new(o, "draining_sockets", json_integer(st->draining_sockets));
	return o;
}

static void status_plain(const struct status *st)
{
	const struct obj_row *r;

	printf("pin root:  %s\n", xm_pin_root);
	printf("datapath:  ABI %u, loaded by agent %s\n", (unsigned int)st->meta.abi_version,
	       st->meta.agent_version);
	if (st->draining)
		printf("draining:  uninstall in progress%s; %lld redirected sockets still open (the "
		       "last pins go when they close)\n",
		       st->pid > 0 ? "" : " but not running (run uninstall again)",
		       st->draining_sockets);
	else if (st->pid > 0)
		printf("agent:     running (pid %d), control socket %s\n", st->pid,
		       st->socket_ready ? "ready" : "not ready");
	else
		printf("agent:     not running (the datapath keeps working)\n");
	printf("kernel features:%s\n", st->meta.kfeatures & XM_KF_VALID ? "" : " (not recorded)");
	for (int f = 0; st->meta.kfeatures & XM_KF_VALID && f < XM_KF_COUNT; f++) {
		bool has = xm_kf_has(st->meta.kfeatures, f);

		printf("  %-20s %-3s (Linux >= %s)%s%s\n", xm_kfeatures[f].name, has ? "yes" : "no",
		       xm_kfeatures[f].since, has ? "" : ": ", has ? "" : xm_kfeatures[f].without);
	}
	printf("links:\n");
	r = st->links.v;
	for (size_t i = 0; i < st->links.n; i++)
		printf("  %-16s %-8s link %-5u prog %s\n", r[i].name, r[i].type, (unsigned int)r[i].id,
		       r[i].prog_name);
	printf("maps:\n");
	r = st->maps.v;
	for (size_t i = 0; i < st->maps.n; i++) {
		if (r[i].entries >= 0)
			printf("  %-16s %8lld / %-8lld\n", r[i].name, r[i].entries, r[i].max_entries);
		else
			printf("  %-16s %8s / %-8lld\n", r[i].name, "-", r[i].max_entries);
	}
}

static int status_show(int argc, char **argv)
{
	struct status st = {};
	struct xm_meta meta;
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
	st.meta = meta;
	st.links = pinned_objects(XM_PIN_LINKS, describe_link);
	st.draining = xm_pin_root_draining(xm_pin_root);
	/* Before kernel 6.10 a draining sk_msg is held by the map, not by a link. */
	st.loaded = st.links.n > 0 || st.draining;
	st.pid = agent_pid();
	st.socket_ready = ctl_agent_reachable();
	st.maps = pinned_objects(XM_PIN_MAPS, describe_map);
	if (st.draining)
		st.draining_sockets = xm_redirect_sock_count(xm_pin_root);
	if (xm_out_json)
		xm_out_print_json(status_json(&st));
	else
		status_plain(&st);
	ctl_rows_free(&st.links);
	ctl_rows_free(&st.maps);
	if (!st.loaded) {
		p_err("datapath maps are pinned at %s but no program is attached", xm_pin_root);
		return -1;
	}
	return 0;
}

static int status_help(int argc, char **argv)
{
	ctl_help( "Usage: xmeshctl status [show]\n"
			"  What is loaded and attached at the pin root, whether the agent runs,\n"
			"  and map fill levels. Exit 0 only when the datapath is loaded.\n"
			"  During 'xmesh-agent uninstall', draining_sockets counts the redirected\n"
			"  sockets it still waits for.\n");
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
