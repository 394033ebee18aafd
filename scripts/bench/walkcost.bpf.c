// SPDX-License-Identifier: MIT
/*
 * scripts/bench/walk-cost.sh: a TCP socket iterator that only counts, to time
 * what the rebalancer's walk of a namespace costs before its program does
 * anything (bpf/rebalance.bpf.c runs on the same iterator).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

__u64 xm_walk_seen;

SEC("iter/tcp")
int xm_walk_count(struct bpf_iter__tcp *ctx)
{
	if (ctx->sk_common)
		xm_walk_seen++;
	return 0;
}
