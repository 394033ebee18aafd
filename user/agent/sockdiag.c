// SPDX-License-Identifier: MIT
/* SOCK_DESTROY over sock_diag netlink (sockdiag.h). */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include "sockdiag.h"

struct mnl_socket *xm_sockdiag_open(void)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_SOCK_DIAG);

	if (nl && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = errno;

		mnl_socket_close(nl);
		errno = err;
		return NULL;
	}
	return nl;
}

void xm_sockdiag_close(struct mnl_socket *nl)
{
	if (nl)
		mnl_socket_close(nl);
}

int xm_sockdiag_destroy(struct mnl_socket *nl, const struct xm_rebal_pick *p)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct inet_diag_req_v2 *req;
	struct nlmsghdr *nlh;
	unsigned int seq = (unsigned int)p->cookie ^ p->sport;
	ssize_t n;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DESTROY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = (__u8)p->family;
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = 1U << 1; /* TCP_ESTABLISHED; the lookup is by the id below */
	/* The kernel looks the socket up with src = its local end, dst = the peer. */
	req->id.idiag_sport = htons(p->sport);
	req->id.idiag_dport = p->dport;
	memcpy(req->id.idiag_src, p->saddr, sizeof(req->id.idiag_src));
	memcpy(req->id.idiag_dst, p->daddr, sizeof(req->id.idiag_dst));
	req->id.idiag_if = 0;
	req->id.idiag_cookie[0] = (__u32)p->cookie;
	req->id.idiag_cookie[1] = (__u32)(p->cookie >> 32);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	/* The ack: an NLMSG_ERROR with error 0, or the kernel's -errno. */
	if (mnl_cb_run(buf, n, seq, mnl_socket_get_portid(nl), NULL, NULL) < 0)
		return -errno;
	return 0;
}

/*
 * A connected pair on 127.0.0.1 in the calling thread's network namespace:
 * *client and *server (the accepted end) connected, p naming the client's
 * end as the iterator would. 0, or -errno.
 */
static int loopback_pair(int *client, int *server, struct xm_rebal_pick *p)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in local;
	socklen_t len = sizeof(sin);
	int lfd, err = 0;

	*client = *server = -1;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len))
		err = -errno;
	if (!err && (*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		err = -errno;
	if (!err && connect(*client, (struct sockaddr *)&sin, sizeof(sin)))
		err = -errno;
	if (!err && (*server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		err = -errno;
	len = sizeof(local);
	if (!err && getsockname(*client, (struct sockaddr *)&local, &len))
		err = -errno;
	len = sizeof(p->cookie);
	if (!err && getsockopt(*client, SOL_SOCKET, SO_COOKIE, &p->cookie, &len))
		err = -errno;
	close(lfd);
	if (err)
		return err;
	p->family = AF_INET;
	p->sport = ntohs(local.sin_port);
	p->dport = sin.sin_port;
	p->saddr[0] = local.sin_addr.s_addr;
	p->daddr[0] = sin.sin_addr.s_addr;
	return 0;
}

int xm_sockdiag_probe(void)
{
	struct xm_rebal_pick p = { 0 };
	struct mnl_socket *nl;
	int client, server, err, so_err = 0;
	socklen_t len = sizeof(so_err);

	/*
	 * Destroy a real connection: a socket that cannot exist gets -ENOENT
	 * from a kernel that can destroy, and the same from one whose sock_diag
	 * has no TCP handler (tcp_diag not loaded), which then refuses every close.
	 */
	err = loopback_pair(&client, &server, &p);
	nl = err ? NULL : xm_sockdiag_open();
	if (!err && !nl)
		err = -errno;
	if (!err)
		err = xm_sockdiag_destroy(nl, &p);
	if (!err && (getsockopt(client, SOL_SOCKET, SO_ERROR, &so_err, &len) || so_err != ECONNABORTED))
		err = -EPROTO; /* acknowledged, yet the connection was not aborted */
	xm_sockdiag_close(nl);
	if (client >= 0)
		close(client);
	if (server >= 0)
		close(server);
	return err;
}
