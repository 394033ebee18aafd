/* SPDX-License-Identifier: MIT */
/* The agent's single-threaded event loop (epoll): fds and their handlers. */
#ifndef XMESH_AGENT_LOOP_H
#define XMESH_AGENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct xm_loop;
typedef void (*xm_loop_fn)(struct xm_loop *loop, int fd, uint32_t events, void *arg);

struct xm_loop *xm_loop_new(void);
void xm_loop_free(struct xm_loop *loop);
int xm_loop_add(struct xm_loop *loop, int fd, uint32_t events, xm_loop_fn fn, void *arg);
void xm_loop_del(struct xm_loop *loop, int fd);
/* Change the events an added fd waits for. */
int xm_loop_mod(struct xm_loop *loop, int fd, uint32_t events);
/* A one-shot timer (timerfd) calling fn when it fires; returns its fd or -errno. */
int xm_loop_timer_add(struct xm_loop *loop, xm_loop_fn fn, void *arg);
/* Fire in ms milliseconds (0: disarm); re-arming replaces the previous time. */
int xm_loop_timer_arm(int tfd, long ms);
bool xm_loop_timer_armed(int tfd);
/* Run until xm_loop_stop(); returns 0, or -errno if epoll failed. */
int xm_loop_run(struct xm_loop *loop);
void xm_loop_stop(struct xm_loop *loop);

#endif
