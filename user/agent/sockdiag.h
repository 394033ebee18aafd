/* SPDX-License-Identifier: MIT */
/*
 * SOCK_DESTROY over sock_diag netlink (libmnl): how the agent closes the
 * idle pooled connections that the rebalancing iterator chose, on kernels
 * without bpf_sock_destroy (Linux < 6.5). Needs CONFIG_INET_DIAG_DESTROY and
 * CAP_NET_ADMIN; the netlink socket acts on the network namespace it was
 * created in, so open one per namespace.
 */
#ifndef XMESH_AGENT_SOCKDIAG_H
#define XMESH_AGENT_SOCKDIAG_H

#include <xmesh/rebalance.h>

struct mnl_socket;

/* A sock_diag netlink socket in the calling thread's network namespace, or NULL (errno). */
struct mnl_socket *xm_sockdiag_open(void);
void xm_sockdiag_close(struct mnl_socket *nl);
/*
 * Abort the TCP socket p names (4-tuple and cookie; the kernel refuses a
 * socket that reused the 4-tuple with -ESTALE): the peer gets a reset, the
 * socket's owner ECONNABORTED. 0, or -errno (-ENOENT: gone already;
 * -EOPNOTSUPP: the kernel lacks CONFIG_INET_DIAG_DESTROY).
 */
int xm_sockdiag_destroy(struct mnl_socket *nl, const struct xm_rebal_pick *p);
/*
 * Can this kernel destroy sockets over sock_diag? Destroys a connection it
 * makes on 127.0.0.1 in the calling thread's network namespace: 0 when that
 * connection was aborted; otherwise -errno (-EOPNOTSUPP: no
 * CONFIG_INET_DIAG_DESTROY; -ENOENT: sock_diag has no TCP handler, module
 * tcp_diag not loaded; -EPROTO: acknowledged but not aborted).
 */
int xm_sockdiag_probe(void);

#endif
