// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "kernel_uapi.h"
#include "pin.h"

int xm_link_adopt_or_create(const char *path, int prog_fd, int target, enum bpf_attach_type type,
			    xm_link_check_fn check, const void *arg)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	int fd, err;

	fd = bpf_obj_get(path);
	if (fd >= 0) {
		memset(&info, 0, sizeof(info));
		err = bpf_obj_get_info_by_fd(fd, &info, &len) ? 1 : 0;
		if (!err && check)
			err = check(&info, arg);
		if (!err)
			err = bpf_link_update(fd, prog_fd, NULL) ? 1 : 0;
		close(fd);
		if (err <= 0)
			return err ?: 1; /* adopted, or refused by check() */
		/* stale, or not a link we can update: unpinning releases it */
	}
	unlink(path);
	fd = bpf_link_create(prog_fd, target, type, NULL);
	if (fd < 0)
		return -errno;
	err = bpf_obj_pin(fd, path) ? -errno : 0;
	close(fd);
	return err;
}

/* xmesh's cls_bpf filters: one per device and direction, at this handle and priority. */
#define XM_TC_HANDLE 0x786d /* "xm" */
#define XM_TC_PRIORITY 0x786d

/* Whether a bpf fd is a program (a cls_bpf pin) rather than a link. */
static bool fd_is_prog(int fd)
{
	char p[64], t[64];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, t, sizeof(t) - 1);
	if (n < 0)
		return false;
	t[n] = 0;
	return !strcmp(t, "anon_inode:bpf-prog");
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* Remove our filter from ifindex/direction if it runs program id. 1 removed, 0 not there. */
static int cls_detach_id(int ifindex, bool ingress, __u32 id)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = XM_TC_HANDLE, .priority = XM_TC_PRIORITY);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, del, .handle = XM_TC_HANDLE, .priority = XM_TC_PRIORITY);

	if (bpf_tc_query(&hook, &q) || q.prog_id != id)
		return 0;
	return bpf_tc_detach(&hook, &del) ? 0 : 1;
}

/* Remove our filters that run program id from every device of this netns. */
static int cls_detach_everywhere(__u32 id)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	int n = 0;

	if (!ifs)
		return -errno;
	for (i = ifs; i->if_index; i++)
		n += cls_detach_id(i->if_index, true, id) + cls_detach_id(i->if_index, false, id);
	if_freenameindex(ifs);
	return n;
}

static int tcx_check(const struct bpf_link_info *info, const void *arg)
{
	/*
	 * The 6.1 uapi struct bpf_link_info has no tcx member; the kernel puts
	 * {ifindex, attach_type} first in the union, where netns puts its inode.
	 * A link whose device went away stays pinned, attached to nothing.
	 */
	return info->type == XM_BPF_LINK_TYPE_TCX && info->netns.netns_ino == *(const __u32 *)arg
		       ? 0 : 1;
}

static int cls_attach(const char *path, int prog_fd, int ifindex, bool ingress)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
			    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = XM_TC_HANDLE, .priority = XM_TC_PRIORITY);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = XM_TC_HANDLE, .priority = XM_TC_PRIORITY,
			    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	bool had;
	int err;

	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	had = bpf_tc_query(&hook, &q) == 0;
	/* REPLACE swaps the program of an existing filter in place: no gap. */
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		return err;
	unlink(path); /* a TCX link of an earlier run is released here */
	if (bpf_obj_pin(prog_fd, path))
		return -errno;
	return had;
}

int xm_tc_attach(const char *pin_root, const char *name, int prog_fd, int ifindex, bool ingress,
		 bool tcx)
{
	char path[PATH_MAX];
	__u32 want = ifindex;
	int err, fd;

	err = xm_pin_path(path, sizeof(path), pin_root, XM_PIN_LINKS, name);
	if (err)
		return err;
	if (!tcx)
		return cls_attach(path, prog_fd, ifindex, ingress);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		/* a cls_bpf filter of a run without TCX: the link takes over */
		if (fd_is_prog(fd)) {
			cls_detach_id(ifindex, ingress, prog_id(fd));
			unlink(path);
		}
		close(fd);
	}
	return xm_link_adopt_or_create(path, prog_fd, ifindex,
				       ingress ? XM_BPF_TCX_INGRESS : XM_BPF_TCX_EGRESS, tcx_check,
				       &want);
}

static int detach_if_prog(const char *name, int fd, void *arg)
{
	int *n = arg, r;

	if (fd_is_prog(fd)) {
		r = cls_detach_everywhere(prog_id(fd));
		*n += r > 0 ? r : 0;
	}
	return 0;
}

int xm_tc_detach_all(const char *pin_root)
{
	int n = 0, err;

	err = xm_pin_walk(pin_root, XM_PIN_LINKS, detach_if_prog, &n);
	return err ?: n;
}

bool xm_bpf_fd_is_prog(int fd)
{
	return fd_is_prog(fd);
}
