// SPDX-License-Identifier: MIT
/*
 * The control socket's transport: a unix stream socket at
 * xm_run_path(pin root, "sock"), one JSON request line in, one JSON answer
 * line out, then the agent closes. What a request means is services.c's
 * (xm_services_request); this file only keeps clients from hurting the agent:
 *
 * - Every client socket is non-blocking and has its own buffers in the
 *   event loop, so a client that drips bytes or never reads its answer
 *   holds nothing but its own slot: ticks, netlink, signals and other
 *   clients go on.
 * - A client has XM_CTL_DEADLINE_MS from accept to having read its answer,
 *   and may send at most XM_CTL_MAX_REQUEST bytes; at most XM_CTL_MAX_CLIENTS
 *   are served at once (more are closed at accept, so the backlog never
 *   fills with clients we will not serve).
 * - Answers are sent with MSG_NOSIGNAL (and SIGPIPE is ignored process-wide):
 *   a client that closes early costs an EPIPE, never the agent.
 * - Only root and the agent's own user may connect (SO_PEERCRED), and the
 *   socket is created with mode 0600 (umask around bind()): there is no
 *   moment when it exists with a wider mode.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "control.h"
#include "log.h"
#include "pin.h"
#include "monoclock.h"

struct ctl_client {
	struct xm_control *ctl;
	int fd;
	__u64 deadline_ms;
	char *in;         /* request bytes so far, grown up to XM_CTL_MAX_REQUEST + 1 */
	size_t in_len, in_cap;
	char *out;        /* answer line, NULL while reading */
	size_t out_len, out_off;
	struct ctl_client *next;
};

struct xm_control {
	struct xm_agent *agent;
	int listen_fd, timer_fd;
	char path[PATH_MAX];
	struct ctl_client *clients;
	unsigned int n_clients;
	bool accept_paused; /* out of descriptors: listening resumes at the next sweep */
};

static void client_close(struct ctl_client *c)
{
	struct xm_control *ctl = c->ctl;

	for (struct ctl_client **p = &ctl->clients; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	ctl->n_clients--;
	xm_loop_del(ctl->agent->loop, c->fd);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

static void on_client(struct xm_loop *loop, int fd, uint32_t events, void *arg);

/* Send what the socket takes now; 1 when all is sent, 0 to wait, -errno on error. */
static int client_flush(struct ctl_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->out_off += n;
	}
	return 1;
}

static void client_answer(struct ctl_client *c, json_t *rep)
{
	char *line = json_dumps(rep, JSON_COMPACT);
	int r;

	json_decref(rep);
	if (!line || asprintf(&c->out, "%s\n", line) < 0) {
		free(line);
		client_close(c);
		return;
	}
	free(line);
	c->out_len = strlen(c->out);
	r = client_flush(c);
	if (r == 0) {
		/* The client does not read yet: wait for room, still under its deadline. */
		xm_loop_del(c->ctl->agent->loop, c->fd);
		if (!xm_loop_add(c->ctl->agent->loop, c->fd, EPOLLOUT, on_client, c))
			return;
	}
	if (r < 0)
		pr_debug("control client went away before its answer: %s", strerror(-r));
	client_close(c);
}

static void client_read(struct ctl_client *c)
{
	for (;;) {
		ssize_t n;
		char *nl;

		if (c->in_len == c->in_cap) {
			size_t cap = c->in_cap * 2 > XM_CTL_MAX_REQUEST + 1 ? XM_CTL_MAX_REQUEST + 1
									    : c->in_cap * 2;
			char *in = realloc(c->in, cap);

			if (!in) {
				client_close(c);
				return;
			}
			c->in = in;
			c->in_cap = cap;
		}
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == 0 && c->in_len > 0) {
			/*
			 * The client shut its side after a request without the newline: it
			 * may still read, and silence would leave it guessing.
			 */
			client_answer(c, json_pack("{s:s}", "error",
						   "a request is one JSON object followed by a "
						   "newline: none came before the end of input"));
			return;
		}
		if (n <= 0) {
			/* closed (or failed) before sending anything: nothing to answer */
			client_close(c);
			return;
		}
		nl = memchr(c->in + c->in_len, '\n', n);
		c->in_len += n;
		if (nl) {
			/* by length: a NUL inside the line is the parser's error, not its end */
			client_answer(c, xm_services_request(c->ctl->agent, c->in, nl - c->in));
			return;
		}
		if (c->in_len > XM_CTL_MAX_REQUEST) {
			client_answer(c, json_pack("{s:s}", "error",
						   "request longer than the limit (" XM_CTL_MAX_REQUEST_STR
						   " bytes)"));
			return;
		}
	}
}

static void on_client(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct ctl_client *c = arg;

	if (c->out) {
		int r = client_flush(c);

		if (r != 0)
			client_close(c);
		return;
	}
	client_read(c);
}

/* Root, or the user the agent runs as. */
static bool peer_allowed(int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return false;
	*uid = cred.uid;
	return cred.uid == 0 || cred.uid == geteuid();
}

