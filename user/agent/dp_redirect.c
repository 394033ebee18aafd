// SPDX-License-Identifier: MIT
/* Datapath module: socket redirection (bpf/redirect.bpf.c). */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "agent.h"
#include "kfeatures.h"
#include "log.h"
#include "pin.h"
#include "redirect.skel.h"
#include "redirect_bulk.h"

/*
 * Raw tracepoint links cannot take a new program (bpf_link_update), so a
 * restart replaces the pinned link: the counter misses what happens in
 * between, traffic does not notice. Kernels without the tracepoint (< 6.3)
 * run without the counters.
 */
static int link_trace(struct xm_agent *a, const char *link_name, struct bpf_program *prog)
{
	struct bpf_link *link;
	char path[PATH_MAX];
	int err;

	err = xm_pin_path(path, sizeof(path), a->pin_root, XM_PIN_LINKS, link_name);
	if (err)
		return err;
	unlink(path);
	link = bpf_program__attach_raw_tracepoint(prog, "sock_recv_length");
	err = libbpf_get_error(link);
	if (err) {
		pr_warn("counter %s not attached (%s): the difference it counts is not visible",
			link_name, strerror(-err));
		return 0;
	}
	err = bpf_link__pin(link, path);
	if (err)
		pr_err("pin %s: %s", path, strerror(-err));
	bpf_link__destroy(link);
	return err;
}

int dp_redirect_load(struct xm_agent *a)
{
	struct xm_redirect *skel;
	int err;

	skel = xm_redirect__open();
	if (!skel)
		return -errno;
	a->redirect = skel;
	skel->rodata->xm_kf_mask = a->kfeatures; /* Fast Open: the same path as `xmeshctl status` */
	/* Refused by some kernels: without it bulk senders stay redirected (count_bulk_sender). */
	bpf_program__set_autoload(skel->progs.xm_redirect_bulk,
				  xm_kf_has(a->kfeatures, XM_KF_SOCKMAP_ITER));
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
	if (!err)
		err = link_trace(a, "redirect_recv", skel->progs.xm_redirect_recv);
	if (!err && xm_kf_has(a->kfeatures, XM_KF_SOCKMAP_ITER))
		err = xm_redirect_bulk_start(a, skel);
	return err;
}

void dp_redirect_close(struct xm_agent *a)
{
	xm_redirect_bulk_stop();
	xm_redirect__destroy(a->redirect);
	a->redirect = NULL;
}
