// SPDX-License-Identifier: MIT
/*
 * Datapath module: the overlay cache (bpf/overlay.bpf.c).
 *
 * Enabled by --overlay-dev IFNAME (the node's underlay device). The module
 * finds the VXLAN device of the netns (or --overlay-vxlan NAME), attaches
 * the underlay programs with TCX links pinned under <root>/links, pins the
 * pod programs under <root>/progs so that the CNI plugin can attach them
 * (xm_overlay_attach_pod), and attaches them itself to every veth it finds,
 * now and later (netlink). Then it keeps the cache honest: see the
 * invalidation rules below and docs/overlay.md.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "agent.h"
#include "log.h"
#include "kfeatures.h"
#include "netlink.h"
#include "overlay.h"
#include "overlay.skel.h"
#include "pin.h"
#include "stats.h"

#ifndef AF_BRIDGE
#define AF_BRIDGE 7
#endif

#define MAX_PODS 1024
#define MAX_NEIGH 256

/* What the module watches, reached from struct xm_agent (a->ovl_watch). */
struct xm_ovl_watch {
	int ul_ifindex;
	int vx_ifindex;
	__u8 ul_mac[6], vx_mac[6];
	__u32 ul_mtu;
	int tick_fd;
	struct xm_nl_link vx;
	char vx_name[32];
	int pods[MAX_PODS];
	int n_pods;
	/* Last link-layer address per neighbour/FDB entry, to tell changes from refreshes. */
	struct neigh_seen {
		int ifindex, family, dst_len;
		__u8 dst[16];
		__u8 lladdr[6];
	} neigh[MAX_NEIGH];
	int n_neigh;
	bool neigh_priming; /* the start's dump: addresses recorded, nothing flushed */
};

static bool pod_known(const struct xm_ovl_watch *o, int ifindex)
{
	for (int i = 0; i < o->n_pods; i++)
		if (o->pods[i] == ifindex)
			return true;
	return false;
}

static void pod_attach(struct xm_agent *a, const struct xm_nl_link *l)
{
	struct xm_ovl_watch *o = a->ovl_watch;
	int err;

	if (pod_known(o, l->ifindex) || o->n_pods == MAX_PODS)
		return;
	err = xm_overlay_attach_pod(a->pin_root, l->ifindex, xm_kf_has(a->kfeatures, XM_KF_TCX));
	if (err) {
		pr_warn("overlay: cannot attach to pod veth %s (ifindex %d): %s", l->name, l->ifindex,
			strerror(-err));
		return;
	}
	o->pods[o->n_pods++] = l->ifindex;
	pr_info("overlay: attached to pod veth %s (ifindex %d)", l->name, l->ifindex);
}

static void pod_detach(struct xm_agent *a, const struct xm_nl_link *l)
{
	struct xm_ovl_watch *o = a->ovl_watch;
	int n;

	for (int i = 0; i < o->n_pods; i++) {
		if (o->pods[i] != l->ifindex)
			continue;
		o->pods[i] = o->pods[--o->n_pods];
		n = xm_overlay_detach_pod(a->pin_root, l->ifindex);
		pr_info("overlay: pod veth %s (ifindex %d) gone: %d cache entries removed",
			l->name, l->ifindex, n < 0 ? 0 : n);
		return;
	}
}

static void flush_all(struct xm_agent *a, const char *why)
{
	int n = xm_overlay_flush(a->pin_root, true);

	pr_info("overlay: %s: cache flushed (%d entries)", why, n < 0 ? 0 : n);
}

static void flush_remote(struct xm_agent *a, const char *why)
{
	int n = xm_overlay_flush_remote(a->pin_root);

	pr_info("overlay: %s: %d outer headers dropped, relearned from the next packets", why,
		n < 0 ? 0 : n);
}

