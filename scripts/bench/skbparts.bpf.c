// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * make bench-skb-dispatch, mode "lookup": the per-packet probes' first half
 * alone, built from the probes' own code (bpf/lb.bpf.c, included whole: its
 * maps are the agent's pinned ones at load time, its other programs are
 * loaded and never attached). Each program parses the headers and, for a
 * packet that could change a probe, looks up the socket's storage, as
 * xm_lb_egress and xm_lb_ingress do, then stops: no clock read, no counter,
 * no histogram. Between "noop" (the kernel's dispatch) and "probes" (all of
 * it), it tells the lookups' share from the writes'. Unlike the probes it does
 * not wait for xm_lb_clients (that flag lives in the agent's own .bss).
 */
#include "../../bpf/lb.bpf.c"

SEC("cgroup_skb/egress")
int xm_part_lookup_egress(struct __sk_buff *skb)
{
	struct xm_lb_sock *ls = NULL;
	__u32 off, state = 0, len;
	__u8 fl;

	len = tcp_payload(skb, &off, &fl);
	skb_flow_if(skb, len || (fl & TCP_FL_RST), &ls, &state);
	return 1;
}

SEC("cgroup_skb/ingress")
int xm_part_lookup_ingress(struct __sk_buff *skb)
{
	struct xm_lb_sock *ls = NULL;
	__u32 off, state = 0, len;
	__u8 fl;

	len = tcp_payload(skb, &off, &fl);
	skb_flow_if(skb, len || (fl & (TCP_FL_RST | TCP_FL_FIN)), &ls, &state);
	return 1;
}
