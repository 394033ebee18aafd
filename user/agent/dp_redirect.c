// SPDX-License-Identifier: MIT
/* Datapath module: socket redirection (bpf/redirect.bpf.c). */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "agent.h"
#include "log.h"
#include "redirect.skel.h"

int dp_redirect_load(struct xm_agent *a)
{
	struct xm_redirect *skel;
	int err;

	skel = xm_redirect__open();
	if (!skel)
		return -errno;
	a->redirect = skel;
	err = xm_dp_pin_maps(skel->obj, a->pin_root);
	if (!err)
		err = xm_redirect__load(skel);
	if (err) {
		pr_err("load redirect programs: %s%s", strerror(-err),
		       err == -EINVAL ? " (pinned maps of another layout? try 'xmesh-agent uninstall')"
				      : "");
		return err;
	}
	err = xm_dp_link_map(a, "sk_msg", skel->progs.xm_sk_msg,
			     bpf_map__fd(skel->maps.xm_socks), BPF_SK_MSG_VERDICT);
	if (!err)
		err = xm_dp_link_cgroup(a, "sockops", skel->progs.xm_sockops);
	return err;
}

void dp_redirect_close(struct xm_agent *a)
{
	xm_redirect__destroy(a->redirect);
	a->redirect = NULL;
}
