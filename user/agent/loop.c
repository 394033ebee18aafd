// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <linux/types.h>
#include "loop.h"

#define XM_LOOP_MAX_FDS 64

struct loop_slot {
	int fd;
	xm_loop_fn fn;
	void *arg;
};

struct xm_loop {
	int epfd;
	bool stop;
	struct loop_slot slots[XM_LOOP_MAX_FDS];
};

struct xm_loop *xm_loop_new(void)
{
	struct xm_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	for (int i = 0; i < XM_LOOP_MAX_FDS; i++)
		loop->slots[i].fd = -1;
	return loop;
}

void xm_loop_free(struct xm_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop);
}

int xm_loop_add(struct xm_loop *loop, int fd, uint32_t events, xm_loop_fn fn, void *arg)
{
	struct epoll_event ev = { .events = events };

	for (int i = 0; i < XM_LOOP_MAX_FDS; i++) {
		if (loop->slots[i].fd >= 0)
			continue;
		loop->slots[i] = (struct loop_slot){ fd, fn, arg };
		ev.data.u32 = i;
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			loop->slots[i].fd = -1;
			return -errno;
		}
		return 0;
	}
	return -ENOSPC;
}

void xm_loop_del(struct xm_loop *loop, int fd)
{
	for (int i = 0; i < XM_LOOP_MAX_FDS; i++) {
		if (loop->slots[i].fd == fd) {
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
			loop->slots[i].fd = -1;
		}
	}
}

int xm_loop_mod(struct xm_loop *loop, int fd, uint32_t events)
{
	for (int i = 0; i < XM_LOOP_MAX_FDS; i++) {
		if (loop->slots[i].fd == fd) {
			struct epoll_event ev = { .events = events, .data.u32 = i };

			return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
		}
	}
	return -ENOENT;
}

int xm_loop_timer_add(struct xm_loop *loop, xm_loop_fn fn, void *arg)
{
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), err;

	if (tfd < 0)
		return -errno;
	err = xm_loop_add(loop, tfd, EPOLLIN, fn, arg);
	if (err) {
		close(tfd);
		return err;
	}
	return tfd;
}

int xm_loop_timer_arm(int tfd, long ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L },
	};
	__u64 n;

	/* an expiry not read yet would wake the loop for the old time */
	if (read(tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return -errno;
	if (ms > 0 && !its.it_value.tv_sec && !its.it_value.tv_nsec)
		its.it_value.tv_nsec = 1;
	return timerfd_settime(tfd, 0, &its, NULL) ? -errno : 0;
}

bool xm_loop_timer_armed(int tfd)
{
	struct itimerspec its;

	return !timerfd_gettime(tfd, &its) && (its.it_value.tv_sec || its.it_value.tv_nsec);
}

int xm_loop_run(struct xm_loop *loop)
{
	struct epoll_event evs[16];

	while (!loop->stop) {
		int n = epoll_wait(loop->epfd, evs, 16, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !loop->stop; i++) {
			struct loop_slot *s = &loop->slots[evs[i].data.u32];

			if (s->fd >= 0)
				s->fn(loop, s->fd, evs[i].events, s->arg);
		}
	}
	return 0;
}

void xm_loop_stop(struct xm_loop *loop)
{
	loop->stop = true;
}
