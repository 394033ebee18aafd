// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Overlay cache: a tc fast path for pod traffic across nodes over VXLAN.
 *
 * The kernel's overlay (bridge, routing, netfilter, VXLAN device) stays the
 * slow path and the only one that decides. Four tc programs watch it and,
 * once a flow has been delivered by it in both directions, carry that flow's
 * later packets themselves:
 *
 *   underlay egress   learns the outer header the kernel built for a remote
 *                     pod, and that local -> remote was sent (SEEN_OUT)
 *   host veth egress  learns how the kernel delivers to a local pod (veth,
 *                     MACs), and that remote -> local was delivered (SEEN_IN)
 *   host veth ingress fast path out: encapsulate from the cached header,
 *                     redirect to the underlay device
 *   underlay ingress  fast path in: check outer addresses, UDP port and VNI
 *                     against what we learned, decapsulate, redirect into
 *                     the pod (bpf_redirect_peer)
 *
 * Anything not found, or not both ways, or TCP SYN/FIN/RST, goes to the slow
 * path untouched. Inner packets are IPv4 or IPv6 (no extension headers),
 * the outer header IPv4. No bit of the packet is used as a mark. Invalidation is the
 * agent's (user/agent/netlink.c): it deletes entries, or bumps the epoch in
 * xm_ovl_cfg, which kills every flow at once.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <xmesh/overlay.h>
#include "lib/common_maps.h"
#include "lib/kfeatures.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define IP_DF 0x4000
#define PACKET_HOST 0
#define VXLAN_FLAG_I 0x08
#define INET_ECN_MASK 3
#define INET_ECN_CE 3
#define INET_ECN_ECT_0 2
/* A uapi macro, absent from vmlinux.h. */
#define ADJ_ROOM_ENCAP_L2(len) (((__u64)(len) & 0xff) << BPF_ADJ_ROOM_ENCAP_L2_SHIFT)

/* Outer IPv4 + UDP + VXLAN + inner Ethernet: what encap adds after the MAC header. */
#define ENCAP4_ROOM (XM_OVL_ENCAP4_LEN - ETH_HLEN)
/* Offsets in an encapsulated IPv4 frame. */
#define OFF_OIP ETH_HLEN
#define OFF_UDP (OFF_OIP + 20)
#define OFF_VXLAN (OFF_UDP + 8)
#define OFF_IETH (OFF_VXLAN + 8)
#define OFF_IIP (OFF_IETH + ETH_HLEN)
#define OFF_IL4 (OFF_IIP + 20)
/* Enough of a frame to parse up to the inner TCP header behind an IPv6 header. */
#define PARSE_LEN (OFF_IIP + 40 + 20)

/*
 * Written to cb[0] by the encap fast path so that the underlay egress
 * learner, which sees the redirected packet right after, skips it: it was
 * built from the cache and teaches nothing. The tc cb area is private to tc
 * programs; a stale equal value from elsewhere only skips one learning.
 */
#define XM_OVL_CB_FASTPATH 0x786f766cU /* "xovl" */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xm_ovl_cfg);
} xm_ovl_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XM_OVL_MAX_REMOTE);
	__type(key, struct xm_ovl_addr_key);
	__type(value, struct xm_ovl_remote);
} xm_ovl_remote SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XM_OVL_MAX_LOCAL);
	__type(key, struct xm_ovl_addr_key);
	__type(value, struct xm_ovl_local);
} xm_ovl_local SEC(".maps");

/* TCP between IPv4 pods, under a 12-byte key (see struct xm_ovl_tcp4_key). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XM_OVL_MAX_FLOWS);
	__type(key, struct xm_ovl_tcp4_key);
	__type(value, struct xm_ovl_flow);
} xm_ovl_tcp4 SEC(".maps");

/* Every other flow (UDP, IPv6 pods), under the whole key. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XM_OVL_MAX_FLOWS);
	__type(key, struct xm_ovl_flow_key);
	__type(value, struct xm_ovl_flow);
} xm_ovl_flows SEC(".maps");

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04

/*
 * A parsed inner TCP/UDP packet, IPv4 or IPv6. Its addresses and ports are
 * parsed straight into the flow key (no second copy: the key is what every
 * program looks up), oriented from the local pod's side.
 */
struct inner {
	struct xm_ovl_flow_key key; /* family, proto; ports in host order */
	__u8 tos;         /* IPv4 TOS or IPv6 traffic class */
	__u8 ttl;         /* TTL or hop limit */
	__u8 tcp_flags;   /* FIN 0x01, SYN 0x02, RST 0x04 */
	__u8 no_payload;  /* TCP segment without data (a pure ACK, say) */
	__u16 l3_len;     /* 20 or 40 */
};

