/* SPDX-License-Identifier: MIT */
/*
 * Attaching programs so that they outlive the agent: every attachment is
 * pinned under <root>/links, and a later agent adopts it (swaps its program
 * in place) instead of detaching and attaching again.
 */
#ifndef XMESH_ATTACH_H
#define XMESH_ATTACH_H

#include <stdbool.h>
#include <bpf/bpf.h>

/*
 * Whether a pinned link is attached where the caller wants it: 0 adopt it,
 * 1 it is stale (unpinned and replaced), -errno refuse (nothing changes).
 */
typedef int (*xm_link_check_fn)(const struct bpf_link_info *info, const void *arg);

/*
 * The one way to own a pinned link: if <path> holds a link that check()
 * accepts (NULL: any), put prog_fd into it (bpf_link_update; nothing is
 * detached); else create one with bpf_link_create(prog_fd, target, type) and
 * pin it at path. Returns 1 adopted, 0 created, -errno.
 */
int xm_link_adopt_or_create(const char *path, int prog_fd, int target, enum bpf_attach_type type,
			    xm_link_check_fn check, const void *arg);

/*
 * A tc program on ifindex (ingress or egress), pinned as <root>/links/<name>.
 * tcx: a TCX link (Linux >= 6.6). Otherwise a cls_bpf filter (direct
 * action) on the device's clsact qdisc (created if missing) at xmesh's own
 * handle and priority, with the program pinned at that path: a restart
 * replaces the filter's program in place. 1 adopted, 0 new, -errno.
 */
int xm_tc_attach(const char *pin_root, const char *name, int prog_fd, int ifindex, bool ingress,
		 bool tcx);
/*
 * Remove every cls_bpf filter whose program is pinned under <root>/links
 * from the devices of the caller's netns (uninstall: a filter, unlike a
 * link, does not go away with its pin). Returns how many.
 */
int xm_tc_detach_all(const char *pin_root);
/* Whether a bpf object fd is a program (the pin of a cls_bpf filter), not a link. */
bool xm_bpf_fd_is_prog(int fd);

#endif
