// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "exchange.h"
#include "addr.h"
#include "opt.h"

/* Pattern: depends on the seed, the direction and the offset; not periodic in 256. */
static unsigned char pat(unsigned int seed, int dir, size_t off)
{
	unsigned long x = off * 2654435761UL + seed * 40503UL + dir * 977UL + (off >> 9);

	return (unsigned char)(x ^ (x >> 13));
}

static void fill(const struct xt_xchg *x, unsigned char *buf, size_t n, int dir, size_t off)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pat(x->seed, dir, off + i);
}

struct writer {
	struct xt_xchg *x;
	int fd;
	int dir;
	size_t total;
	int err;
};

static void *writer_main(void *p)
{
	struct writer *w = p;
	unsigned char buf[65536];
	size_t off = 0, chunk = sizeof(buf);
	long sleep_ns = 0;

	if (w->x->spread_ms && w->total) {
		chunk = 16384;
		sleep_ns = (long)((double)w->x->spread_ms * 1e6 * chunk / w->total);
	}
	while (off < w->total) {
		size_t n = w->total - off < chunk ? w->total - off : chunk;
		ssize_t k;

		fill(w->x, buf, n, w->dir, off);
		k = send(w->fd, buf, n, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			w->err = errno;
			return NULL;
		}
		off += k;
		atomic_fetch_add(&w->x->bytes_out, k);
		if (sleep_ns) {
			struct timespec ts = { sleep_ns / 1000000000L, sleep_ns % 1000000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (shutdown(w->fd, SHUT_WR))
		w->err = errno;
	return NULL;
}

/* Read until EOF; every byte must match. Returns 0 if exactly `expect` bytes matched. */
static int read_verify(struct xt_xchg *x, int fd, int dir, size_t expect, const char *who)
{
	unsigned char buf[65536];
	size_t off = 0;

	for (;;) {
		ssize_t k = recv(fd, buf, sizeof(buf), 0);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			/*
			 * A blocking recv() on a socket in a sockmap can return
			 * EAGAIN when a wakeup for the other direction (write
			 * space) finds no data yet: a kernel tcp_bpf quirk,
			 * counted and reported, not a lost byte.
			 */
			if (errno == EAGAIN) {
				atomic_fetch_add(&x->spurious_eagain, 1);
				continue;
			}
			fprintf(stderr, "%s: recv after %zu bytes: %s\n", who, off, strerror(errno));
			return -1;
		}
		if (k == 0)
			break;
		for (ssize_t i = 0; i < k; i++) {
			if (off + i >= expect || buf[i] != pat(x->seed, dir, off + i)) {
				fprintf(stderr, "%s: byte %zu wrong or beyond %zu expected\n", who,
					off + i, expect);
				return -1;
			}
		}
		off += k;
		atomic_fetch_add(&x->bytes_in, k);
	}
	if (off != expect) {
		fprintf(stderr, "%s: EOF after %zu of %zu bytes\n", who, off, expect);
		return -1;
	}
	return 0;
}

int xt_exchange(struct xt_xchg *x, int fd, int send_dir, size_t send_n, size_t recv_n, const char *who)
{
	struct writer w = { .x = x, .fd = fd, .dir = send_dir, .total = send_n };
	pthread_t t;
	int err;

	if (pthread_create(&t, NULL, writer_main, &w))
		return -1;
	err = read_verify(x, fd, !send_dir, recv_n, who);
	pthread_join(t, NULL);
	if (w.err) {
		fprintf(stderr, "%s: send: %s\n", who, strerror(w.err));
		err = -1;
	}
	return err;
}
