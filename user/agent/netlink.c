// SPDX-License-Identifier: MIT
/*
 * Netlink monitor (libmnl): rtnetlink groups for links, neighbours (ARP/ND
 * and bridge FDB) and IPv4/IPv6 routes, plus NFNLGRP_NFTABLES for any change
 * of the nftables ruleset. Events are acted on as they arrive, in the
 * agent's loop: the reaction time is the loop's, far below a second.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include "agent.h"
#include "log.h"
#include "netlink.h"

#ifndef AF_BRIDGE
#define AF_BRIDGE 7
#endif

/* Who gets the events: the module's callbacks and their agent. */
struct nl_dispatch {
	struct xm_agent *a;
	const struct xm_nl_ops *ops;
};

/* The event sockets of xm_nl_monitor_start, reached from the agent (a->nl). */
struct xm_nl_monitor {
	struct mnl_socket *rt, *nft;
	struct nl_dispatch d;
};

struct link_attrs {
	struct nlattr *tb[IFLA_MAX + 1];
	struct nlattr *info[IFLA_INFO_MAX + 1];
	struct nlattr *vx[IFLA_VXLAN_MAX + 1];
};

static int attr_cb(const struct nlattr *attr, void *data, int max)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type <= max)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *a, void *d) { return attr_cb(a, d, IFLA_MAX); }
static int info_attr_cb(const struct nlattr *a, void *d) { return attr_cb(a, d, IFLA_INFO_MAX); }
static int vx_attr_cb(const struct nlattr *a, void *d) { return attr_cb(a, d, IFLA_VXLAN_MAX); }
static int neigh_attr_cb(const struct nlattr *a, void *d) { return attr_cb(a, d, NDA_MAX); }
static int route_attr_cb(const struct nlattr *a, void *d) { return attr_cb(a, d, RTA_MAX); }

static void parse_link(const struct nlmsghdr *nlh, struct xm_nl_link *l)
{
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct link_attrs at;

	memset(&at, 0, sizeof(at));
	memset(l, 0, sizeof(*l));
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, at.tb);
	l->ifindex = ifi->ifi_index;
	l->name = at.tb[IFLA_IFNAME] ? mnl_attr_get_str(at.tb[IFLA_IFNAME]) : "";
	l->master = at.tb[IFLA_MASTER] ? (int)mnl_attr_get_u32(at.tb[IFLA_MASTER]) : 0;
	l->mtu = at.tb[IFLA_MTU] ? mnl_attr_get_u32(at.tb[IFLA_MTU]) : 0;
	l->kind = "";
	if (at.tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(at.tb[IFLA_ADDRESS]) == 6)
		memcpy(l->addr, mnl_attr_get_payload(at.tb[IFLA_ADDRESS]), 6);
	if (!at.tb[IFLA_LINKINFO])
		return;
	mnl_attr_parse_nested(at.tb[IFLA_LINKINFO], info_attr_cb, at.info);
	if (at.info[IFLA_INFO_KIND])
		l->kind = mnl_attr_get_str(at.info[IFLA_INFO_KIND]);
	if (strcmp(l->kind, "vxlan") || !at.info[IFLA_INFO_DATA])
		return;
	mnl_attr_parse_nested(at.info[IFLA_INFO_DATA], vx_attr_cb, at.vx);
	if (at.vx[IFLA_VXLAN_ID])
		l->vxlan_id = mnl_attr_get_u32(at.vx[IFLA_VXLAN_ID]);
	if (at.vx[IFLA_VXLAN_PORT])
		l->vxlan_port = ntohs(mnl_attr_get_u16(at.vx[IFLA_VXLAN_PORT]));
	if (at.vx[IFLA_VXLAN_PORT_RANGE] &&
	    mnl_attr_get_payload_len(at.vx[IFLA_VXLAN_PORT_RANGE]) >= 4) {
		const __u16 *r = mnl_attr_get_payload(at.vx[IFLA_VXLAN_PORT_RANGE]);

		l->vxlan_port_min = ntohs(r[0]);
		l->vxlan_port_max = ntohs(r[1]);
	}
}

static void on_link(const struct nl_dispatch *d, const struct nlmsghdr *nlh)
{
	struct xm_nl_link l;

	if (!d->ops->link)
		return;
	parse_link(nlh, &l);
	d->ops->link(d->a, nlh->nlmsg_type == RTM_NEWLINK, &l);
}

static void on_neigh(const struct nl_dispatch *d, const struct nlmsghdr *nlh)
{
	struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
	struct nlattr *tb[NDA_MAX + 1] = {};
	struct xm_nl_neigh n = {};

	if (!d->ops->neigh)
		return;
	mnl_attr_parse(nlh, sizeof(*nd), neigh_attr_cb, tb);
	n.family = nd->ndm_family;
	n.ifindex = nd->ndm_ifindex;
	n.state = nd->ndm_state;
	if (tb[NDA_LLADDR] && mnl_attr_get_payload_len(tb[NDA_LLADDR]) == 6) {
		n.has_lladdr = true;
		memcpy(n.lladdr, mnl_attr_get_payload(tb[NDA_LLADDR]), 6);
	}
	if (tb[NDA_DST]) {
		int len = mnl_attr_get_payload_len(tb[NDA_DST]);

		if (len == 4 || len == 16) {
			n.dst_len = len;
			memcpy(n.dst, mnl_attr_get_payload(tb[NDA_DST]), len);
		}
	}
	d->ops->neigh(d->a, nlh->nlmsg_type == RTM_NEWNEIGH, &n);
}

