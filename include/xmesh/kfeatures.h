/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kernel features xmesh uses when the running kernel has them. The agent
 * probes them at start (user/lib/kfeatures.c), records the mask in the pin
 * root's meta entry (xm_meta.kfeatures) and hands it to the BPF programs
 * (rodata xm_kf_mask, bpf/lib/kfeatures.h), so both sides take the same
 * fallback. Bit numbers are ABI (they are stored in the meta map): append only.
 */
#ifndef XMESH_KFEATURES_SHARED_H
#define XMESH_KFEATURES_SHARED_H

enum xm_kfeature {
	XM_KF_SOCKOPS_NETNS_COOKIE = 0, /* bpf_get_netns_cookie in sockops/sk_msg (5.15) */
	XM_KF_SET_RETVAL = 1,		/* bpf_set_retval in cgroup programs (5.18) */
	XM_KF_ADJ_ROOM_DECAP_L3 = 2,	/* BPF_F_ADJ_ROOM_DECAP_L3_IPV{4,6} (6.3) */
	XM_KF_SOCK_DESTROY = 3,		/* bpf_sock_destroy kfunc (6.5) */
	XM_KF_TCX = 4,			/* TCX attach types and links (6.6) */
	XM_KF_SOCKMAP_LINK = 5,		/* sockmap program links (6.10) */
	XM_KF_TCP_FASTOPEN_BTF = 6,	/* tcp_sock's syn_data, fastopen_rsk in BTF */
	XM_KF_SOCKMAP_ITER = 7,		/* iterators over a sockmap/sockhash load (5.10) */
	XM_KF_SOCK_RECV_TP = 8,		/* the sock_recv_length tracepoint (6.3) */
	XM_KF_COUNT
};

/* Set in a recorded mask by an agent that probed; older agents wrote 0. */
#define XM_KF_VALID (1U << 31)

#endif
