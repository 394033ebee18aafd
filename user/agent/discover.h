/* SPDX-License-Identifier: MIT */
/* Registering the pods that exist when the agent starts (discover.c). */
#ifndef XMESH_AGENT_DISCOVER_H
#define XMESH_AGENT_DISCOVER_H

struct xm_agent;

/*
 * Replay the records xmesh-cni left in its state dir ($XMESH_CNI_STATE_DIR,
 * default /var/lib/cni/xmesh) into this agent's maps. Never fails the agent:
 * returns the number of pods registered, problems are logged.
 */
int xm_discover_pods(struct xm_agent *a);

#endif
