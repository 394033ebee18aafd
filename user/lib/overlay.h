/* SPDX-License-Identifier: MIT */
/*
 * The overlay cache from user space: attach its tc programs to a pod's host
 * veth, list and invalidate its entries. Every function works on the pinned
 * objects under a pin root, so the agent, xmeshctl and the CNI plugin share
 * it; interface indexes are those of the caller's network namespace.
 */
#ifndef XMESH_OVERLAY_LIB_H
#define XMESH_OVERLAY_LIB_H

#include <stdbool.h>
#include <xmesh/overlay.h>

/* Pinned programs: <root>/progs/<name>, written by the agent's overlay module. */
#define XM_PIN_PROGS "progs"
#define XM_OVL_PROG_POD_INGRESS "xm_ovl_pod_ingress"
#define XM_OVL_PROG_POD_EGRESS "xm_ovl_pod_egress"

/*
 * Hook a pod's host-side veth into the overlay cache (learn deliveries on
 * egress, fast path on ingress), pinned as <root>/links/ovl_pod_<ifindex>_{in,out}
 * (attach.h: TCX links if tcx, else cls_bpf filters, as the agent chose).
 * For the CNI plugin on pod ADD;
 * the agent also does it for every veth it finds. -ENOENT when no overlay
 * cache is loaded under pin_root.
 */
int xm_overlay_attach_pod(const char *pin_root, int host_ifindex, bool tcx);
/* Whether the agent of pin_root attaches tc programs with TCX (it records its choice). */
bool xm_overlay_tcx(const char *pin_root);
/* Unpin a pod's links (they detach) and forget what was learned through it. */
int xm_overlay_detach_pod(const char *pin_root, int host_ifindex);

/*
 * Forget everything about one pod address: its delivery, the outer header
 * toward it, every flow it is part of. Called when an endpoint is deleted.
 * Returns the number of entries removed, 0 when no overlay cache is loaded.
 */
int xm_overlay_forget_addr(const char *pin_root, __u8 family, const struct xm_addr *addr);

/*
 * Forget whatever a route change for prefix addr/plen may have changed: the
 * outer headers of pods in it or of nodes in it, flows with a peer in it,
 * deliveries to addresses in it. Returns entries removed.
 */
int xm_overlay_forget_prefix(const char *pin_root, __u8 family, const struct xm_addr *addr,
			     int plen);

/*
 * Drop every flow at once (bump the epoch every flow is checked against),
 * then delete the dead entries; with all, also the learned headers and
 * deliveries. Returns entries removed.
 */
int xm_overlay_flush(const char *pin_root, bool all);

/* Drop every learned outer header (flows stay). Returns entries removed. */
int xm_overlay_flush_remote(const char *pin_root);

/* Walk a map; fn returns non-zero to stop. */
int xm_overlay_foreach_flow(const char *pin_root,
			    int (*fn)(const struct xm_ovl_flow_key *k, const struct xm_ovl_flow *f,
				      void *arg),
			    void *arg);
int xm_overlay_foreach_remote(const char *pin_root,
			      int (*fn)(const struct xm_ovl_addr_key *k,
					const struct xm_ovl_remote *r, void *arg),
			      void *arg);
int xm_overlay_foreach_local(const char *pin_root,
			     int (*fn)(const struct xm_ovl_addr_key *k,
				       const struct xm_ovl_local *l, void *arg),
			     void *arg);
int xm_overlay_cfg_read(const char *pin_root, struct xm_ovl_cfg *cfg);

/*
 * LRU evictions are invisible to BPF; estimate them as flows created minus
 * flows deleted (FIN/RST, invalidation) minus flows present, and raise the
 * XM_STAT_OVL_EVICTIONS counter to that. Racy by a few entries; monotonic.
 */
int xm_overlay_evictions_update(const char *pin_root);

#endif
