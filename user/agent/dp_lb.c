// SPDX-License-Identifier: MIT
/* Datapath module: connect-time load balancing and probes (bpf/lb.bpf.c). */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "agent.h"
#include "log.h"
#include "pin.h"
#include "lb.skel.h"

/*
 * The LB's sockops work runs inside redirect's sockops program (the kernel
 * runs every sockops program at every callback of every socket: one program
 * costs half of two, bpf/lib/lb_sockops.h). Only without the redirect module
 * does the LB attach a sockops program of its own. A pin root of an older
 * agent has that second link: it goes once the combined program is in place
 * (the redirect module loads first), so no callback is missed meanwhile.
 */
static int sockops_link(struct xm_agent *a, struct bpf_program *prog)
{
	char path[PATH_MAX];
	int err;

	if (!a->redirect)
		return xm_dp_link_cgroup(a, "lb_sockops", prog);
	err = xm_pin_path(path, sizeof(path), a->pin_root, XM_PIN_LINKS, "lb_sockops");
	if (err)
		return err;
	if (unlink(path) == 0)
		pr_info("detached lb_sockops: redirect's sockops program does its work now");
	else if (errno != ENOENT)
		pr_warn("remove %s: %s", path, strerror(errno));
	return 0;
}

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
		{ "lb_egress", skel->progs.xm_lb_egress },
		{ "lb_ingress", skel->progs.xm_lb_ingress },
	};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]) && !err; i++)
		err = xm_dp_link_cgroup(a, links[i].name, links[i].prog);
	if (!err)
		err = sockops_link(a, skel->progs.xm_lb_sockops);
	return err;
}

void dp_lb_close(struct xm_agent *a)
{
	xm_lb__destroy(a->lb);
	a->lb = NULL;
}
