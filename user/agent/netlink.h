/* SPDX-License-Identifier: MIT */
/*
 * Netlink for the agent (libmnl): list links, and watch links, neighbours,
 * FDB entries, routes and the nftables ruleset of the agent's netns. Events
 * are parsed here and handed to callbacks; what they mean is decided by the
 * datapath module that registered them.
 */
#ifndef XMESH_AGENT_NETLINK_H
#define XMESH_AGENT_NETLINK_H

#include <stdbool.h>
#include <linux/types.h>

struct xm_agent;

struct xm_nl_link {
	int ifindex;
	int master;          /* 0 if none */
	const char *name;
	const char *kind;    /* "veth", "vxlan", "bridge", ... or "" */
	__u8 addr[6];        /* IFLA_ADDRESS, zero if none */
	__u32 mtu;
	/* vxlan only */
	__u32 vxlan_id;
	__u16 vxlan_port;    /* host order, 0 if absent */
	__u16 vxlan_port_min, vxlan_port_max;
};

struct xm_nl_neigh {
	int family;          /* AF_INET, AF_INET6, AF_BRIDGE (FDB) */
	int ifindex;
	__u16 state;         /* NUD_* */
	bool has_lladdr;
	__u8 lladdr[6];
	int dst_len;         /* 0: none; 4 or 16 */
	__u8 dst[16];        /* NDA_DST: neighbour address, or FDB remote */
};

struct xm_nl_route {
	int family;
	int table;
	int dst_len;         /* prefix length */
	__u8 dst[16];
};

struct xm_nl_ops {
	void (*link)(struct xm_agent *a, bool add, const struct xm_nl_link *l);
	void (*neigh)(struct xm_agent *a, bool add, const struct xm_nl_neigh *n);
	void (*route)(struct xm_agent *a, bool add, const struct xm_nl_route *r);
	/* nftables ruleset changed (one call per batch of messages) */
	void (*nft)(struct xm_agent *a);
	/* events were lost (socket overrun): assume anything changed */
	void (*lost)(struct xm_agent *a);
};

/* Dump every link of the netns to ops->link(add = true). */
int xm_nl_links(struct xm_agent *a, const struct xm_nl_ops *ops);
/* Dump every neighbour and FDB entry to ops->neigh(add = true). */
int xm_nl_neighs(struct xm_agent *a, const struct xm_nl_ops *ops);
/* Subscribe and register the sockets with the agent's loop. */
int xm_nl_monitor_start(struct xm_agent *a, const struct xm_nl_ops *ops);
void xm_nl_monitor_stop(struct xm_agent *a);

#endif