/* Packets that fit the underlay MTU skip bpf_check_mtu(); 0 makes every packet ask. */
static void set_mtu(struct xm_agent *a)
{
	struct xm_ovl_watch *o = a->ovl_watch;
	int fd = bpf_map__fd(a->overlay->maps.xm_ovl_cfg);
	struct xm_ovl_cfg cfg;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		return;
	cfg.underlay_mtu = o->ul_mtu;
	bpf_map_update_elem(fd, &zero, &cfg, BPF_EXIST);
	pr_info("overlay: underlay MTU %u", o->ul_mtu);
}

static int write_cfg(struct xm_agent *a);

static bool vxlan_wanted(struct xm_agent *a, const struct xm_nl_link *l)
{
	return !strcmp(l->kind, "vxlan") && (!a->overlay_vxlan || !strcmp(l->name, a->overlay_vxlan));
}

static void vxlan_take(struct xm_ovl_watch *o, const struct xm_nl_link *l)
{
	o->vx_ifindex = l->ifindex;
	memcpy(o->vx_mac, l->addr, 6);
	o->vx = *l;
	o->vx.name = o->vx.kind = NULL; /* point into a netlink buffer */
	snprintf(o->vx_name, sizeof(o->vx_name), "%s", l->name);
}

static void on_link(struct xm_agent *a, bool add, const struct xm_nl_link *l)
{
	struct xm_ovl_watch *o = a->ovl_watch;
	/* The overlay may come up after the agent (the CNI creates it): start then. */
	if (add && !o->vx_ifindex && vxlan_wanted(a, l)) {
		vxlan_take(o, l);
		write_cfg(a);
		pr_info("overlay: VXLAN device %s (VNI %u) appeared: cache enabled", o->vx_name,
			o->vx.vxlan_id);
		return;
	}
	if (!add && l->ifindex == o->vx_ifindex) {
		o->vx_ifindex = 0;
		write_cfg(a); /* disabled until a VXLAN device is back */
		flush_all(a, "VXLAN device removed; cache disabled");
		return;
	}
	if (l->ifindex == o->ul_ifindex || l->ifindex == o->vx_ifindex) {
		__u8 *mac = l->ifindex == o->ul_ifindex ? o->ul_mac : o->vx_mac;

		if (add && l->ifindex == o->ul_ifindex && l->mtu != o->ul_mtu) {
			o->ul_mtu = l->mtu;
			set_mtu(a);
		}
		if (!add) {
			flush_all(a, "underlay or overlay device removed");
		} else if (memcmp(mac, l->addr, 6)) {
			/* Our own MAC is in every outer (or inner) Ethernet header. */
			memcpy(mac, l->addr, 6);
			flush_remote(a, "MAC address of the underlay or overlay device changed");
		}
		return;
	}
	if (strcmp(l->kind, "veth"))
		return;
	if (add)
		pod_attach(a, l);
	else
		pod_detach(a, l);
}

/*
 * Neighbour (ARP/ND) entries of the underlay and overlay devices and FDB
 * entries of the VXLAN device decide the MACs and the remote node in every
 * outer header. The agent remembers the address of each (dumped at start,
 * then from events). A refresh with the same address, or a first address for
 * an entry that had none (nothing could have been learned through it),
 * changes nothing; a different address, a removal or a failure drops the
 * learned headers, which the next slow-path packet teaches again. Flows
 * (policy verdicts) stay.
 */
