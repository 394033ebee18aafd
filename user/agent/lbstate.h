/* SPDX-License-Identifier: MIT */
/*
 * The agent's services: what it last applied to the LB maps, and how it
 * moves the maps to a new desired set without disturbing live connections
 * (a connection holds its backend address; nothing here rewrites packets).
 */
#ifndef XMESH_AGENT_LBSTATE_H
#define XMESH_AGENT_LBSTATE_H

#include "lbconfig.h"
#include "lbtable.h"

struct xm_lb_svc_rt {
	struct xm_lb_svc_conf conf; /* as applied */
	__u32 id;                   /* service id (tables id*2, id*2+1) */
	__u32 *be_ids;              /* backend ids, parallel to conf.be */
};

struct xm_lb_state {
	struct xm_lb_maps m;
	struct xm_lb_svc_rt *svc;
	unsigned int n_svc;
	unsigned char svc_used[XM_LB_MAX_SERVICES];
	unsigned char be_used[XM_LB_MAX_BACKENDS];
	__u32 be_cursor; /* ids are handed out cyclically: a freed id is reused late */
	const char *pin_root; /* the agent's (outlives this state) */
	char clusters[XM_LB_MAX_CLUSTERS][XM_LB_CLUSTER_NAME_LEN];
};

/* Open the maps and adopt the services a previous agent left in them. */
int xm_lb_state_init(struct xm_lb_state *st, const char *pin_root);
void xm_lb_state_free(struct xm_lb_state *st);
/*
 * Whether desired fits the node as a whole (services, backend ids at the
 * peak of the change, cluster labels): 0, or -E2BIG with why set. Apply
 * runs it first and writes nothing when it fails.
 */
int xm_lb_state_check(const struct xm_lb_state *st, const struct xm_lb_conf *desired, char *why,
		      size_t len);
/* Make the maps match desired; services not in it are removed; unused labels are freed. */
int xm_lb_state_apply(struct xm_lb_state *st, const struct xm_lb_conf *desired);
/*
 * The same for a part of the services, so that a change costs what it
 * touches: each entry is one service's desired definition, or NULL to
 * remove it (keys listed once); the services not listed stay as they are.
 * The full forms above are these with the whole set as the list.
 */
struct xm_lb_change {
	struct xm_lb_svc_key key;
	const struct xm_lb_svc_conf *conf;
};
int xm_lb_state_check_changes(const struct xm_lb_state *st, const struct xm_lb_change *ch,
			      unsigned int n, char *why, size_t len);
/* -E2BIG (nothing written, why set) when the change does not fit */
int xm_lb_state_apply_changes(struct xm_lb_state *st, const struct xm_lb_change *ch,
			      unsigned int n, char *why, size_t len);
/* Snapshot of the applied services as a config (caller frees). */
int xm_lb_state_conf(const struct xm_lb_state *st, struct xm_lb_conf *out);
struct xm_lb_svc_rt *xm_lb_state_find(struct xm_lb_state *st, const struct xm_lb_svc_key *key);
/*
 * New weights for a service's backends (parallel to rt->be_ids), e.g. from
 * the weighting loop every tick: writes the inactive table and flips.
 */
int xm_lb_state_set_weights(struct xm_lb_state *st, struct xm_lb_svc_rt *rt, const double *w);

#endif
