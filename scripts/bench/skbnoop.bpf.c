// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * make bench-skb-dispatch: programs that do nothing, attached to the same
 * cgroup_skb hooks as xmesh's probes, so that the kernel's dispatch of a run
 * is priced apart from what a program does.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup_skb/egress")
int xm_noop_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/ingress")
int xm_noop_ingress(struct __sk_buff *skb)
{
	return 1;
}
