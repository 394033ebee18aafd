// SPDX-License-Identifier: MIT
/*
 * Connection-level rebalancing as the CLI shows it (include/xmesh/rebalance.h):
 * per backend, the client connections held and idle at the agent's last pass,
 * and how many idle ones it retired (in all, and per second).
 */
#include <stdio.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <xmesh/rebalance.h>
#include "ctl.h"
#include "pin.h"

int ctl_rstate_open(void)
{
	return xm_map_open(xm_pin_root, "xm_lb_rstate");
}

json_t *ctl_rstate_json(int fd, __u32 id)
{
	struct xm_lb_rstate s;

	if (fd < 0 || bpf_map_lookup_elem(fd, &id, &s) || !s.updated_ns)
		return NULL;
	return json_pack("{s:b, s:b, s:I, s:I, s:I, s:f}", "enabled",
			 !!(s.flags & XM_RSTATE_F_ENABLED), "can_retire",
			 !(s.flags & XM_RSTATE_F_NO_DESTROY), "held", (json_int_t)s.held, "idle",
			 (json_int_t)s.idle, "retired", (json_int_t)s.retired_total,
			 "retired_per_s", s.retired_milli_s / 1e3);
}
