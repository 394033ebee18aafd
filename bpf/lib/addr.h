/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Address helpers: loopback tests and IPv4-mapped IPv6 normalisation. */
#ifndef XMESH_BPF_ADDR_H
#define XMESH_BPF_ADDR_H

#include <xmesh/common.h>

/* ::ffff:a.b.c.d, as the second-to-last word in network byte order. */
#define XM_V4MAPPED_WORD bpf_htonl(0x0000ffff)

static __always_inline int xm_addr_is_v4mapped(const struct xm_addr *a)
{
	return a->ip[0] == 0 && a->ip[1] == 0 && a->ip[2] == XM_V4MAPPED_WORD;
}

/*
 * Fill a from the socket's view of an address. v6 points at four words in
 * network byte order; a dual-stack socket talking to an IPv4 peer reports
 * ::ffff:a.b.c.d, which becomes plain IPv4 so it meets the IPv4 peer's key.
 * Returns the family to use in keys.
 */
static __always_inline __u8 xm_addr_load(struct xm_addr *a, __u32 family, __u32 v4,
					 __u32 w0, __u32 w1, __u32 w2, __u32 w3)
{
	if (family == AF_INET) {
		a->ip[0] = v4;
		a->ip[1] = a->ip[2] = a->ip[3] = 0;
		return AF_INET;
	}
	a->ip[0] = w0;
	a->ip[1] = w1;
	a->ip[2] = w2;
	a->ip[3] = w3;
	if (xm_addr_is_v4mapped(a)) {
		a->ip[0] = w3;
		a->ip[1] = a->ip[2] = a->ip[3] = 0;
		return AF_INET;
	}
	return AF_INET6;
}

static __always_inline int xm_addr_is_loopback(__u8 family, const struct xm_addr *a)
{
	if (family == AF_INET)
		return (bpf_ntohl(a->ip[0]) >> 24) == 127;
	return a->ip[0] == 0 && a->ip[1] == 0 && a->ip[2] == 0 && a->ip[3] == bpf_htonl(1);
}

#endif
