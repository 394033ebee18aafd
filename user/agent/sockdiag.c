// SPDX-License-Identifier: MIT
/* SOCK_DESTROY over sock_diag netlink (sockdiag.h). */
#include <errno.h>
#include <string.h>
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

int xm_sockdiag_probe(void)
{
	/* Port 0 on 0.0.0.0 both ways: no established socket can have it. */
	struct xm_rebal_pick none = { .family = AF_INET, .cookie = ~0ULL };
	struct mnl_socket *nl = xm_sockdiag_open();
	int err;

	if (!nl)
		return -errno;
	err = xm_sockdiag_destroy(nl, &none);
	xm_sockdiag_close(nl);
	return err == -ENOENT ? 0 : err ? err : -EEXIST;
}
