// SPDX-License-Identifier: MIT
/* Datapath module: connect-time load balancing and probes (bpf/lb.bpf.c). */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "agent.h"
#include "log.h"
#include "lb.skel.h"

int dp_lb_load(struct xm_agent *a)
{
	struct xm_lb *skel;
	int err;

	skel = xm_lb__open();
	if (!skel)
		return -errno;
	a->lb = skel;
	if (a->lb_udp_max)
		bpf_map__set_max_entries(skel->maps.xm_lb_rev, a->lb_udp_max);
	skel->rodata->xm_kf_mask = a->kfeatures; /* take the same fallbacks as user space */
	err = xm_dp_pin_maps(skel->obj, a->pin_root);
	if (!err)
		err = xm_lb__load(skel);
	if (err) {
		pr_err("load lb programs: %s%s", strerror(-err),
		       err == -EINVAL ? " (pinned maps of another layout? try 'xmesh-agent uninstall')"
				      : "");
		return err;
	}
	/* Link names are pin names under <pin root>/links/. */
	const struct {
		const char *name;
		struct bpf_program *prog;
	} links[] = {
		{ "lb_connect4", skel->progs.xm_lb_connect4 },
		{ "lb_connect6", skel->progs.xm_lb_connect6 },
		{ "lb_sendmsg4", skel->progs.xm_lb_sendmsg4 },
		{ "lb_sendmsg6", skel->progs.xm_lb_sendmsg6 },
		{ "lb_recvmsg4", skel->progs.xm_lb_recvmsg4 },
		{ "lb_recvmsg6", skel->progs.xm_lb_recvmsg6 },
		{ "lb_getpeername4", skel->progs.xm_lb_getpeername4 },
		{ "lb_getpeername6", skel->progs.xm_lb_getpeername6 },
		{ "lb_sockops", skel->progs.xm_lb_sockops },
		{ "lb_egress", skel->progs.xm_lb_egress },
		{ "lb_ingress", skel->progs.xm_lb_ingress },
	};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]) && !err; i++)
		err = xm_dp_link_cgroup(a, links[i].name, links[i].prog);
	return err;
}

void dp_lb_close(struct xm_agent *a)
{
	xm_lb__destroy(a->lb);
	a->lb = NULL;
}
