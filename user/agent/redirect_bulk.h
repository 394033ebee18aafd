/* SPDX-License-Identifier: MIT */
/* Demotion of one-way bulk senders to TCP (redirect_bulk.c). */
#ifndef XMESH_AGENT_REDIRECT_BULK_H
#define XMESH_AGENT_REDIRECT_BULK_H

struct xm_agent;
struct xm_redirect;

/* Attach the iterator and wait for asks in the agent's loop; 0 also when the kernel cannot. */
int xm_redirect_bulk_start(struct xm_agent *a, struct xm_redirect *skel);
void xm_redirect_bulk_stop(void);

#endif