static void on_neigh(struct xm_agent *a, bool add, const struct xm_nl_neigh *n)
{
	struct xm_ovl_watch *o = a->ovl_watch;
	struct neigh_seen *s = NULL;
	bool fdb = n->family == AF_BRIDGE, had;
	const __u8 *id = fdb ? n->lladdr : n->dst;
	int id_len = fdb ? 6 : n->dst_len;
	static const __u8 none[6];
	__u8 cur[6] = {};

	if (n->ifindex != o->ul_ifindex && n->ifindex != o->vx_ifindex)
		return;
	if (fdb && (n->ifindex != o->vx_ifindex || !n->has_lladdr))
		return;
	if (!fdb && n->family != AF_INET && n->family != AF_INET6)
		return;
	for (int i = 0; i < o->n_neigh; i++) {
		struct neigh_seen *e = &o->neigh[i];

		if (e->ifindex == n->ifindex && e->family == n->family && e->dst_len == id_len &&
		    !memcmp(e->dst, id, id_len)) {
			s = e;
			break;
		}
	}
	/* For an FDB entry the "address" that matters is the remote node (NDA_DST). */
	if (fdb)
		memcpy(cur, n->dst, 4);
	else if (n->has_lladdr)
		memcpy(cur, n->lladdr, 6);
	had = s && memcmp(s->lladdr, none, 6);
	if (add && !(n->state & (NUD_FAILED | NUD_INCOMPLETE))) {
		if (!memcmp(cur, none, 6) || (s && !memcmp(s->lladdr, cur, 6)))
			return; /* a state change only */
		if (!s && o->n_neigh < MAX_NEIGH) {
			s = &o->neigh[o->n_neigh++];
			s->ifindex = n->ifindex;
			s->family = n->family;
			s->dst_len = id_len;
			memcpy(s->dst, id, id_len);
		}
		if (s)
			memcpy(s->lladdr, cur, 6);
		if (!had && !(o->n_neigh == MAX_NEIGH && !s))
			return; /* first address: no header can have been built from it */
	} else {
		if (s)
			*s = o->neigh[--o->n_neigh];
		if (!had)
			return;
	}
	if (o->neigh_priming)
		return;
	flush_remote(a, fdb ? "FDB entry of the overlay device changed"
			    : n->ifindex == o->ul_ifindex ? "underlay neighbour changed"
							   : "overlay neighbour changed");
}

static void on_route(struct xm_agent *a, bool add, const struct xm_nl_route *r)
{
	struct xm_addr dst = {};
	char buf[64];
	int n;

	if (r->family != AF_INET && r->family != AF_INET6)
		return;
	memcpy(&dst, r->dst, r->family == AF_INET ? 4 : 16);
	n = xm_overlay_forget_prefix(a->pin_root, r->family, &dst, r->dst_len);
	pr_info("overlay: route %s %s/%d: %d cache entries removed", add ? "to" : "removed for",
		inet_ntop(r->family, r->dst, buf, sizeof(buf)) ?: "?", r->dst_len, n < 0 ? 0 : n);
}

static void on_nft(struct xm_agent *a)
{
	int n = xm_overlay_flush(a->pin_root, false);

	pr_info("overlay: nftables ruleset changed: every flow back to the slow path (%d removed)",
		n < 0 ? 0 : n);
}

static void on_lost(struct xm_agent *a)
{
	flush_all(a, "netlink events lost");
}

/* Once a second: the eviction estimate, when flows were created meanwhile. */
static void on_tick(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	static __u64 last_new = ~0ULL;
	struct xm_agent *a = arg;
	__u64 vals[XM_STAT_MAX], exp;

	if (read(fd, &exp, sizeof(exp)) != sizeof(exp))
		return;
	if (xm_stats_read(a->pin_root, vals) || vals[XM_STAT_OVL_FLOWS_NEW] == last_new)
		return;
	last_new = vals[XM_STAT_OVL_FLOWS_NEW];
	xm_overlay_evictions_update(a->pin_root);
}

static int tick_start(struct xm_agent *a)
{
	struct xm_ovl_watch *o = a->ovl_watch;
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };

	o->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (o->tick_fd < 0)
		return -errno;
	if (timerfd_settime(o->tick_fd, 0, &its, NULL))
		return -errno;
	return xm_loop_add(a->loop, o->tick_fd, EPOLLIN, on_tick, a);
}

static const struct xm_nl_ops ovl_nl_ops = {
	.link = on_link,
	.neigh = on_neigh,
	.route = on_route,
	.nft = on_nft,
	.lost = on_lost,
};