static __always_inline struct xm_ovl_cfg *cfg_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&xm_ovl_cfg, &zero);
}

/*
 * Parse the inner packet at l3 (eth_proto as in the Ethernet header): an
 * IPv4 header without options or fragmentation, or an IPv6 header directly
 * followed by TCP or UDP, then the TCP or UDP header. local_is_src: the
 * packet was sent by the local pod (its source is the key's local end).
 * Returns 0 when the cache may handle it, -1 otherwise.
 */
static __always_inline int parse_inner(void *l3, void *data_end, __be16 eth_proto,
				       struct inner *in, bool local_is_src)
{
	struct xm_ovl_flow_key *k = &in->key;
	struct xm_addr *src = local_is_src ? &k->local : &k->remote;
	struct xm_addr *dst = local_is_src ? &k->remote : &k->local;
	__u16 *sport = local_is_src ? &k->local_port : &k->remote_port;
	__u16 *dport = local_is_src ? &k->remote_port : &k->local_port;
	__u32 l4_len;
	void *l4h;

	if (eth_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end || ip->ihl != 5 ||
		    (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return -1;
		__builtin_memset(k, 0, sizeof(*k));
		src->ip[0] = ip->saddr;
		dst->ip[0] = ip->daddr;
		k->family = AF_INET;
		k->proto = ip->protocol;
		in->tos = ip->tos;
		in->ttl = ip->ttl;
		in->l3_len = 20;
		l4_len = bpf_ntohs(ip->tot_len) - 20;
		l4h = ip + 1;
	} else if (eth_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		__builtin_memcpy(src, &ip6->saddr, 16);
		__builtin_memcpy(dst, &ip6->daddr, 16);
		k->family = AF_INET6;
		k->proto = ip6->nexthdr;
		k->pad[0] = k->pad[1] = 0;
		in->tos = (bpf_ntohs(*(__be16 *)ip6) >> 4) & 0xff;
		in->ttl = ip6->hop_limit;
		in->l3_len = 40;
		l4_len = bpf_ntohs(ip6->payload_len);
		l4h = ip6 + 1;
	} else {
		return -1;
	}
	if (k->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4h;

		if ((void *)(th + 1) > data_end)
			return -1;
		*sport = bpf_ntohs(th->source);
		*dport = bpf_ntohs(th->dest);
		in->tcp_flags = ((__u8 *)th)[13];
		in->no_payload = l4_len <= (__u32)th->doff * 4;
		return 0;
	}
	if (k->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4h;

		if ((void *)(uh + 1) > data_end)
			return -1;
		*sport = bpf_ntohs(uh->source);
		*dport = bpf_ntohs(uh->dest);
		in->tcp_flags = 0;
		in->no_payload = 0;
		return 0;
	}
	return -1;
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return *(const __u32 *)a == *(const __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

/*
 * The 64-byte template in eight 8-byte moves: __builtin_memcpy() into a
 * packet (alignment unknown to the compiler) becomes 64 byte loads and
 * stores. src is 8-byte aligned (stack or map value); unaligned packet
 * stores are allowed where the kernel has efficient unaligned access.
 */
static __always_inline void hdr4_copy(void *dst, const void *src)
{
	__u64 *d = dst;
	const __u64 *s = src;

#pragma unroll
	for (int i = 0; i < XM_OVL_ENCAP4_LEN / 8; i++)
		d[i] = s[i];
}

/*
 * The Ethernet addresses the slow path delivers with: pod_mac then gw_mac are
 * the first 12 bytes of the frame, at offsets 12 and 16 of the (8-byte
 * aligned) flow value: two moves.
 */
static __always_inline void eth_addrs_put(void *eth, const struct xm_ovl_flow *f)
{
	*(__u32 *)eth = *(const __u32 *)f->pod_mac;
	*(__u64 *)(eth + 4) = *(const __u64 *)(f->pod_mac + 4);
}

/* Both 8-byte aligned, XM_OVL_ENCAP4_LEN (64) bytes. */
static __always_inline int hdr4_eq(const __u8 *a, const __u8 *b)
{
	const __u64 *x = (const void *)a, *y = (const void *)b;
	__u64 d = 0;

#pragma unroll
	for (int i = 0; i < XM_OVL_ENCAP4_LEN / 8; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

static __always_inline void addr_key(struct xm_ovl_addr_key *k, __u8 family,
				     const struct xm_addr *a)
{
	k->family = family;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
	k->addr = *a;
}

/*
 * The flow maps: every access goes through these three, which pick the map
 * by the key (xm_ovl_tcp4 for TCP between IPv4 pods, xm_ovl_flows else).
 */
static __always_inline bool flow_is_tcp4(const struct xm_ovl_flow_key *k)
{
	return k->family == AF_INET && k->proto == IPPROTO_TCP;
}

static __always_inline void tcp4_key(struct xm_ovl_tcp4_key *k4, const struct xm_ovl_flow_key *k)
{
	k4->local = k->local.ip[0];
	k4->remote = k->remote.ip[0];
	/* both ports in one move: adjacent in both keys */
	*(__u32 *)&k4->local_port = *(const __u32 *)&k->local_port;
}

static __always_inline struct xm_ovl_flow *flow_lookup(const struct xm_ovl_flow_key *k)
{
	struct xm_ovl_tcp4_key k4;

	if (flow_is_tcp4(k)) {
		tcp4_key(&k4, k);
		return bpf_map_lookup_elem(&xm_ovl_tcp4, &k4);
	}
	return bpf_map_lookup_elem(&xm_ovl_flows, k);
}

static __always_inline long flow_update(const struct xm_ovl_flow_key *k,
					const struct xm_ovl_flow *f, __u64 flags)
{
	struct xm_ovl_tcp4_key k4;

	if (flow_is_tcp4(k)) {
		tcp4_key(&k4, k);
		return bpf_map_update_elem(&xm_ovl_tcp4, &k4, f, flags);
	}
	return bpf_map_update_elem(&xm_ovl_flows, k, f, flags);
}

static __always_inline void flow_end(struct xm_ovl_flow_key *k)
{
	struct xm_ovl_tcp4_key k4;
	long err;

	if (flow_is_tcp4(k)) {
		tcp4_key(&k4, k);
		err = bpf_map_delete_elem(&xm_ovl_tcp4, &k4);
	} else {
		err = bpf_map_delete_elem(&xm_ovl_flows, k);
	}
	if (!err)
		xm_stat_add(XM_STAT_OVL_FLOWS_ENDED, 1);
}

/*
 * TCP teardown. The FIN and RST segments themselves always take the slow
 * path (conntrack sees the connection close). RST ends the flow; a FIN
 * half-closes it: the other direction keeps the fast path for the data it
 * still sends, and the flow ends once both sides sent their FIN. A new
 * connection on the same ports starts with a SYN, which is never fast-pathed.
 */
static __always_inline void flow_tcp_close(struct xm_ovl_flow_key *k, __u8 tcp_flags, __u8 dir)
{
	struct xm_ovl_flow *f;

	if (tcp_flags & TCPF_RST) {
		flow_end(k);
		return;
	}
	f = flow_lookup(k);
	if (!f)
		return;
	if (((f->fin | dir) & XM_OVL_SEEN_BOTH) == XM_OVL_SEEN_BOTH)
		flow_end(k);
	else
		f->fin |= dir;
}

/* The flow's outer header template may be used (see struct xm_ovl_flow). */
static __always_inline bool tmpl_valid(const struct xm_ovl_flow *f, const struct xm_ovl_cfg *cfg)
{
	return f->ul_ifindex && f->tmpl_gen == cfg->tmpl_gen;
}

/* Whether the flow may take the fast path. */
static __always_inline bool flow_usable(const struct xm_ovl_flow *f, const struct xm_ovl_cfg *cfg)
{
	return f->epoch == cfg->epoch && (f->seen & XM_OVL_SEEN_BOTH) == XM_OVL_SEEN_BOTH &&
	       f->ifindex && tmpl_valid(f, cfg);
}

/*
 * A template the kernel just built (hdr: 8-byte aligned, per-packet fields
 * zeroed) for a flow. Only the DSCP of the inner TOS matters (ECN varies per
 * packet and is patched in by the encap).
 */
struct tmpl {
	const __u8 *hdr;
	__u32 ul_ifindex;
	__u8 inner_tos;
};

static __always_inline bool tmpl_same(const struct xm_ovl_flow *f, const struct tmpl *t,
				      const struct xm_ovl_cfg *cfg)
{
	return tmpl_valid(f, cfg) && f->ul_ifindex == t->ul_ifindex &&
	       !((f->inner_tos ^ t->inner_tos) & ~INET_ECN_MASK) && hdr4_eq(f->hdr, t->hdr);
}

/*
 * Validity (ul_ifindex) is cleared first and stored last, after a compiler
 * barrier: the caller writes in place only into an entry no fast path uses
 * yet, and on a CPU that keeps stores in order (x86) a fast path that sees
 * the entry valid sees the whole header. A weakly ordered CPU gives no such
 * guarantee, as for the delivery fields updated in place (and an LRU map
 * may reuse a replaced element while a reader still holds it).
 */
static __always_inline void tmpl_write(struct xm_ovl_flow *f, const struct tmpl *t,
				       const struct xm_ovl_cfg *cfg)
{
	f->ul_ifindex = 0;
	hdr4_copy(f->hdr, t->hdr);
	f->csum_partial = bpf_csum_diff(NULL, 0, (__be32 *)(t->hdr + OFF_OIP), 20, 0);
	f->inner_tos = t->inner_tos;
	f->tmpl_gen = cfg->tmpl_gen;
	asm volatile("" ::: "memory");
	f->ul_ifindex = t->ul_ifindex;
}

/*
 * A direction of a flow was carried by the slow path: record it. An entry of
 * an older epoch (before a policy change) starts over. eth/ifindex: the frame
 * as delivered to the local pod (SEEN_IN), or NULL; t: the outer header it
 * left with (SEEN_OUT), or NULL.
 */
static __always_inline void flow_learn(struct xm_ovl_flow_key *k, __u8 bit, const struct inner *in,
				       const struct xm_ovl_cfg *cfg, const struct ethhdr *eth,
				       __u32 ifindex, const struct tmpl *t)
{
	__u8 tcp_flags = in->tcp_flags;
	struct xm_ovl_flow *f, nf = {};
	__u32 epoch = cfg->epoch;

	if (tcp_flags & (TCPF_FIN | TCPF_RST)) {
		flow_tcp_close(k, tcp_flags, bit);
		return;
	}
	f = flow_lookup(k);
	if (f && f->epoch == epoch) {
		if (eth && (f->ifindex != ifindex || !mac_eq(f->pod_mac, eth->h_dest) ||
			    !mac_eq(f->gw_mac, eth->h_source))) {
			__builtin_memcpy(f->pod_mac, eth->h_dest, 6);
			__builtin_memcpy(f->gw_mac, eth->h_source, 6);
			f->ifindex = ifindex;
		}
		if (t && !tmpl_same(f, t, cfg)) {
			if (flow_usable(f, cfg)) {
				/* Fast paths may be reading it: replace the entry whole. */
				nf = *f;
				tmpl_write(&nf, t, cfg);
				flow_update(k, &nf, BPF_EXIST);
				return;
			}
			tmpl_write(f, t, cfg);
		}
		if ((f->seen & bit) == bit)
			return;
		/* Not atomic: a bit lost to a race is set again by the next packet. */
		f->seen |= bit;
		if ((f->seen & XM_OVL_SEEN_BOTH) == XM_OVL_SEEN_BOTH)
			xm_stat_add(XM_STAT_OVL_FLOWS_CACHED, 1);
		return;
	}
	/*
	 * Data-less TCP segments (the last ACK of a closed connection, a
	 * keepalive) update a flow but do not start one: no zombie entries.
	 */
	if (in->no_payload && !(tcp_flags & TCPF_SYN))
		return;
	nf.epoch = epoch;
	nf.seen = bit;
	if (eth) {
		__builtin_memcpy(nf.pod_mac, eth->h_dest, 6);
		__builtin_memcpy(nf.gw_mac, eth->h_source, 6);
		nf.ifindex = ifindex;
	}
	if (t)
		tmpl_write(&nf, t, cfg);
	if (!flow_update(k, &nf, f ? BPF_ANY : BPF_NOEXIST) && !f)
		xm_stat_add(XM_STAT_OVL_FLOWS_NEW, 1);
}

/* The flow's entry if it may take the fast path. */
static __always_inline struct xm_ovl_flow *flow_cached(struct xm_ovl_flow_key *k,
						       const struct xm_ovl_cfg *cfg)
{
	struct xm_ovl_flow *f = flow_lookup(k);

	if (f && flow_usable(f, cfg))
		return f;
	return NULL;
}

static __always_inline __u16 csum_fold(__u64 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return ~csum;
}

/*
 * The slow path routes the inner packet, so one hop is spent (TTL or hop
 * limit), and on the way in a CE mark on the outer header is carried to an
 * ECN-capable inner one (INET_ECN_decapsulate()). l3 is the inner header,
 * bounds already checked for its family. IPv4: incremental checksum update,
 * as ip_decrease_ttl()/IP_ECN_set_ce(). IPv6 has no header checksum; the
 * change is reported to a CHECKSUM_COMPLETE skb with bpf_csum_update().
 */
static __always_inline void inner_hop(struct __sk_buff *skb, void *l3, __u8 family, bool set_ce)
{
	if (family == AF_INET) {
		struct iphdr *ip = l3;
		__u32 check = ip->check;

		check += bpf_htons(0x0100);
		ip->check = (__u16)(check + (check >= 0xFFFF));
		ip->ttl--;
		if (set_ce && (ip->tos & INET_ECN_MASK) != INET_ECN_CE) {
			/* ECT(1) -> CE adds 0xFFFD to the checksum, ECT(0) -> CE 0xFFFE. */
			__u32 ecn = (ip->tos + 1) & INET_ECN_MASK;

			check = (__u32)ip->check + (__u16)(bpf_htons(0xFFFB) + bpf_htons((__u16)ecn));
			ip->check = (__u16)(check + (check >= 0xFFFF));
			ip->tos |= INET_ECN_CE;
		}
	} else {
		__be32 *w = l3, old0 = w[0], old1 = w[1];

		((struct ipv6hdr *)l3)->hop_limit--;
		if (set_ce)
			w[0] |= bpf_htonl(INET_ECN_CE << 20);
		bpf_csum_update(skb, bpf_csum_diff(&old0, 4, &w[0], 4,
						   bpf_csum_diff(&old1, 4, &w[1], 4, 0)));
	}
}

/* ---------------------------------------------------------------- learning */

/*
 * Make the first PARSE_LEN bytes (or the whole frame) directly readable;
 * data and data_end are (re)loaded. Written out in each program: the
 * verifier refuses the ctx pointer arithmetic a helper function compiles to.
 * A frame that is linear already (a short one) is left alone: the pull is a
 * helper call, and on a cloned skb it copies the head.
 */
#define PULL_HEADERS(skb, data, data_end, fail)                                      \
	do {                                                                         \
		__u32 __len = (skb)->len;                                            \
		data = (void *)(long)(skb)->data;                                    \
		data_end = (void *)(long)(skb)->data_end;                            \
		if (data + PARSE_LEN > data_end && data + __len > data_end) {        \
			if (bpf_skb_pull_data(skb, __len < PARSE_LEN ? __len : PARSE_LEN)) \
				fail;                                                \
			data = (void *)(long)(skb)->data;                            \
			data_end = (void *)(long)(skb)->data_end;                    \
		}                                                                    \
	} while (0)

/*
 * Underlay egress: a frame the kernel encapsulated (or ours, skipped). Learn
 * the remote pod's outer header and the flow's outbound direction.
 */
SEC("tc")
int xm_ovl_ul_egress(struct __sk_buff *skb)
{
	__u64 hdr[XM_OVL_ENCAP4_LEN / 8];
	struct xm_ovl_addr_key ak;
	struct xm_ovl_cfg *cfg;
	void *data, *data_end;
	struct iphdr *oip;
	struct udphdr *uh;
	struct ethhdr *eth, *ieth;
	struct inner in;
	__u8 *vx;
	__u32 ul_ifindex = skb->ifindex;

	if (skb->cb[0] == XM_OVL_CB_FASTPATH) {
		skb->cb[0] = 0;
		return TC_ACT_OK;
	}
	cfg = cfg_get();
	if (!cfg || !cfg->enabled)
		return TC_ACT_OK;
	PULL_HEADERS(skb, data, data_end, return TC_ACT_OK);
	if (data + OFF_IIP > data_end)
		return TC_ACT_OK;
	eth = data;
	oip = data + OFF_OIP;
	uh = data + OFF_UDP;
	vx = data + OFF_VXLAN;
	ieth = data + OFF_IETH;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || oip->ihl != 5 || oip->protocol != IPPROTO_UDP ||
	    (oip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) ||
	    uh->dest != bpf_htons(cfg->vxlan_port) || !(vx[0] & VXLAN_FLAG_I))
		return TC_ACT_OK;
	if (parse_inner(data + OFF_IIP, data_end, ieth->h_proto, &in, true))
		return TC_ACT_OK;

	/*
	 * The template: the headers as sent, per-packet fields zeroed. Every
	 * packet of every uncached flow comes here, and the remote almost always
	 * is known already: compare first, and build the rest (checksum, time)
	 * only when something changed. The first OFF_IIP bytes are in bounds.
	 */
	hdr4_copy(hdr, data);
	{
		struct iphdr *t = (void *)hdr + OFF_OIP;
		struct udphdr *tu = (void *)hdr + OFF_UDP;

		t->tot_len = 0;
		t->id = 0;
		t->check = 0;
		t->tos &= ~INET_ECN_MASK;
		tu->source = 0;
		tu->len = 0;
		tu->check = 0;
	}
	addr_key(&ak, in.key.family, &in.key.remote);
	{
		struct xm_ovl_remote *old = bpf_map_lookup_elem(&xm_ovl_remote, &ak);

		if (!old || !hdr4_eq(old->hdr, (__u8 *)hdr) || old->ifindex != ul_ifindex ||
		    old->inner_tos != in.tos) {
			struct xm_ovl_remote r = {};

			__builtin_memcpy(r.hdr, hdr, XM_OVL_ENCAP4_LEN);
			r.csum_partial = bpf_csum_diff(NULL, 0, (__be32 *)(r.hdr + OFF_OIP), 20, 0);
			r.hdr_len = XM_OVL_ENCAP4_LEN;
			r.outer_family = AF_INET;
			r.inner_tos = in.tos;
			r.vni = ((__u32)vx[4] << 16) | ((__u32)vx[5] << 8) | vx[6];
			r.ifindex = ul_ifindex;
			r.outer_saddr.ip[0] = oip->saddr;
			r.outer_daddr.ip[0] = oip->daddr;
			r.learned_ns = bpf_ktime_get_ns();
			bpf_map_update_elem(&xm_ovl_remote, &ak, &r, BPF_ANY);
			xm_stat_add(XM_STAT_OVL_LEARNED_REMOTE, 1);
		}
	}
	{
		struct tmpl t = { .hdr = (__u8 *)hdr, .ul_ifindex = ul_ifindex,
				  .inner_tos = in.tos };

		flow_learn(&in.key, XM_OVL_SEEN_OUT, &in, cfg, NULL, 0, &t);
	}
	return TC_ACT_OK;
}

/*
 * Host veth egress: the kernel delivers a decapsulated packet to a local pod.
 * Learn the delivery (veth, MACs) and the flow's inbound direction. Only
 * packets that came in through the overlay device count.
 */
SEC("tc")
int xm_ovl_pod_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct xm_ovl_local nl = {}, *l;
	struct xm_ovl_addr_key ak;
	struct xm_ovl_cfg *cfg;
	struct inner in;
	__u32 ifindex = skb->ifindex, in_ifindex = skb->ingress_ifindex;

	cfg = cfg_get();
	if (!cfg || !cfg->enabled || !cfg->vxlan_ifindex || in_ifindex != cfg->vxlan_ifindex)
		return TC_ACT_OK;
	if ((void *)(eth + 1) > data_end || parse_inner(eth + 1, data_end, eth->h_proto, &in, false))
		return TC_ACT_OK;

	addr_key(&ak, in.key.family, &in.key.local);
	l = bpf_map_lookup_elem(&xm_ovl_local, &ak);
	if (!l || l->ifindex != ifindex || !mac_eq(l->pod_mac, eth->h_dest) ||
	    !mac_eq(l->gw_mac, eth->h_source)) {
		nl.ifindex = ifindex;
		__builtin_memcpy(nl.pod_mac, eth->h_dest, 6);
		__builtin_memcpy(nl.gw_mac, eth->h_source, 6);
		nl.learned_ns = bpf_ktime_get_ns();
		bpf_map_update_elem(&xm_ovl_local, &ak, &nl, BPF_ANY);
		xm_stat_add(XM_STAT_OVL_LEARNED_LOCAL, 1);
	}
	flow_learn(&in.key, XM_OVL_SEEN_IN, &in, cfg, eth, ifindex, NULL);
	return TC_ACT_OK;
}

/* ---------------------------------------------------------------- fast path */

static __always_inline int miss(__u32 stat)
{
	xm_stat_add(stat, 1);
	return TC_ACT_OK;
}

/*
 * Host veth ingress: a packet from a local pod. If its flow is cached,
 * encapsulate it as the kernel would have and send it out the underlay.
 */
SEC("tc")
int xm_ovl_pod_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct xm_ovl_flow *f;
	struct xm_ovl_cfg *cfg;
	struct inner in;
	struct iphdr *oip;
	struct udphdr *uh;
	__u32 hash, inner_len, mtu_len = 0, lo, hi, h, ifindex = skb->ifindex;
	__u32 len = skb->len, gso_size = skb->gso_size;
	__u8 ecn;
	__u16 id;
	__u64 sum;

	cfg = cfg_get();
	if (!cfg || !cfg->enabled)
		return TC_ACT_OK;
	if ((void *)(eth + 1) > data_end || parse_inner(eth + 1, data_end, eth->h_proto, &in, true))
		return TC_ACT_OK;

	if (in.tcp_flags & (TCPF_SYN | TCPF_FIN | TCPF_RST)) {
		/* Connection setup and teardown are the policy's to see. */
		if (in.tcp_flags & (TCPF_FIN | TCPF_RST))
			flow_tcp_close(&in.key, in.tcp_flags, XM_OVL_SEEN_OUT);
		return TC_ACT_OK;
	}
	if (in.ttl <= 1)
		return TC_ACT_OK; /* the slow path sends the ICMP time exceeded */
	/* One lookup: the flow entry carries the delivery and the outer header. */
	f = flow_cached(&in.key, cfg);
	if (!f)
		return miss(XM_STAT_OVL_ENCAP_MISSES);
	/* The sender is the pod behind this veth, talking to its gateway. */
	if (f->ifindex != ifindex || !mac_eq(f->pod_mac, eth->h_source) ||
	    !mac_eq(f->gw_mac, eth->h_dest))
		return miss(XM_STAT_OVL_ENCAP_MISSES);
	/*
	 * A non-zero outer DSCP may have been inherited from the inner one
	 * (vxlan "tos inherit"): then the template only fits the same inner DSCP.
	 */
	if ((f->hdr[OFF_OIP + 1] & ~INET_ECN_MASK) &&
	    ((in.tos ^ f->inner_tos) & ~INET_ECN_MASK))
		return miss(XM_STAT_OVL_ENCAP_MISSES);
	/* Too big for the underlay once encapsulated: the slow path fragments or says so. */
	if ((gso_size || len + ENCAP4_ROOM > cfg->underlay_mtu + ETH_HLEN) &&
	    bpf_check_mtu(skb, f->ul_ifindex, &mtu_len, ENCAP4_ROOM, 0))
		return miss(XM_STAT_OVL_ENCAP_MISSES);

	/* The socket's hash, as the kernel's port; else ours (no flow dissection). */
	hash = skb->hash;
	if (!hash)
		hash = xm_ovl_flow_hash(&in.key);
	inner_len = len - ETH_HLEN;
	if (bpf_skb_adjust_room(skb, ENCAP4_ROOM, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
				BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH |
				ADJ_ROOM_ENCAP_L2(ETH_HLEN)))
		return miss(XM_STAT_OVL_ENCAP_MISSES);

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + OFF_IIP + 40 > data_end) {
		/* An IPv4 inner packet may end before an IPv6 header would. */
		if (in.key.family != AF_INET || data + OFF_IIP + 20 > data_end)
			return TC_ACT_SHOT; /* half built: never send it */
	}
	/* The template as learned (a concurrent relearn is the same headers). */
	hdr4_copy(data, f->hdr);
	oip = data + OFF_OIP;
	uh = data + OFF_UDP;

	/* udp_flow_src_port()'s scaling of the hash into the range. */
	lo = cfg->port_min;
	hi = cfg->port_max;
	if (!lo || hi <= lo) {
		lo = 32768;
		hi = 60999;
	}
	h = hash ^ (hash << 16);
	uh->source = bpf_htons((__u16)((((__u64)h * (hi - lo)) >> 32) + lo));
	uh->len = bpf_htons(inner_len + ENCAP4_ROOM - 20);
	/* INET_ECN_encapsulate(): copy ECT, CE becomes ECT(0). */
	ecn = in.tos & INET_ECN_MASK;
	if (ecn == INET_ECN_CE)
		ecn = INET_ECN_ECT_0;
	oip->tos |= ecn;
	oip->tot_len = bpf_htons(inner_len + ENCAP4_ROOM);
	id = (oip->frag_off & bpf_htons(IP_DF)) ? 0 : (__u16)bpf_get_prandom_u32();
	oip->id = id;
	/* The template's sum plus what this packet adds; tos is the high byte. */
	sum = (__u64)f->csum_partial + oip->tot_len + id + ((__u32)ecn << 8);
	oip->check = csum_fold(sum);
	if (in.key.family == AF_INET) {
		inner_hop(skb, data + OFF_IIP, AF_INET, false);
	} else {
		if (data + OFF_IIP + 40 > data_end)
			return TC_ACT_SHOT;
		inner_hop(skb, data + OFF_IIP, AF_INET6, false);
	}

	skb->cb[0] = XM_OVL_CB_FASTPATH;
	xm_stat_add(XM_STAT_OVL_ENCAP_PKTS, 1);
	xm_stat_add(XM_STAT_OVL_ENCAP_BYTES, inner_len);
	return bpf_redirect(f->ul_ifindex, 0);
}

/*
 * Underlay ingress: a VXLAN frame for this node. If it comes from where we
 * send that pod's traffic, with our VNI and port, and its flow is cached,
 * decapsulate it and hand it straight to the pod.
 */
SEC("tc")
int xm_ovl_ul_ingress(struct __sk_buff *skb)
{
	struct xm_ovl_flow *f;
	struct xm_ovl_cfg *cfg;
	void *data, *data_end;
	struct iphdr *oip, *toip;
	struct ethhdr *eth, *ieth;
	struct udphdr *uh;
	struct inner in;
	__u8 otos, *vx;
	bool set_ce;

	cfg = cfg_get();
	if (!cfg || !cfg->enabled || skb->pkt_type != PACKET_HOST)
		return TC_ACT_OK;
	PULL_HEADERS(skb, data, data_end, return TC_ACT_OK);
	if (data + OFF_IIP > data_end)
		return TC_ACT_OK;
	eth = data;
	oip = data + OFF_OIP;
	uh = data + OFF_UDP;
	vx = data + OFF_VXLAN;
	ieth = data + OFF_IETH;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || oip->ihl != 5 || oip->protocol != IPPROTO_UDP ||
	    (oip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) || uh->dest != bpf_htons(cfg->vxlan_port))
		return TC_ACT_OK;
	if (parse_inner(data + OFF_IIP, data_end, ieth->h_proto, &in, false))
		return TC_ACT_OK;
	if (in.tcp_flags & (TCPF_SYN | TCPF_FIN | TCPF_RST)) {
		if (in.tcp_flags & (TCPF_FIN | TCPF_RST))
			flow_tcp_close(&in.key, in.tcp_flags, XM_OVL_SEEN_IN);
		return TC_ACT_OK;
	}

