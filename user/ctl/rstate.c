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

bool ctl_rview_read(int fd, unsigned int backend_id, struct ctl_rview *v)
{
	struct xm_lb_rstate s;
	__u32 id = backend_id;

	if (fd < 0 || bpf_map_lookup_elem(fd, &id, &s) || !s.updated_ns)
		return false;
	*v = (struct ctl_rview){
		.enabled = s.flags & XM_RSTATE_F_ENABLED,
		.can_retire = !(s.flags & XM_RSTATE_F_NO_DESTROY),
		.held = s.held,
		.idle = s.idle,
		.retired = s.retired_total,
		.retired_per_s = s.retired_milli_s / 1e3,
	};
	return true;
}

json_t *ctl_rview_json(const struct ctl_rview *v)
{
	return json_pack("{s:b, s:b, s:I, s:I, s:I, s:f}", "enabled", v->enabled, "can_retire",
			 v->can_retire, "held", (json_int_t)v->held, "idle", (json_int_t)v->idle,
			 "retired", (json_int_t)v->retired, "retired_per_s", v->retired_per_s);
}

void ctl_rview_fmt(const struct ctl_rview *v, char *conns, char *ret, size_t len)
{
	snprintf(conns, len, "%llu", (unsigned long long)v->held);
	snprintf(ret, len, "%.1f", v->retired_per_s);
}
