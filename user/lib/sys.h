/* SPDX-License-Identifier: MIT */
/* What the host offers: cgroup2, network namespaces, kernel features. */
#ifndef XMESH_SYS_H
#define XMESH_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

/* A whole file, NUL-terminated, into *out (caller frees); 0 or -errno. */
int xm_file_read(const char *path, char **out, size_t *len);
/* mkdir -p: create path and its missing parents with mode. 0 or -errno. */
int xm_mkdir_p(const char *path, mode_t mode);
/* Mount point of cgroup2 from /proc/mounts into buf; -ENOENT if none. */
int xm_cgroup2_mount(char *buf, size_t len);
/* 0 if path is a cgroup2 directory; -ENOENT, -ENOTDIR or -EMEDIUMTYPE (not cgroup2). */
int xm_cgroup_check(const char *path);
/* Same file as the cgroup2 mount point itself (the root cgroup)? */
bool xm_cgroup_is_root(const char *path);
/* Cookie of the netns a path (e.g. /var/run/netns/x or /proc/PID/ns/net) refers to. */
int xm_netns_cookie_of_path(const char *path, __u64 *cookie);
/* Cookie of the calling thread's netns. */
int xm_netns_cookie_self(__u64 *cookie);
/* Run fn(arg) in another thread that joined the netns at path; returns fn's result. */
int xm_netns_run(const char *path, int (*fn)(void *arg), void *arg);
/* Kernel version as major*65536 + minor*256 + patch. */
unsigned int xm_kernel_version(void);
bool xm_have_btf(void);

#endif