/* Initial scan: the underlay, the VXLAN device, the pod veths. */
static void scan_link(struct xm_agent *a, bool add, const struct xm_nl_link *l)
{
	struct xm_ovl_watch *o = a->ovl_watch;
	if (!strcmp(l->name, a->overlay_dev)) {
		o->ul_ifindex = l->ifindex;
		o->ul_mtu = l->mtu;
		memcpy(o->ul_mac, l->addr, 6);
	}
	if (!o->vx_ifindex && vxlan_wanted(a, l))
		vxlan_take(o, l);
}

static void scan_pods(struct xm_agent *a, bool add, const struct xm_nl_link *l)
{
	struct xm_ovl_watch *o = a->ovl_watch;
	if (l->ifindex != o->ul_ifindex && !strcmp(l->kind, "veth"))
		pod_attach(a, l);
}

/*
 * Pod links pinned for veths that went away while no agent watched: unpin
 * them and forget what was learned through them.
 */
static void prune_pod_links(struct xm_agent *a)
{
	int gone[256], n = 0;
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (snprintf(dir, sizeof(dir), "%s/%s", a->pin_root, XM_PIN_LINKS) >= (int)sizeof(dir))
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) && n < (int)(sizeof(gone) / sizeof(gone[0]))) {
		int ifindex;
		bool seen = false;

		if (sscanf(de->d_name, "ovl_pod_%d_", &ifindex) != 1 || pod_known(a->ovl_watch, ifindex))
			continue;
		for (int i = 0; i < n; i++)
			seen |= gone[i] == ifindex;
		if (!seen)
			gone[n++] = ifindex;
	}
	closedir(d);
	for (int i = 0; i < n; i++) {
		xm_overlay_detach_pod(a->pin_root, gone[i]);
		pr_info("overlay: pod veth ifindex %d went away while no agent watched: links removed",
			gone[i]);
	}
}

static int pin_prog(struct xm_agent *a, struct bpf_program *prog)
{
	char path[PATH_MAX];
	int err;

	err = xm_pin_path(path, sizeof(path), a->pin_root, XM_PIN_PROGS, bpf_program__name(prog));
	if (err)
		return err;
	unlink(path); /* an older agent's program: links keep theirs until updated */
	err = bpf_program__pin(prog, path);
	if (err)
		pr_err("pin %s: %s", path, strerror(-err));
	return err;
}

static void local_port_range(__u16 *lo, __u16 *hi)
{
	unsigned int a = 32768, b = 60999;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f) {
		if (fscanf(f, "%u %u", &a, &b) != 2) {
			a = 32768;
			b = 60999;
		}
		fclose(f);
	}
	*lo = a;
	*hi = b;
}

static int write_cfg(struct xm_agent *a)
{
	struct xm_ovl_watch *o = a->ovl_watch;
	struct xm_ovl_cfg cfg = {};
	__u32 zero = 0;
	int fd = bpf_map__fd(a->overlay->maps.xm_ovl_cfg);

	bpf_map_lookup_elem(fd, &zero, &cfg);
	/* A new epoch: whatever changed while no agent watched is forgotten. */
	cfg.epoch++;
	cfg.enabled = o->vx_ifindex != 0;
	cfg.vxlan_ifindex = o->vx_ifindex;
	cfg.underlay_ifindex = o->ul_ifindex;
	cfg.underlay_mtu = o->ul_mtu;
	cfg.vxlan_port = o->vx.vxlan_port ? o->vx.vxlan_port : XM_OVL_VXLAN_PORT;
	if (o->vx.vxlan_port_min && o->vx.vxlan_port_max > o->vx.vxlan_port_min) {
		cfg.port_min = o->vx.vxlan_port_min;
		cfg.port_max = o->vx.vxlan_port_max;
	} else {
		local_port_range(&cfg.port_min, &cfg.port_max);
	}
	return bpf_map_update_elem(fd, &zero, &cfg, BPF_ANY) ? -errno : 0;
}

