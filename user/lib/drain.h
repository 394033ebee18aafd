/* SPDX-License-Identifier: MIT */
/*
 * Draining the socket redirection on uninstall: programs that start new
 * redirects are detached, the pins that keep live redirected connections
 * working stay until the last such socket has closed.
 */
#ifndef XMESH_DRAIN_H
#define XMESH_DRAIN_H

#include <stdbool.h>

/* Pins kept while draining, relative to the pin root; NULL-terminated. */
extern const char *const xm_drain_keep[];

/* Sockets in the redirect map at root, or -errno (-ENOENT: no map pinned). */
long xm_redirect_sock_count(const char *root);
/* Whether root is an uninstall in progress: redirect map still pinned, sockops gone. */
bool xm_pin_root_draining(const char *root);

#endif
