/* SPDX-License-Identifier: MIT */
/* The pin root: where maps and links live in bpffs, and how to reach them. */
#ifndef XMESH_PIN_H
#define XMESH_PIN_H

#include <limits.h>
#include <stdbool.h>
#include <xmesh/common.h>

/* <root>/maps/<name> or <root>/links/<name> into buf. -ENAMETOOLONG if it does not fit. */
int xm_pin_path(char *buf, size_t len, const char *root, const char *sub, const char *name);
/* Open the pinned map <root>/maps/<name>; returns fd or -errno. */
int xm_map_open(const char *root, const char *name);
/*
 * Create root/{maps,links}. If root is not on bpffs, bpffs is mounted at
 * root itself (never above it), and only over a missing or empty directory:
 * -ENOTEMPTY otherwise.
 */
int xm_pin_root_prepare(const char *root);
/* Whether root holds an xmesh datapath (its meta map exists). */
bool xm_pin_root_in_use(const char *root);
/* Read the meta entry; -ENOENT when absent, -EPROTO on a layout from another ABI. */
int xm_meta_read(const char *root, struct xm_meta *meta);
/* Remove every pin below root and root itself. Returns the number removed or -errno. */
int xm_pin_root_remove(const char *root);
/* The same, but leave the pins named in keep (NULL-terminated, relative to
 * root, e.g. "maps/xm_socks") and the directories that hold them. */
int xm_pin_root_remove_except(const char *root, const char *const *keep);

/*
 * Call fn(name, fd, arg) for each object pinned in <root>/<sub> (fd open for
 * the call only); stops at fn's first non-zero result and returns it. A
 * missing directory has no objects.
 */
int xm_pin_walk(const char *root, const char *sub, int (*fn)(const char *name, int fd, void *arg),
		void *arg);

#define XM_RUN_DIR_DEFAULT "/run/xmesh" /* XM_RUN_DIR in the environment moves it */
/*
 * Where the agent of this pin root keeps its control socket and lock:
 * <run dir>/<basename>-<hash of the canonical pin root>.<suffix>. Creates nothing.
 */
int xm_run_path(char *buf, size_t len, const char *root, const char *suffix);
/* Create the run dir (the agent, before its lock); release removes it when empty. */
int xm_run_dir_prepare(void);
void xm_run_dir_release(void);

#endif