int dp_overlay_load(struct xm_agent *a)
{
	struct xm_ovl_watch *o;
	struct xm_overlay *skel;
	char path[PATH_MAX];
	int err;

	if (!a->overlay_dev)
		return 0;
	skel = xm_overlay__open();
	if (!skel)
		return -errno;
	a->overlay = skel;
	if (a->overlay_max_flows) { /* each flow map: TCP/IPv4 and the others */
		bpf_map__set_max_entries(skel->maps.xm_ovl_tcp4, a->overlay_max_flows);
		bpf_map__set_max_entries(skel->maps.xm_ovl_flows, a->overlay_max_flows);
	}
	skel->rodata->xm_kf_mask = a->kfeatures; /* take the same fallbacks as user space */
	err = xm_dp_pin_maps(skel->obj, a->pin_root);
	if (!err)
		err = xm_overlay__load(skel);
	if (err) {
		pr_err("load overlay programs: %s%s", strerror(-err),
		       err == -EINVAL ? " (pinned maps of another layout? try 'xmesh-agent uninstall')"
				      : "");
		return err;
	}
	if (snprintf(path, sizeof(path), "%s/%s", a->pin_root, XM_PIN_PROGS) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	err = pin_prog(a, skel->progs.xm_ovl_pod_ingress);
	if (!err)
		err = pin_prog(a, skel->progs.xm_ovl_pod_egress);
	if (err)
		return err;

	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	a->ovl_watch = o;
	err = xm_nl_links(a, &(struct xm_nl_ops){ .link = scan_link });
	if (err)
		return err;
	if (!o->ul_ifindex) {
		pr_err("--overlay-dev %s: no such interface in this network namespace%s",
		       a->overlay_dev, a->netns_path ? "" : " (the node's netns: --netns PATH?)");
		return -ENODEV;
	}
	if (!o->vx_ifindex)
		pr_warn("overlay: no VXLAN device%s%s yet: the cache stays off until one appears "
			"(it learns from the kernel's VXLAN overlay)", a->overlay_vxlan ? " " : "",
			a->overlay_vxlan ?: "");
	o->neigh_priming = true;
	err = xm_nl_neighs(a, &(struct xm_nl_ops){ .neigh = on_neigh });
	o->neigh_priming = false;
	if (err)
		return err;
	err = write_cfg(a);
	if (err)
		return err;
	/* Headers and flows from before this agent may be stale: start over. */
	xm_overlay_flush(a->pin_root, true);
	err = xm_dp_link_tc(a, "ovl_ul_ingress", skel->progs.xm_ovl_ul_ingress, o->ul_ifindex, true);
	if (!err)
		err = xm_dp_link_tc(a, "ovl_ul_egress", skel->progs.xm_ovl_ul_egress, o->ul_ifindex,
				    false);
	if (err)
		return err;
	pr_info("overlay: cache on underlay %s (ifindex %d), overlay %s (VNI %u, port %u)",
		a->overlay_dev, o->ul_ifindex, o->vx_ifindex ? o->vx_name : "(none yet)",
		o->vx.vxlan_id,
		o->vx.vxlan_port ? o->vx.vxlan_port : XM_OVL_VXLAN_PORT);
	err = xm_nl_monitor_start(a, &ovl_nl_ops);
	if (err) {
		pr_err("overlay: netlink monitor: %s", strerror(-err));
		return err;
	}
	err = tick_start(a);
	if (err)
		return err;
	/* After the monitor: a veth created in between is seen by one or the other. */
	err = xm_nl_links(a, &(struct xm_nl_ops){ .link = scan_pods });
	if (!err)
		prune_pod_links(a);
	return err;
}

void dp_overlay_close(struct xm_agent *a)
{
	struct xm_ovl_watch *o = a->ovl_watch;

	if (o && o->tick_fd > 0) {
		if (a->loop)
			xm_loop_del(a->loop, o->tick_fd);
		close(o->tick_fd);
	}
	xm_nl_monitor_stop(a);
	free(o);
	a->ovl_watch = NULL;
	xm_overlay__destroy(a->overlay);
	a->overlay = NULL;
}