static void on_accept(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xm_control *ctl = arg;

	/* Take everything pending: one wake-up may stand for many clients. */
	for (;;) {
		struct ctl_client *c;
		uid_t uid = -1;
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/*
				 * The pending client stays in the backlog and the socket stays
				 * readable: stop listening until the next sweep rather than
				 * spin (and log) on the same error.
				 */
				pr_warn("control socket: %s; accepting again in %d ms",
					strerror(errno), XM_CTL_SWEEP_MS);
				xm_loop_del(ctl->agent->loop, fd);
				ctl->accept_paused = true;
			}
			return;
		}
		if (!peer_allowed(cfd, &uid)) {
			static const char deny[] =
				"{\"error\":\"permission denied: only root or the agent's user may "
				"use the control socket\"}\n";

			send(cfd, deny, sizeof(deny) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			pr_warn("control socket: refused a client of uid %d", (int)uid);
			close(cfd);
			continue;
		}
		if (ctl->n_clients >= XM_CTL_MAX_CLIENTS) {
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c) {
			c->in_cap = 4096;
			c->in = malloc(c->in_cap);
		}
		if (!c || !c->in || xm_loop_add(ctl->agent->loop, cfd, EPOLLIN, on_client, c)) {
			if (c)
				free(c->in);
			free(c);
			close(cfd);
			continue;
		}
		c->ctl = ctl;
		c->fd = cfd;
		c->deadline_ms = xm_mono_ms() + XM_CTL_DEADLINE_MS;
		c->next = ctl->clients;
		ctl->clients = c;
		ctl->n_clients++;
	}
}

/* Every XM_CTL_SWEEP_MS: close clients past their deadline. */
static void on_sweep(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xm_control *ctl = arg;
	__u64 expirations, now = xm_mono_ms();
	struct ctl_client *c, *next;

	if (read(fd, &expirations, sizeof(expirations)) < 0)
		return;
	if (ctl->accept_paused &&
	    !xm_loop_add(ctl->agent->loop, ctl->listen_fd, EPOLLIN, on_accept, ctl))
		ctl->accept_paused = false;
	for (c = ctl->clients; c; c = next) {
		next = c->next;
		if (now < c->deadline_ms)
			continue;
		pr_debug("control client timed out (%zu bytes of request, %zu of %zu answer sent)",
			 c->in_len, c->out_off, c->out_len);
		client_close(c);
	}
}

static int listen_socket(struct xm_control *ctl)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old_mask;
	int err = 0;

	err = xm_run_path(ctl->path, sizeof(ctl->path), ctl->agent->pin_root, "sock");
	if (err)
		return err;
	if (strlen(ctl->path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, ctl->path);
	ctl->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ctl->listen_fd < 0)
		return -errno;
	/* We hold the pin root's lock: a socket left there is a dead agent's. */
	if (unlink(ctl->path) == 0)
		pr_info("removed the stale control socket %s", ctl->path);
	old_mask = umask(0177);
	if (bind(ctl->listen_fd, (struct sockaddr *)&sun, sizeof(sun)))
		err = -errno;
	umask(old_mask);
	if (!err && listen(ctl->listen_fd, 64))
		err = -errno;
	return err;
}

int xm_control_start(struct xm_agent *a)
{
	struct itimerspec its = { .it_interval.tv_nsec = XM_CTL_SWEEP_MS * 1000000L,
				  .it_value.tv_nsec = XM_CTL_SWEEP_MS * 1000000L };
	struct xm_control *ctl = calloc(1, sizeof(*ctl));
	int err;

	if (!ctl)
		return -ENOMEM;
	ctl->agent = a;
	ctl->listen_fd = ctl->timer_fd = -1;
	a->control = ctl;
	err = listen_socket(ctl);
	if (!err) {
		ctl->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (ctl->timer_fd < 0 || timerfd_settime(ctl->timer_fd, 0, &its, NULL))
			err = -errno;
	}
	if (!err)
		err = xm_loop_add(a->loop, ctl->listen_fd, EPOLLIN, on_accept, ctl);
	if (!err)
		err = xm_loop_add(a->loop, ctl->timer_fd, EPOLLIN, on_sweep, ctl);
	if (err)
		pr_err("control socket %s: %s", ctl->path, strerror(-err));
	return err;
}

void xm_control_stop(struct xm_agent *a)
{
	struct xm_control *ctl = a->control;

	if (!ctl)
		return;
	while (ctl->clients)
		client_close(ctl->clients);
	if (ctl->listen_fd >= 0) {
		if (!ctl->accept_paused)
			xm_loop_del(a->loop, ctl->listen_fd);
		close(ctl->listen_fd);
		unlink(ctl->path);
	}
	if (ctl->timer_fd >= 0) {
		xm_loop_del(a->loop, ctl->timer_fd);
		close(ctl->timer_fd);
	}
	free(ctl);
	a->control = NULL;
}