	if (in.ttl <= 1)
		return TC_ACT_OK;
	otos = oip->tos;
	/* INET_ECN_decapsulate(): CE on a not-ECT inner packet is dropped by the slow path. */
	set_ce = (otos & INET_ECN_MASK) == INET_ECN_CE;
	if (set_ce && !(in.tos & INET_ECN_MASK))
		return TC_ACT_OK;
	f = flow_cached(&in.key, cfg);
	if (!f)
		return miss(XM_STAT_OVL_DECAP_MISSES);
	/*
	 * From where we send this pod's traffic, as the slow path taught us (the
	 * flow's outer header, mirrored): remote node, our VNI (the low byte is
	 * reserved), port, our VXLAN MAC as the inner destination.
	 */
	toip = (void *)f->hdr + OFF_OIP;
	if (!(vx[0] & VXLAN_FLAG_I) ||
	    ((*(__u32 *)(vx + 4) ^ *(__u32 *)(f->hdr + OFF_VXLAN + 4)) & bpf_htonl(0xffffff00)) ||
	    oip->saddr != toip->daddr || oip->daddr != toip->saddr ||
	    uh->dest != ((struct udphdr *)(f->hdr + OFF_UDP))->dest ||
	    !mac_eq(ieth->h_dest, f->hdr + OFF_IETH + 6))
		return miss(XM_STAT_OVL_DECAP_REJECTED);

