// SPDX-License-Identifier: MIT
/*
 * Demotion of one-way bulk senders (docs/redirect-compat.md, "Bulk senders").
 * A redirected sender that has passed XM_BULK_DEMOTE_BYTES asks, from its
 * sk_msg, to go back to TCP: an entry in xm_bulk_asks and a wakeup on
 * xm_bulk_ring. The agent then runs the iterator xm_redirect_bulk over the
 * redirect map until no ask is left; the iterator closes the peer's direction
 * and takes the sender out of the map (bpf/redirect.bpf.c). The kernel allows
 * neither step in sk_msg itself.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xmesh/redirect.h>
#include "agent.h"
#include "log.h"
#include "loop.h"
#include "redirect_bulk.h"
#include "redirect.skel.h"

/*
 * A sender visited before its peer is demoted at the next pass; two passes
 * answer every ask present at the start. A third one finishes asks made
 * during the first.
 */
#define BULK_PASSES 3

static struct {
	struct bpf_link *iter;
	struct ring_buffer *ring;
	int asks_fd;
	struct xm_loop *loop;
} bulk = { .asks_fd = -1 };

static int on_ask(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0; /* the wakeup is the message */
}

static bool asks_left(void)
{
	struct xm_sock_key k;

	return bpf_map_get_next_key(bulk.asks_fd, NULL, &k) == 0;
}

static int run_pass(void)
{
	char buf[64];
	ssize_t n;
	int fd = bpf_iter_create(bpf_link__fd(bulk.iter));

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	return n < 0 ? -errno : 0;
}

/* The asks present before the passes: what is left of them afterwards is stale. */
static unsigned int asks_snapshot(struct xm_sock_key *keys, unsigned int max)
{
	unsigned int n = 0;

	while (n < max && bpf_map_get_next_key(bulk.asks_fd, n ? &keys[n - 1] : NULL, &keys[n]) == 0)
		n++;
	return n;
}

/*
 * Asks still there after the passes belong to sockets that closed meanwhile
 * (or whose peer did); the sender, if it is still there, keeps the redirect
 * at the next pass (no ask: kept). Removing them keeps the table from
 * filling. Asks made during the passes are not touched: their wakeup is
 * still in the ring.
 */
static void drop_stale_asks(const struct xm_sock_key *keys, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		bpf_map_delete_elem(bulk.asks_fd, &keys[i]);
}

static void on_ring(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	int err = 0;

	(void)loop;
	(void)fd;
	(void)events;
	(void)arg;
	static struct xm_sock_key before[XM_MAX_BULK_ASKS];
	unsigned int n;

	ring_buffer__consume(bulk.ring);
	n = asks_snapshot(before, XM_MAX_BULK_ASKS);
	for (int i = 0; i < BULK_PASSES && !err && asks_left(); i++)
		err = run_pass();
	if (err)
		pr_warn("bulk senders: iterator pass failed: %s", strerror(-err));
	drop_stale_asks(before, n);
}

int xm_redirect_bulk_start(struct xm_agent *a, struct xm_redirect *skel)
{
	DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, opts);
	union bpf_iter_link_info linfo = {};
	int err;

	linfo.map.map_fd = bpf_map__fd(skel->maps.xm_socks);
	opts.link_info = &linfo;
	opts.link_info_len = sizeof(linfo);
	bulk.iter = bpf_program__attach_iter(skel->progs.xm_redirect_bulk, &opts);
	if (!bulk.iter) {
		err = -errno;
		pr_warn("bulk senders: attach the redirect map iterator: %s: bulk streams stay "
			"redirected", strerror(-err));
		return 0;
	}
	bulk.asks_fd = bpf_map__fd(skel->maps.xm_bulk_asks);
	bulk.ring = ring_buffer__new(bpf_map__fd(skel->maps.xm_bulk_ring), on_ask, NULL, NULL);
	if (!bulk.ring) {
		err = -errno;
		pr_err("bulk senders: ring buffer: %s", strerror(-err));
		xm_redirect_bulk_stop();
		return err;
	}
	err = xm_loop_add(a->loop, ring_buffer__epoll_fd(bulk.ring), EPOLLIN, on_ring, NULL);
	if (err) {
		pr_err("bulk senders: event loop: %s", strerror(-err));
		xm_redirect_bulk_stop();
		return err;
	}
	bulk.loop = a->loop;
	/* asks made while no agent ran (a restart) */
	on_ring(a->loop, -1, 0, NULL);
	return 0;
}

void xm_redirect_bulk_stop(void)
{
	if (bulk.loop && bulk.ring)
		xm_loop_del(bulk.loop, ring_buffer__epoll_fd(bulk.ring));
	ring_buffer__free(bulk.ring);
	bpf_link__destroy(bulk.iter);
	bulk.ring = NULL;
	bulk.iter = NULL;
	bulk.loop = NULL;
	bulk.asks_fd = -1;
}
