/* SPDX-License-Identifier: MIT */
/* State of one xmesh-agent process. */
#ifndef XMESH_AGENT_H
#define XMESH_AGENT_H

#include <limits.h>
#include <stdbool.h>
#include <linux/types.h>
#include "loop.h"

struct xm_redirect;
struct xm_lb;
struct xm_overlay;
struct xm_weighting;
struct xm_services;
struct xm_control;
struct xm_metrics;
struct xm_k8s;
struct xm_svc_sources;

struct xm_agent {
	char pin_root[PATH_MAX];
	char cgroup_path[PATH_MAX];
	int cgroup_fd;
	__u64 cgroup_id;
	const char *config_path; /* NULL: no config file */
	const char *metrics_addr; /* NULL: no metrics endpoint */
	const char *netns_path;   /* --netns: the agent joined this network namespace */
	const char *overlay_dev;  /* --overlay-dev: underlay device; NULL: no overlay cache */
	const char *overlay_vxlan; /* --overlay-vxlan: VXLAN device; NULL: the first found */
	unsigned int overlay_max_flows; /* --overlay-max-flows; 0: XM_OVL_MAX_FLOWS */
	unsigned int lb_udp_max;        /* --lb-udp-max; 0: XM_LB_MAX_FLOWS */
	int lb_probes_mode;             /* config "probes" (enum xm_lb_probes) */
	int lb_probes_on;               /* the cgroup_skb probe links are attached */
	unsigned int lb_probes_clientless_s; /* config "probes_clientless_s" (lbconfig.h) */
	bool lb_clientless;             /* last xm_lb_probes_tick(): no client past the wait */
	__u64 lb_loaded_ns;             /* CLOCK_MONOTONIC when the LB programs loaded */
	bool recv_counters_mode;        /* config "redirect_recv_counters" */
	int lock_fd;
	struct xm_loop *loop;
	__u32 kfeatures; /* what the kernel offers (kfeatures.h), probed at start */

	/* Datapath objects, one skeleton per bpf/<name>.bpf.c. */
	struct xm_redirect *redirect;
	struct xm_lb *lb;

	struct xm_overlay *overlay;
	struct xm_ovl_watch *ovl_watch; /* dp_overlay.c: devices, pods, neighbours seen */
	struct xm_nl_monitor *nl;       /* netlink.c: the event sockets */

	/* The weighting loop (weighting.h); NULL until started. */
	struct xm_weighting *weighting;

	/* Services, control socket, metrics endpoint: NULL until started. */
	struct xm_services *services;
	struct xm_control *control;
	struct xm_metrics *metrics;
	/* Kubernetes source (k8s.h): its flags, and its state while it runs. */
	bool k8s_enabled;         /* --k8s or --kubeconfig */
	const char *kubeconfig;   /* --kubeconfig: JSON form; NULL: in-cluster */
	const char *k8s_api;      /* --k8s-api HOST:PORT|URL: overrides the server */
	const char *node_name;    /* --node-name; NULL: $NODE_NAME, then the hostname */
	unsigned int k8s_watch_timeout; /* --k8s-watch-timeout S; 0: 300 */
	struct xm_k8s *k8s;
	/* Where services come from and their merge (svcsources.h). */
	struct xm_svc_sources *sources;
};

/*
 * One datapath object. load() opens its skeleton with maps pinned under the
 * pin root (reusing what is pinned), loads it, and attaches each program or,
 * when a link is already pinned, swaps the program inside that link so no
 * connection notices. close() releases the process's handles only: pins stay.
 */
struct xm_dp_module {
	const char *name;
	int (*load)(struct xm_agent *a);
	void (*close)(struct xm_agent *a);
	int needs; /* enum xm_kfeature the module cannot run without; -1: none */
};

int xm_datapath_load(struct xm_agent *a);
void xm_datapath_close(struct xm_agent *a);
/* Detach, drain the redirected sockets (bounded), unpin (uninstall.c). */
int xm_datapath_uninstall(const char *pin_root, double drain_timeout_s, bool force);

/* Helpers for modules (datapath.c). */
struct bpf_object;
struct bpf_program;
int xm_dp_pin_maps(struct bpf_object *obj, const char *pin_root);
int xm_dp_link_cgroup(struct xm_agent *a, const char *link_name, struct bpf_program *prog);
int xm_dp_link_map(struct xm_agent *a, const char *link_name, struct bpf_program *prog,
		   int map_fd, int attach_type);
/* A tc program on ifindex: a TCX link, or a cls_bpf filter on kernels without TCX. */
int xm_dp_link_tc(struct xm_agent *a, const char *link_name, struct bpf_program *prog,
		  int ifindex, bool ingress);

/* Services: config file, control socket (services.c); metrics endpoint (metrics.c). */
struct xm_lb_state;
int xm_services_start(struct xm_agent *a);
int xm_services_reload(struct xm_agent *a);
void xm_services_stop(struct xm_agent *a);
/* The applied services, or NULL before start: for the weighting loop. */
struct xm_lb_state *xm_services_state(const struct xm_agent *a);
struct sockaddr_storage;
int xm_metrics_addr_parse(const char *s, struct sockaddr_storage *ss);
int xm_metrics_start(struct xm_agent *a);
void xm_metrics_stop(struct xm_agent *a);

/* Modules. */
int dp_redirect_load(struct xm_agent *a);
void dp_redirect_close(struct xm_agent *a);
int dp_lb_load(struct xm_agent *a);
void dp_lb_close(struct xm_agent *a);
/* Attach or detach the probes' cgroup_skb links as the config and the services ask. */
void xm_lb_probes_sync(struct xm_agent *a);
void xm_lb_probes_tick(struct xm_agent *a);
/* Attach or detach the redirect_recv_* counters' tracepoint as the config says. */
void xm_redirect_counters_sync(struct xm_agent *a);
int dp_overlay_load(struct xm_agent *a);
void dp_overlay_close(struct xm_agent *a);

#endif
