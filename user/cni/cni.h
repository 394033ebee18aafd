/* SPDX-License-Identifier: MIT */
/* xmesh-cni: the chained CNI plugin. */
#ifndef XMESH_CNI_H
#define XMESH_CNI_H

#include "conf.h"

/* The CNI_* environment of one invocation. NULL when unset or empty. */
struct xm_cni_env {
	const char *command;
	const char *container_id;
	const char *netns;
	const char *ifname;
	const char *args;
	const char *path;
};

/*
 * Commands. Return 0 on success (ADD has printed its result), or -1 with e
 * filled: main() prints it as the spec's error object and exits non-zero.
 */
int xm_cni_add(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e);
int xm_cni_del(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e);
int xm_cni_check(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e);
int xm_cni_gc(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e);
int xm_cni_status(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e);

/* `xmesh-cni conflist ...`: the installer's conflist editor (conflist.c). */
int xm_cni_conflist_main(int argc, char **argv);

#endif
