/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared by the BPF programs and user space: constants, pin names and the
 * layout of every map key and value. One definition for both sides; never
 * copy a struct from here by hand.
 *
 * Byte order: addresses are kept in network byte order, ports in host byte
 * order. IPv4 addresses sit in ip[0] with ip[1..3] zero; IPv4-mapped IPv6
 * addresses are always normalised to IPv4 before they reach a map.
 */
#ifndef XMESH_COMMON_H
#define XMESH_COMMON_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * Bumped whenever a pinned map's key/value layout or meaning changes. An
 * agent refuses a pin root written by another ABI instead of misreading it.
 */
#define XM_ABI_VERSION 7 /* 2: the redirect key carries the ISNs; 3: 32-bit histogram counts, socket state 72 B (bulk count, flags), the overlay flow carries its outer header; 4: probe counters in pages of 64 backends; 5: overlay TCP/IPv4 flows in their own map (xm_ovl_tcp4, 12-byte key); 6: one socket storage for the LB and redirection (xm_sock); 7: xm_lb_hist is mmapable (BPF_F_MMAPABLE) */
#define XM_META_MAGIC 0x786d657368ULL /* "xmesh" */

#define XM_PIN_ROOT_DEFAULT "/sys/fs/bpf/xmesh"
#define XM_PIN_MAPS "maps"   /* <root>/maps/<map name> */
#define XM_PIN_LINKS "links" /* <root>/links/<link name> */

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* An IPv4 or IPv6 address; IPv4 in ip[0], the rest zero. */
struct xm_addr {
	__u32 ip[4];
};

/* Key of the endpoints map: an IP address that belongs to a local pod. */
struct xm_endpoint_key {
	__u8 family; /* AF_INET or AF_INET6 */
	__u8 pad[3];
	struct xm_addr addr;
};

#define XM_ENDPOINT_OWNER_LEN 64

/*
 * What the node knows about one local pod address. Written by the CNI plugin
 * or `xmeshctl endpoint add`; read by the redirect datapath (netns_cookie)
 * and the overlay cache (ifindex, MACs).
 */
struct xm_endpoint {
	__u64 netns_cookie;  /* the pod's network namespace */
	__u32 host_ifindex;  /* host-side veth, 0 if unknown */
	__u32 pod_ifindex;   /* interface inside the pod, 0 if unknown */
	__u8 pod_mac[6];
	__u8 host_mac[6];
	__u32 flags;         /* XM_EP_F_* */
	char owner[XM_ENDPOINT_OWNER_LEN]; /* CNI container id, or "manual" */
};

#define XM_EP_F_CNI (1U << 0) /* registered by xmesh-cni */

/* One entry of the meta map: who wrote this pin root. */
struct xm_meta {
	__u64 magic;
	__u32 abi_version;
	__u32 kfeatures; /* what the agent found in the kernel (user/lib/kfeatures.h) */
	char agent_version[32];
};

/*
 * Datapath counters, one slot each in the per-CPU stats array. Append only:
 * the index is part of the ABI.
 */
enum xm_stat {
	XM_STAT_REDIRECT_MSGS = 0,
	XM_STAT_REDIRECT_BYTES,
	XM_STAT_REDIRECT_MISS_MSGS,  /* a message of a socket in the map that took TCP */
	XM_STAT_REDIRECT_MISS_BYTES,
	XM_STAT_SOCK_INSERTED,       /* sockets put in the redirect map */
	XM_STAT_SOCK_INSERT_FAILED,  /* map full or other insert error */
	XM_STAT_SOCK_SKIPPED_FOREIGN, /* pod address not registered to this netns */
	XM_STAT_LB_CONNECTS,
	XM_STAT_LB_NO_BACKEND,
	XM_STAT_LB_SENDMSG,          /* unconnected UDP datagrams to a VIP sent to a backend */
	XM_STAT_LB_REVNAT,           /* UDP replies shown as coming from the VIP */
	XM_STAT_OVL_ENCAP_PKTS,      /* overlay cache: packets encapsulated by the fast path */
	XM_STAT_OVL_ENCAP_BYTES,
	XM_STAT_OVL_DECAP_PKTS,      /* packets decapsulated and handed to a pod */
	XM_STAT_OVL_DECAP_BYTES,
	XM_STAT_OVL_ENCAP_MISSES,    /* pod TCP/UDP packets that took the slow path out */
	XM_STAT_OVL_DECAP_MISSES,    /* VXLAN TCP/UDP packets that took the slow path in */
	XM_STAT_OVL_DECAP_REJECTED,  /* outer address, port or VNI not the learned ones */
	XM_STAT_OVL_FLOWS_CACHED,    /* flows seen both ways, now on the fast path */
	XM_STAT_OVL_LEARNED_REMOTE,  /* outer headers learned or changed */
	XM_STAT_OVL_LEARNED_LOCAL,   /* pod deliveries learned or changed */
	XM_STAT_OVL_EVICTIONS,       /* flows pushed out of the full LRU (agent's estimate) */
	XM_STAT_OVL_INVALIDATIONS,   /* entries removed or epochs bumped by the agent */
	XM_STAT_OVL_FLOWS_NEW,       /* flow entries created (BPF) */
	XM_STAT_OVL_FLOWS_ENDED,     /* flow entries deleted on TCP FIN/RST (BPF) */
	XM_STAT_OVL_FLOWS_REMOVED,   /* flow entries deleted by user space */
	XM_STAT_LB_REV_NEW,          /* UDP reverse entries created (BPF) */
	XM_STAT_LB_REV_EVICTIONS,    /* reverse entries pushed out of the full LRU (agent's estimate) */
	XM_STAT_LB_FLOWS_NEW,        /* shared flow states created for local backends (BPF) */
	XM_STAT_LB_FLOWS_ENDED,      /* shared flow states deleted at close (BPF) */
	XM_STAT_LB_FLOWS_EVICTIONS,  /* flow states pushed out of the full LRU (agent's estimate) */
	XM_STAT_SOCK_SKIPPED_FASTOPEN, /* SYN carried data: the connection stays on TCP */
	XM_STAT_SOCK_SKIPPED_OPTOUT, /* port or netns opted out (xmeshctl sock skip) */
	XM_STAT_REDIRECT_RECV_EAGAIN, /* blocking recv() of a redirected socket got EAGAIN */
	XM_STAT_REDIRECT_RECV_WAITALL, /* MSG_WAITALL recv() on a redirected socket */
	XM_STAT_REDIRECT_RECV_BELOW_LOWAT, /* blocking recv() returned < SO_RCVLOWAT bytes */
	XM_STAT_REDIRECT_BULK_DEMOTED, /* bulk senders taken out of the redirect map */
	XM_STAT_REDIRECT_BULK_KEPT,  /* bulk senders kept: their peer redirects to them */
	XM_STAT_LB_PROBE_LOOKUPS,    /* cgroup_skb packets that could change a probe: state looked up */
	XM_STAT_LB_HELD_SEGS,        /* data segments held at egress: picked for retirement (lb.h) */
	XM_STAT_LB_HELD_MSGS,        /* sk_msg sends of such sockets sent to TCP to be held there */
	XM_STAT_MAX = 64,
};

/* Size limits; overridable at build time. */
#ifndef XM_MAX_ENDPOINTS
#define XM_MAX_ENDPOINTS 65536
#endif
#ifndef XM_MAX_SOCKS
#define XM_MAX_SOCKS 262144
#endif

#endif /* XMESH_COMMON_H */
