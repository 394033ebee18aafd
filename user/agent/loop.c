// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <linux/types.h>
#include "loop.h"

/* Slots grow on demand: clients of the control socket each hold one. */
#define XM_LOOP_INITIAL_SLOTS 64

struct loop_slot {
	int fd;
	xm_loop_fn fn;
	void *arg;
};

struct xm_loop {
	int epfd;
	bool stop;
	unsigned int n_slots;
	struct loop_slot *slots;
};

static int slots_grow(struct xm_loop *loop)
{
	unsigned int n = loop->n_slots ? loop->n_slots * 2 : XM_LOOP_INITIAL_SLOTS;
	struct loop_slot *s = realloc(loop->slots, n * sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (unsigned int i = loop->n_slots; i < n; i++)
		s[i].fd = -1;
	loop->slots = s;
	loop->n_slots = n;
	return 0;
}

struct xm_loop *xm_loop_new(void)
{
	struct xm_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0 || slots_grow(loop)) {
		if (loop->epfd >= 0)
			close(loop->epfd);
		free(loop);
		return NULL;
	}
	return loop;
}

void xm_loop_free(struct xm_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->slots);
	free(loop);
}

int xm_loop_add(struct xm_loop *loop, int fd, uint32_t events, xm_loop_fn fn, void *arg)
{
	struct epoll_event ev = { .events = events };

	for (unsigned int i = 0;; i++) {
		if (i == loop->n_slots && slots_grow(loop))
			return -ENOMEM;
		if (loop->slots[i].fd >= 0)
			continue;
		loop->slots[i] = (struct loop_slot){ fd, fn, arg };
		/* slot and fd: an event queued for a slot freed meanwhile is dropped */
		ev.data.u64 = (uint64_t)i << 32 | (uint32_t)fd;
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			loop->slots[i].fd = -1;
			return -errno;
		}
		return 0;
	}
}

void xm_loop_del(struct xm_loop *loop, int fd)
{
	for (unsigned int i = 0; i < loop->n_slots; i++) {
		if (loop->slots[i].fd == fd) {
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
			loop->slots[i].fd = -1;
		}
	}
}

int xm_loop_mod(struct xm_loop *loop, int fd, uint32_t events)
{
	for (unsigned int i = 0; i < loop->n_slots; i++) {
		if (loop->slots[i].fd == fd) {
			struct epoll_event ev = { .events = events,
						  .data.u64 = (uint64_t)i << 32 | (uint32_t)fd };

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
			struct loop_slot *s = &loop->slots[evs[i].data.u64 >> 32];

			if (s->fd >= 0 && s->fd == (int)(uint32_t)evs[i].data.u64)
				s->fn(loop, s->fd, evs[i].events, s->arg);
		}
	}
	return 0;
}

void xm_loop_stop(struct xm_loop *loop)
{
	loop->stop = true;
}
