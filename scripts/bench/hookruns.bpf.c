// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * make bench-hookruns (scripts/bench/hookruns.sh): attached next to the
 * agent's programs on the bench's own cgroups, counts the sockops callbacks by
 * op and the cgroup_skb runs by direction and packet kind: how often the kernel
 * runs each of xmesh's hooks for a connection (it runs every program of a
 * cgroup at every such event, so the agent's are run exactly as often).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* sockops: key = op (< 64); cgroup_skb: see packet_kind() */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 192);
	__type(key, __u32);
	__type(value, __u64);
} xm_hook_runs SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&xm_hook_runs, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("sockops")
int xm_count_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op < 64)
		count(skops->op);
	return 1;
}

/*
 * 64 + 64 * ingress + 32 * (has payload) + FIN | SYN << 1 | RST << 2 | ACK << 3.
 * IPv4 only (the bench's pods); copied out, not read in place: a counter.
 */
static __always_inline int packet_kind(struct __sk_buff *skb, __u32 ingress)
{
	struct tcphdr th;
	struct iphdr ip;
	__u32 hdrs;
	__u8 fl;

	if (skb->protocol != bpf_htons(ETH_P_IP) || bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) ||
	    ip.protocol != IPPROTO_TCP || bpf_skb_load_bytes(skb, ip.ihl * 4, &th, sizeof(th)))
		return 1;
	hdrs = ip.ihl * 4 + th.doff * 4;
	fl = ((__u8 *)&th)[13];
	count(64 + 64 * ingress + (skb->len > hdrs ? 32 : 0) + (fl & 0x07) + ((fl & 0x10) >> 1));
	return 1;
}

SEC("cgroup_skb/egress")
int xm_count_egress(struct __sk_buff *skb)
{
	return packet_kind(skb, 0);
}

SEC("cgroup_skb/ingress")
int xm_count_ingress(struct __sk_buff *skb)
{
	return packet_kind(skb, 1);
}
