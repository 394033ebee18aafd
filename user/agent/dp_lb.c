// SPDX-License-Identifier: MIT
/* Datapath module: connect-time load balancing and probes (bpf/lb.bpf.c). */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "agent.h"
#include "lbstate.h"
#include "log.h"
#include "pin.h"
#include "stats.h"
#include "lb.skel.h"
#include "redirect.skel.h"
#include "monoclock.h"

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

/*
 * The per-packet probes (cgroup_skb egress and ingress) run for every packet
 * of every socket of the cgroup, balanced or not, and the kernel's dispatch
 * of a run costs about what the program does (docs/benchmarks.md, session 5).
 * With config "probes": "weighted" they are attached only while a service's
 * weights come from the loop or it rebalances; sockops and connect4 stay
 * (balancing, the connection counts, redirection).
 */
static int probe_links(struct xm_agent *a, bool on)
{
	static const char *const names[] = { "lb_egress", "lb_ingress" };
	struct bpf_program *progs[] = { a->lb->progs.xm_lb_egress, a->lb->progs.xm_lb_ingress };
	char path[PATH_MAX];
	int err = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !err; i++) {
		if (on) {
			err = xm_dp_link_cgroup(a, names[i], progs[i]);
			continue;
		}
		err = xm_pin_path(path, sizeof(path), a->pin_root, XM_PIN_LINKS, names[i]);
		if (!err && unlink(path) && errno != ENOENT)
			err = -errno;
	}
	return err;
}

/*
 * The probes return at once until the node balanced a TCP connect()
 * (xm_lb_clients, bpf/lb.bpf.c). A new program starts with it clear, but a
 * restarted agent finds connections balanced by the one before: it sets it
 * when the pinned counters show any balanced connect(). They do not tell TCP
 * from connected UDP, so a node that only balanced UDP times TCP packets
 * again after a restart, as every node did before the flag.
 */
static void clients_restore(struct xm_agent *a)
{
	__u64 st[XM_STAT_MAX];
	int err = xm_stats_read(a->pin_root, st);

	if (err)
		pr_warn("read the counters: %s; the probes run for every packet", strerror(-err));
	if (err || st[XM_STAT_LB_CONNECTS])
		a->lb->bss->xm_lb_clients = 1;
}

/*
 * No balanced TCP connect() on the node (xm_lb_clients clear) for
 * "probes_clientless_s" since the programs loaded: the probes would time
 * nothing here, and each of their runs costs every packet of the cgroup
 * the kernel's dispatch (docs/benchmarks.md, "Session 28"). The wait keeps a
 * node's first clients timed from their first request wherever they come
 * soon after the start; later, the first requests before the next tick go
 * untimed.
 */
static bool node_clientless(struct xm_agent *a)
{
	return a->lb_probes_clientless_s && !a->lb->bss->xm_lb_clients &&
	       xm_mono_ns() - a->lb_loaded_ns >= a->lb_probes_clientless_s * 1000000000ULL;
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
	clients_restore(a); /* before the probes attach */
	a->lb_loaded_ns = xm_mono_ns();
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
	};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]) && !err; i++)
		err = xm_dp_link_cgroup(a, links[i].name, links[i].prog);
	/* attached until the config says otherwise (xm_lb_probes_sync): none is missed */
	if (!err)
		err = probe_links(a, true);
	if (!err)
		a->lb_probes_on = 1;
	if (!err)
		err = sockops_link(a, skel->progs.xm_lb_sockops);
	return err;
}

static bool probes_needed(struct xm_agent *a)
{
	const struct xm_lb_state *st = xm_services_state(a);

	if (node_clientless(a))
		return false;
	if (a->lb_probes_mode != XM_LB_PROBES_WEIGHTED)
		return true;
	/*
	 * Rebalancing needs them too: its idle rule reads the request phase
	 * (without it, a request whose bytes were all acknowledged looks idle
	 * and could be cut), and the sock_diag fallback's hold lives in them
	 * (lb.h, mark-and-hold). The config refuses it without a loop
	 * algorithm, so the algorithm alone says.
	 */
	for (unsigned int i = 0; st && i < st->n_svc; i++)
		if (xm_lb_algo_reads_probes(st->svc[i].conf.algorithm))
			return true;
	return false;
}

void xm_lb_probes_sync(struct xm_agent *a)
{
	bool need;
	int err;

	if (!a->lb)
		return;
	need = probes_needed(a);
	if (need == (a->lb_probes_on == 1))
		return;
	/* off: redirected connections stop sharing state before the links go */
	if (a->redirect && !need)
		a->redirect->bss->xm_lb_probes_off = 1;
	err = probe_links(a, need);
	if (a->redirect && (need || err))
		a->redirect->bss->xm_lb_probes_off = !need && !err;
	if (err) {
		pr_err("%s the probes (lb_egress, lb_ingress): %s", need ? "attach" : "detach",
		       strerror(-err));
		return;
	}
	a->lb_probes_on = need;
	if (!need && node_clientless(a))
		pr_info("probes detached: no balanced TCP connect() on this node in %u s "
			"(\"probes_clientless_s\"); attached again at the first one",
			a->lb_probes_clientless_s);
	else
		pr_info("probes %s: %s", need ? "attached" : "detached",
			a->lb_probes_mode != XM_LB_PROBES_WEIGHTED ? "\"probes\": \"all\""
			: need ? "a service's weights come from the weighting loop, or it rebalances"
			       : "no service's weights come from the weighting loop, none rebalances "
				 "(\"probes\": \"weighted\")");
}

/* Every tick: a node that just became clientless, or just balanced its first connect(). */
void xm_lb_probes_tick(struct xm_agent *a)
{
	bool clientless;

	if (!a->lb)
		return;
	clientless = node_clientless(a);
	if (clientless == a->lb_clientless)
		return;
	a->lb_clientless = clientless;
	if (!clientless && a->lb->bss->xm_lb_clients)
		pr_info("the node's first balanced TCP connect(): the probes are needed again");
	xm_lb_probes_sync(a);
}

void dp_lb_close(struct xm_agent *a)
{
	xm_lb__destroy(a->lb);
	a->lb = NULL;
}
