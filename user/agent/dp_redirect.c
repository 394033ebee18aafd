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
 * The redirect_recv_* counters (bpf/redirect.bpf.c, xm_redirect_recv) run on
 * a host-wide tracepoint: every recvmsg of every process of the node pays
 * them, in the mesh or not (~100 ns a call on the project's test machine,
 * docs/benchmarks.md). So they are attached only while the config asks
 * ("redirect_recv_counters": true), and detached by removing the pinned link,
 * its only holder. An agent that starts detaches what an earlier one left,
 * until its config is applied. Kernels without the tracepoint (< 6.3,
 * feature sock_recv_tp) do not load the program and have no counters.
 */
#define XM_RECV_COUNTERS_LINK "redirect_recv"

static int recv_counters_attach(struct xm_agent *a, const char *path)
{
	struct bpf_link *link;
	int err;

	link = bpf_program__attach_trace(a->redirect->progs.xm_redirect_recv);
	err = libbpf_get_error(link);
	if (err) {
		pr_warn("redirect_recv counters not attached (%s): the differences they count are "
			"not visible", strerror(-err));
		return err;
	}
	err = bpf_link__pin(link, path);
	if (err)
		pr_err("pin %s: %s", path, strerror(-err));
	bpf_link__destroy(link); /* the pin holds it, or nothing does */
	return err;
}

void xm_redirect_counters_sync(struct xm_agent *a)
{
	/* without the tracepoint nothing was loaded; the start's feature log said so */
	bool want = a->recv_counters_mode && xm_kf_has(a->kfeatures, XM_KF_SOCK_RECV_TP);
	char path[PATH_MAX];

	if (!a->redirect || xm_pin_path(path, sizeof(path), a->pin_root, XM_PIN_LINKS,
					 XM_RECV_COUNTERS_LINK))
		return;
	/* attached is what the pin says: it may be an earlier agent's */
	if (want == !access(path, F_OK))
		return;
	if (want && recv_counters_attach(a, path))
		return;
	if (!want && unlink(path)) {
		pr_err("detach the redirect_recv counters: unlink %s: %s", path, strerror(errno));
		return;
	}
	pr_info("redirect_recv counters %s", want ? "attached: \"redirect_recv_counters\": "
		"true (every recvmsg of the node runs them)" : "detached");
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
	bpf_program__set_autoload(skel->progs.xm_redirect_recv,
				  xm_kf_has(a->kfeatures, XM_KF_SOCK_RECV_TP));
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
		xm_redirect_counters_sync(a); /* off until the config is applied */
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
