// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Measurement aid of scripts/bench/ovl-inplace.sh, not part of the datapath:
 * a tc program that counts the state of the skbs an overlay fast path is
 * about to see (is the skb a clone, is its header shared, how much headroom),
 * i.e. what decides whether bpf_skb_adjust_room() must copy the head. Tracing
 * pskb_expand_head() directly needs tracefs or fentry, which a shared or
 * locked-down machine may not give; a tc program reads the same fields
 * through bpf_cast_to_kern_ctx().
 *
 * Built with -DSTATE_MAP=name (one map per hook) and optionally -DUNCLONE:
 * then it also makes the skb its own (bpf_skb_pull_data of the whole
 * packet), which is what a NIC hands up, to price the receiver's un-clone.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

enum { ST_PKTS, ST_CLONED, ST_HDR_CLONED, ST_HEADROOM_LT64, ST_GSO, ST_HEADROOM_SUM, ST_NO_HASH, ST_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} STATE_MAP SEC(".maps");

static void st_add(__u32 i, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&STATE_MAP, &i);

	if (v)
		__sync_fetch_and_add(v, by);
}

SEC("tc")
int xm_skbstate(struct __sk_buff *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
	unsigned char *head = skb->head;
	struct skb_shared_info *sh = (void *)(head + skb->end);
	__u32 dataref = BPF_CORE_READ(sh, dataref.counter);
	long headroom = skb->data - head;

	/* The request/response segments of the bench only (not ARP, not handshakes). */
	if (ctx->len < 100 || ctx->len > 400)
		return 0;
	st_add(ST_PKTS, 1);
	if (skb->cloned)
		st_add(ST_CLONED, 1);
	/* skb_header_cloned(): TCP's clones share the payload, not the header. */
	if (skb->cloned && (dataref & 0xffff) - (dataref >> 16) != 1)
		st_add(ST_HDR_CLONED, 1);
	if (headroom < 64)
		st_add(ST_HEADROOM_LT64, 1);
	if (BPF_CORE_READ(sh, gso_size))
		st_add(ST_GSO, 1);
	st_add(ST_HEADROOM_SUM, headroom);
	/* skb_get_hash(): without a hash, bpf_get_hash_recalc() dissects the packet. */
	if (!skb->l4_hash && !skb->sw_hash)
		st_add(ST_NO_HASH, 1);
#ifdef UNCLONE
	bpf_skb_pull_data(ctx, ctx->len);
#endif
	return 0; /* TC_ACT_OK: the packet goes on as it was */
}
