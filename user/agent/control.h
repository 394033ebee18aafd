/* SPDX-License-Identifier: MIT */
/* The agent's control socket (control.c): transport and limits; requests in services.c. */
#ifndef XMESH_AGENT_CONTROL_H
#define XMESH_AGENT_CONTROL_H

#include <jansson.h>

#define XM_CTL_MAX_REQUEST (1 << 20) /* a service with XM_LB_SLOTS backends fits */
#define XM_CTL_MAX_REQUEST_STR "1048576"
#define XM_CTL_MAX_CLIENTS 256
#define XM_CTL_DEADLINE_MS 5000 /* from accept to the answer read */
#define XM_CTL_SWEEP_MS 250

struct xm_agent;

int xm_control_start(struct xm_agent *a);
/* Closes every client, the socket, and removes its path. */
void xm_control_stop(struct xm_agent *a);
/* One request line of len bytes, without its newline -> one answer object (services.c). */
json_t *xm_services_request(struct xm_agent *a, const char *line, size_t len);

#endif
