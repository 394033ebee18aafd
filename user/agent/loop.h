/* SPDX-License-Identifier: MIT */
/* The agent's single-threaded event loop (epoll): fds and their handlers. */
#ifndef XMESH_AGENT_LOOP_H
#define XMESH_AGENT_LOOP_H

#include <stdint.h>

struct xm_loop;
typedef void (*xm_loop_fn)(struct xm_loop *loop, int fd, uint32_t events, void *arg);

struct xm_loop *xm_loop_new(void);
void xm_loop_free(struct xm_loop *loop);
int xm_loop_add(struct xm_loop *loop, int fd, uint32_t events, xm_loop_fn fn, void *arg);
void xm_loop_del(struct xm_loop *loop, int fd);
/* Run until xm_loop_stop(); returns 0, or -errno if epoll failed. */
int xm_loop_run(struct xm_loop *loop);
void xm_loop_stop(struct xm_loop *loop);

#endif
