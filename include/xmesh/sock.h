/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A socket's one storage (SK_STORAGE map xm_sock, bpf/lib/lb_probe.h): what
 * the LB and redirection keep per socket, side by side. A socket's first
 * storage costs the kernel two allocations (the socket's storage container
 * and the element), every further map one more and a second lookup in every
 * hook that needs both parts; one map for both is one element per socket
 * (docs/benchmarks.md, session 7).
 *
 * lb: created by connect()/sendmsg() hooks on a socket they balance; role
 * XM_LB_ROLE_NONE on a socket they did not (its storage was created for
 * redirection).
 * rd: written by sockops before the socket enters the redirect map, so every
 * socket sk_msg or the redirect iterator sees has it; all zero (mode
 * XM_SOCK_UNDECIDED, no peer) on a socket never put there.
 */
#ifndef XMESH_SOCK_H
#define XMESH_SOCK_H

#include "lb.h"
#include "redirect.h"

struct xm_sock {
	struct xm_lb_sock lb;
	struct xm_sock_state rd;
};

_Static_assert(sizeof(struct xm_sock) == 128, "xm_sock layout is ABI");

#endif
