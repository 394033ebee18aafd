/* SPDX-License-Identifier: MIT */
/*
 * Kernel UAPI constants newer than the headers Debian 12 builds with
 * (linux-libc-dev 6.1, libbpf 1.1), each with the Linux version that
 * introduced it. The values are ABI: they never change once released.
 * Whether the running kernel has them is asked at run time (kfeatures.h).
 */
#ifndef XMESH_KERNEL_UAPI_H
#define XMESH_KERNEL_UAPI_H

/* enum bpf_attach_type */
#define XM_BPF_TCX_INGRESS 46 /* Linux 6.6 */
#define XM_BPF_TCX_EGRESS 47  /* Linux 6.6 */

/* enum bpf_link_type */
#define XM_BPF_LINK_TYPE_TCX 11     /* Linux 6.6 */
#define XM_BPF_LINK_TYPE_NETKIT 13  /* Linux 6.7 */
#define XM_BPF_LINK_TYPE_SOCKMAP 14 /* Linux 6.10 */

#endif
