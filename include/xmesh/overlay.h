/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Overlay cache (bpf/overlay.bpf.c): what the VXLAN slow path taught us, so
 * that later packets of an established, allowed flow can skip the tunnel
 * device, the bridge and netfilter of this node.
 *
 * Three maps, all learned from packets the slow path handled:
 *   xm_ovl_remote  remote pod address -> outer header the kernel built for it
 *                  (learned on the underlay device's tc egress; what the agent
 *                  and xmeshctl see: the fast paths use the flow's copy)
 *   xm_ovl_local   local pod address -> host veth, MACs the kernel delivered
 *                  with (learned on the host veth's tc egress)
 *   xm_ovl_tcp4    IPv4 TCP flow (addresses, ports), from the local pod's
 *                  side -> which directions the slow path delivered, and
 *                  copies of the delivery and of the outer header: all a
 *                  fast-path packet reads; used only once both directions
 *                  were seen
 *   xm_ovl_flows   the same for every other flow (UDP, IPv6 pods), under the
 *                  whole 5-tuple
 * plus xm_ovl_cfg (one entry: set by the agent, read by every packet).
 *
 * Addresses are in network byte order, ports in host byte order, as in
 * common.h. IPv6 is laid out (family + struct xm_addr, template room for a
 * 40-byte outer header) but the programs handle IPv4 only for now.
 */
#ifndef XMESH_OVERLAY_H
#define XMESH_OVERLAY_H

#include "common.h"

/* The flow maps by name (user space walks both as one cache). */
#define XM_OVL_MAP_TCP4 "xm_ovl_tcp4"
#define XM_OVL_MAP_FLOWS "xm_ovl_flows"

#ifndef XM_OVL_MAX_FLOWS
#define XM_OVL_MAX_FLOWS 65536
#endif
#ifndef XM_OVL_MAX_REMOTE
#define XM_OVL_MAX_REMOTE 16384
#endif
#ifndef XM_OVL_MAX_LOCAL
#define XM_OVL_MAX_LOCAL 4096
#endif

#define XM_OVL_VXLAN_PORT 4789
#define XM_OVL_VXLAN_HLEN 8
/* Outer Ethernet + IPv4 + UDP + VXLAN + inner Ethernet. */
#define XM_OVL_ENCAP4_LEN (14 + 20 + 8 + 8 + 14)
/* The same with an IPv6 outer header (room reserved in the template). */
#define XM_OVL_ENCAP6_LEN (14 + 40 + 8 + 8 + 14)
/* Where the remote node's address lies in an IPv4 template. */
#define XM_OVL_OUTER4_DADDR_OFF (14 + 16)

/* Agent-written configuration, xm_ovl_cfg[0]. */
struct xm_ovl_cfg {
	__u32 epoch;          /* bumped to invalidate every flow at once (policy change) */
	__u32 enabled;        /* 0: programs learn nothing and pass everything */
	__u32 vxlan_ifindex;  /* the overlay device packets are decapsulated by */
	__u32 underlay_ifindex; /* device the encapsulated packets leave by */
	__u16 vxlan_port;     /* UDP destination port of the overlay (host order) */
	__u16 port_min;       /* UDP source port range of the overlay device */
	__u16 port_max;
	__u16 pad;
	__u32 underlay_mtu;   /* packets that fit need no bpf_check_mtu() */
	__u32 tmpl_gen;       /* bumped when learned outer headers are dropped (struct xm_ovl_flow) */
};

struct xm_ovl_addr_key {
	__u8 family; /* AF_INET (AF_INET6 reserved) */
	__u8 pad[3];
	struct xm_addr addr;
};

/*
 * How to reach one remote pod: the headers the kernel put in front of its
 * packets. hdr holds outer Ethernet, outer IP, UDP, VXLAN and inner Ethernet,
 * exactly as seen on the wire (hdr_len bytes); the programs patch lengths,
 * IP id and checksum, UDP source port and ECN per packet.
 */
struct xm_ovl_remote {
	__u8 hdr[XM_OVL_ENCAP6_LEN]; /* 84 bytes */
	__u8 hdr_len;        /* XM_OVL_ENCAP4_LEN for an IPv4 outer header */
	__u8 outer_family;   /* AF_INET */
	__u8 inner_tos;      /* inner TOS of the packet learned from */
	__u8 pad;
	__u32 csum_partial;  /* one's complement sum of the outer IPv4 header as stored */
	__u32 vni;           /* host byte order, 24 bits */
	__u32 ifindex;       /* underlay device it left by */
	struct xm_addr outer_saddr; /* this node */
	struct xm_addr outer_daddr; /* the remote node */
	__u64 learned_ns;    /* bpf_ktime_get_ns() when (re)learned */
};

/* How the slow path delivers to one local pod. */
struct xm_ovl_local {
	__u32 ifindex;       /* host-side veth */
	__u8 pod_mac[6];     /* destination MAC of delivered frames */
	__u8 gw_mac[6];      /* source MAC of delivered frames (the node's gateway) */
	__u64 learned_ns;
};

/* One flow, from the local pod's point of view. */
struct xm_ovl_flow_key {
	struct xm_addr local;
	struct xm_addr remote;
	__u16 local_port;
	__u16 remote_port;
	__u8 family;
	__u8 proto;          /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[2];
};

/*
 * The flow hash the encap picks the outer UDP source port from when the
 * packet carries none (skb->hash 0; TCP and connected UDP sockets set one,
 * and the kernel's udp_flow_src_port() uses it too): a few multiplications
 * over the flow key the program parsed anyway, instead of a flow dissection
 * (bpf_get_hash_recalc(): ~60 ns). Stable per flow, different flows spread
 * over the whole range (the encap scales it as the kernel does). Shared with
 * the tests, which check the port against it.
 */
/* always inlined: a BPF-to-BPF call would cost more than the hash */
static inline __attribute__((always_inline)) __u32 xm_ovl_flow_hash(const struct xm_ovl_flow_key *k)
{
	__u32 local = k->local.ip[0] ^ k->local.ip[1] ^ k->local.ip[2] ^ k->local.ip[3];
	__u32 remote = k->remote.ip[0] ^ k->remote.ip[1] ^ k->remote.ip[2] ^ k->remote.ip[3];
	__u32 h;

	h = local * 0x9e3779b1U + remote;
	h = h * 0x9e3779b1U + (((__u32)k->local_port << 16) | k->remote_port);
	h = h * 0x9e3779b1U + k->proto;
	/* murmur3's finaliser: every input bit reaches the high bits the port is scaled from */
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

/*
 * The key of xm_ovl_tcp4: a TCP flow between IPv4 pods (nearly every cached
 * packet), from the local pod's side, in 12 bytes: the map hashes its whole
 * key (jhash), one final mix for 12 bytes against three more rounds and a
 * 40-byte compare for struct xm_ovl_flow_key. Every other flow (UDP, IPv6
 * pods) is kept under the whole key in xm_ovl_flows. Same value.
 */
struct xm_ovl_tcp4_key {
	__be32 local;
	__be32 remote;
	__u16 local_port;
	__u16 remote_port;
};

#define XM_OVL_SEEN_OUT (1U << 0) /* local -> remote left encapsulated by the kernel */
#define XM_OVL_SEEN_IN (1U << 1)  /* remote -> local delivered to the pod by the kernel */
#define XM_OVL_SEEN_BOTH (XM_OVL_SEEN_OUT | XM_OVL_SEEN_IN)

/*
 * Everything a fast-path packet needs, in one entry: one lookup per packet
 * (besides xm_ovl_cfg), hot fields first.
 * The delivery fields repeat what xm_ovl_local holds for the local pod; they
 * are written with SEEN_IN, from the very packet the kernel delivered. The
 * outer header template repeats xm_ovl_remote's for the remote pod; it is
 * written with SEEN_OUT, from the very frame the kernel encapsulated, and is
 * valid while ul_ifindex != 0 and tmpl_gen == xm_ovl_cfg.tmpl_gen (the agent
 * bumps tmpl_gen when it drops learned outer headers: the flow stays, its
 * template is relearned from its next slow-path packet).
 */
struct xm_ovl_flow {
	__u32 epoch;         /* xm_ovl_cfg.epoch when learned; older entries are dead */
	__u8 seen;           /* XM_OVL_SEEN_* */
	__u8 fin;            /* XM_OVL_SEEN_* of the directions that sent a TCP FIN */
	__u8 inner_tos;      /* inner TOS of the packet the template was learned from */
	__u8 pad;
	__u32 ifindex;       /* host veth of the local pod (0 until SEEN_IN) */
	__u8 pod_mac[6];     /* pod_mac, gw_mac: the delivered frame's first 12 bytes, */
	__u8 gw_mac[6];      /* kept together at offset 12 (the decap copies them whole) */
	__u32 ul_ifindex;    /* underlay device the template leaves by (0: no template) */
	__u32 tmpl_gen;      /* xm_ovl_cfg.tmpl_gen when the template was learned */
	__u8 hdr[XM_OVL_ENCAP4_LEN]; /* as xm_ovl_remote.hdr, 8-byte aligned */
	__u32 csum_partial;  /* one's complement sum of the template's outer IPv4 header */
	__u32 pad2;
};

/*
 * The kernel's preallocated hash elements are a 48-byte header, the key and
 * the value back to back: 48 + 40 + 104 = 192 bytes, so every flow entry is
 * exactly three cache lines (at 200 bytes most straddled four or five).
 */
_Static_assert(sizeof(struct xm_ovl_flow_key) + sizeof(struct xm_ovl_flow) == 144,
	       "xm_ovl_flows entries: keep key + value at 144 bytes (3 cache lines per element)");

#endif /* XMESH_OVERLAY_H */
