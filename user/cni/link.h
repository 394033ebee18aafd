/* SPDX-License-Identifier: MIT */
/* rtnetlink queries of xmesh-cni (libmnl), in the calling thread's netns. */
#ifndef XMESH_CNI_LINK_H
#define XMESH_CNI_LINK_H

#include <stdbool.h>
#include <net/if.h>
#include <linux/types.h>
#include "cni_state.h"

struct xm_link {
	__u32 ifindex;
	char name[IF_NAMESIZE];
	char kind[16];      /* IFLA_INFO_KIND: "veth", "bridge", ... or "" */
	__u8 mac[6];
	bool has_mac;
	__u32 peer_ifindex; /* IFLA_LINK; for a veth: the peer's ifindex in its netns */
	int peer_netnsid;   /* IFLA_LINK_NETNSID, -1 when the peer is in this netns */
};

/* -ENODEV when there is no such link. */
int xm_link_by_name(const char *name, struct xm_link *l);
int xm_link_by_index(__u32 ifindex, struct xm_link *l);
/* Addresses (global and link scope) configured on ifindex. */
int xm_link_addrs(__u32 ifindex, struct xm_cni_ip *ips, unsigned int max, unsigned int *n);
/* The id this netns gives to the netns open at nsfd; -ENOENT when it has none. */
int xm_netns_id(int nsfd, int *nsid);

#endif