static void on_route(const struct nl_dispatch *d, const struct nlmsghdr *nlh)
{
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct nlattr *tb[RTA_MAX + 1] = {};
	struct xm_nl_route r = {};

	if (!d->ops->route || (rtm->rtm_flags & RTM_F_CLONED))
		return;
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb);
	r.family = rtm->rtm_family;
	r.table = tb[RTA_TABLE] ? (int)mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (r.table == RT_TABLE_LOCAL)
		return; /* addresses of this node, not where pods are */
	r.dst_len = rtm->rtm_dst_len;
	if (tb[RTA_DST]) {
		int len = mnl_attr_get_payload_len(tb[RTA_DST]);

		memcpy(r.dst, mnl_attr_get_payload(tb[RTA_DST]), len < 16 ? len : 16);
	}
	d->ops->route(d->a, nlh->nlmsg_type == RTM_NEWROUTE, &r);
}

static int rt_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nl_dispatch *d = data;

	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		on_link(d, nlh);
		break;
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH:
		on_neigh(d, nlh);
		break;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		on_route(d, nlh);
		break;
	}
	return MNL_CB_OK;
}

static void on_rt_readable(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE * 4];
	struct xm_nl_monitor *m = arg;
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == ENOBUFS) {
				pr_warn("netlink: events lost (socket overrun): invalidating everything");
				if (m->d.ops->lost)
					m->d.ops->lost(m->d.a);
				continue;
			}
			return;
		}
		mnl_cb_run(buf, n, 0, 0, rt_msg_cb, &m->d);
	}
}

static void on_nft_readable(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE * 4];
	struct xm_nl_monitor *m = arg;
	bool changed = false;
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == ENOBUFS) {
				changed = true;
				continue;
			}
			break;
		}
		for (struct nlmsghdr *nlh = (void *)buf; mnl_nlmsg_ok(nlh, n);
		     nlh = mnl_nlmsg_next(nlh, (int *)&n)) {
			int type = NFNL_MSG_TYPE(nlh->nlmsg_type);

			if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
				continue;
			/* Every change but the generation note: a rule, a chain, a set element... */
			if (type != NFT_MSG_NEWGEN && type != NFT_MSG_GETGEN)
				changed = true;
		}
	}
	if (changed && m->d.ops->nft)
		m->d.ops->nft(m->d.a);
}

static struct mnl_socket *open_sock(int bus, unsigned int groups, const int *extra, int n_extra)
{
	struct mnl_socket *nl = mnl_socket_open(bus);
	int rcvbuf = 4 << 20;

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0)
		goto err;
	for (int i = 0; i < n_extra; i++) {
		int g = extra[i];

		if (mnl_socket_setsockopt(nl, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0)
			goto err;
	}
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	return nl;
err:
	mnl_socket_close(nl);
	return NULL;
}

int xm_nl_monitor_start(struct xm_agent *a, const struct xm_nl_ops *ops)
{
	static const int rt_groups[] = { RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE,
					 RTNLGRP_IPV6_ROUTE };
	static const int nft_groups[] = { NFNLGRP_NFTABLES };
	struct xm_nl_monitor *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return -ENOMEM;
	a->nl = m; /* xm_nl_monitor_stop undoes a partial start */
	m->d = (struct nl_dispatch){ .a = a, .ops = ops };
	m->rt = open_sock(NETLINK_ROUTE, 0, rt_groups, 4);
	if (!m->rt)
		return -errno;
	m->nft = open_sock(NETLINK_NETFILTER, 0, nft_groups, 1);
	if (!m->nft) {
		err = -errno;
		pr_err("netlink: cannot watch nftables (NFNLGRP_NFTABLES): %s", strerror(-err));
		return err;
	}
	err = xm_loop_add(a->loop, mnl_socket_get_fd(m->rt), EPOLLIN, on_rt_readable, m);
	if (!err)
		err = xm_loop_add(a->loop, mnl_socket_get_fd(m->nft), EPOLLIN, on_nft_readable, m);
	return err;
}

static void monitor_close(struct xm_agent *a, struct mnl_socket *nl)
{
	if (!nl)
		return;
	if (a->loop)
		xm_loop_del(a->loop, mnl_socket_get_fd(nl));
	mnl_socket_close(nl);
}

void xm_nl_monitor_stop(struct xm_agent *a)
{
	if (!a->nl)
		return;
	monitor_close(a, a->nl->rt);
	monitor_close(a, a->nl->nft);
	free(a->nl);
	a->nl = NULL;
}

static int dump(struct xm_agent *a, const struct xm_nl_ops *ops, int type, int family)
{
	char buf[MNL_SOCKET_BUFFER_SIZE * 4];
	struct nl_dispatch c = { .a = a, .ops = ops };
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct rtgenmsg *rt;
	unsigned int seq = (unsigned int)time(NULL), portid;
	int ret, err = 0;

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
	rt->rtgen_family = family;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto out;
	}
	while ((ret = mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
		ret = mnl_cb_run(buf, ret, seq, portid, rt_msg_cb, &c);
		if (ret <= MNL_CB_STOP)
			break;
	}
	if (ret < 0)
		err = -errno;
out:
	mnl_socket_close(nl);
	return err;
}

int xm_nl_links(struct xm_agent *a, const struct xm_nl_ops *ops)
{
	return dump(a, ops, RTM_GETLINK, AF_UNSPEC);
}

int xm_nl_neighs(struct xm_agent *a, const struct xm_nl_ops *ops)
{
	int err = dump(a, ops, RTM_GETNEIGH, AF_UNSPEC);

	return err ? err : dump(a, ops, RTM_GETNEIGH, AF_BRIDGE);
}
