/* SPDX-License-Identifier: MIT */
/*
 * Where services come from, and how the sources are merged into the one set
 * that lbstate applies: the control socket (xmeshctl) over the config file
 * over the cluster (a clash between the file and the cluster is logged, and
 * the file wins). What each applied service came from is written to a run
 * file (xm_run_path(pin root, "services.json")) that `xmeshctl service list`
 * shows, also while the agent is down.
 */
#ifndef XMESH_AGENT_SVCSOURCES_H
#define XMESH_AGENT_SVCSOURCES_H

#include "k8s_translate.h"
#include "lbconfig.h"

struct xm_agent;

/*
 * What `service list` shows of a cluster service's origin (xm_k8s_svc_meta's
 * fields in one allocation of their length: 1,000s are held).
 */
struct xm_svc_origin {
	long long generation;
	unsigned int n_slices;
	const char *note; /* into id's allocation */
	char id[];        /* namespace/name, then the note */
};
/* malloc'd, or NULL. */
struct xm_svc_origin *xm_svc_origin_new(const struct xm_k8s_svc_meta *m);

#define XM_RUN_FILE_MIN_MS 1000

enum xm_svc_src {
	XM_SRC_CTL,     /* precedence order: first wins */
	XM_SRC_FILE,
	XM_SRC_CLUSTER,
	XM_SRC_ADOPTED, /* found in the pins at start, kept until a source owns the set */
	XM_SRC_N,
};

/*
 * After lbstate adopted the pins. The adopted services stay until the file
 * is first applied (no cluster source) or the cluster's first complete view
 * is (with one): a restarted agent never removes what it has not seen yet.
 */
int xm_svc_sources_init(struct xm_agent *a, bool cluster_on);
void xm_svc_sources_free(struct xm_agent *a);
/*
 * Replace one source's services with c (taken: c is left empty) and apply
 * the change. A new file also drops what the control socket changed.
 * Returns lbstate's result.
 */
int xm_svc_sources_replace(struct xm_agent *a, enum xm_svc_src src, struct xm_lb_conf *c);
/*
 * Some of one source's services changed, the others stay: what the cluster
 * source sends, so that an apply costs what changed. Each update is a key
 * with its new definition and origin (both taken), or conf NULL: the source no
 * longer has the key. first_view: the cluster's first complete view, which
 * ends what was adopted from the pins. Keys listed once. A change that does
 * not fit the node is not applied and the source keeps its previous services
 * (-E2BIG, xm_svc_sources_why()).
 */
struct xm_svc_update {
	struct xm_lb_svc_key key;
	struct xm_lb_svc_conf *conf;
	struct xm_svc_origin *meta;
};
int xm_svc_sources_update(struct xm_agent *a, enum xm_svc_src src, struct xm_svc_update *u,
			  unsigned int n, bool first_view);
/* What src has for key now, or NULL. */
const struct xm_lb_svc_conf *xm_svc_sources_get(const struct xm_agent *a, enum xm_svc_src src,
						const struct xm_lb_svc_key *key);
/* The control socket: add or replace one service (s is taken), or remove one. */
/* Why the last change was rejected with -E2BIG (over the node's limits). */
const char *xm_svc_sources_why(const struct xm_agent *a);
int xm_svc_sources_put(struct xm_agent *a, struct xm_lb_svc_conf *s);
int xm_svc_sources_del(struct xm_agent *a, const struct xm_lb_svc_key *key);
/*
 * A weight set through the control socket: kept over whatever source has
 * the service, so that later merges keep it, until the config file is next
 * loaded or the service removed through the socket. Nothing is applied here.
 */
void xm_svc_sources_set_weight(struct xm_agent *a, const struct xm_lb_svc_key *key,
			       const struct xm_lb_be_conf *be, double weight);
#endif
