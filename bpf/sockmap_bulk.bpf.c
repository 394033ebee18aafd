// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Not part of the datapath (the agent never loads it): the smallest sockmap
 * redirect there is, for tests/tools/xm-bulk.c, which shows outside xmesh
 * what a redirected bulk stream does to the kernel's flow control
 * (docs/benchmarks.md, "Bulk streams"). Every message sent by the socket at
 * index 0 goes to the ingress queue of the socket at index 1, as xmesh's
 * sk_msg does for a local peer. With budget set, only the first budget bytes
 * are redirected and the rest take TCP: the fallback a sender without
 * backpressure can be given (redirected bytes are read before TCP ones, so
 * switching this way never reorders).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} bulk_socks SEC(".maps");

const volatile __u64 budget = 0; /* bytes to redirect; 0: all */
__u64 redirected = 0;            /* bytes redirected so far */

SEC("sk_msg")
int bulk_msg(struct sk_msg_md *msg)
{
	__u32 peer = 1;

	if (budget && redirected >= budget)
		return SK_PASS; /* plain TCP from here on */
	redirected += msg->size;
	return bpf_msg_redirect_map(msg, &bulk_socks, peer, BPF_F_INGRESS);
}