	/*
	 * skb->protocol must become the inner one: bpf_redirect_peer() hands
	 * the skb to the pod's stack without parsing the Ethernet header again.
	 * For IPv6 in IPv4 only BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (Linux >= 6.3) does
	 * that; without it such packets take the kernel's VXLAN path.
	 */
	if (in.key.family == AF_INET6 && !xm_kf(XM_KF_ADJ_ROOM_DECAP_L3))
		return miss(XM_STAT_OVL_DECAP_MISSES);
	if (bpf_skb_adjust_room(skb, -ENCAP4_ROOM, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_FIXED_GSO |
				(in.key.family == AF_INET6 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV6 : 0)))
		return miss(XM_STAT_OVL_DECAP_MISSES);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if (data + ETH_HLEN + 20 > data_end)
		return TC_ACT_SHOT;
	eth_addrs_put(eth, f);
	eth->h_proto = in.key.family == AF_INET ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	if (in.key.family == AF_INET) {
		inner_hop(skb, data + ETH_HLEN, AF_INET, set_ce);
	} else {
		if (data + ETH_HLEN + 40 > data_end)
			return TC_ACT_SHOT;
		inner_hop(skb, data + ETH_HLEN, AF_INET6, set_ce);
	}
	xm_stat_add(XM_STAT_OVL_DECAP_PKTS, 1);
	xm_stat_add(XM_STAT_OVL_DECAP_BYTES, skb->len - ETH_HLEN);
	return bpf_redirect_peer(f->ifindex, 0);
}
