/* SPDX-License-Identifier: MIT */
/*
 * Kubernetes Services + EndpointSlices (discovery.k8s.io/v1), as the API
 * server returns them, to the agent's service configs (lbconfig.h). Pure:
 * no I/O, no clock, no log; the agent's Kubernetes source (user/agent/k8s*.c)
 * and the unit tests call it. Every service it returns went through
 * xm_lb_svc_conf_from_json(), the config file's own checks.
 * The rules are in docs/kubernetes.md ("Translation").
 */
#ifndef XMESH_K8S_TRANSLATE_H
#define XMESH_K8S_TRANSLATE_H

#include <jansson.h>
#include "lbconfig.h"

#define XM_K8S_ANNOT_ALGORITHM "xmesh.io/algorithm"
#define XM_K8S_ANNOT_PARAMS "xmesh.io/params"
/*
 * Weight of a backend outside the preferred locality when the service asks
 * for locality (trafficDistribution, topology hints) and at least one
 * preferred backend exists: preferred backends weigh 1.
 */
#define XM_K8S_FALLBACK_WEIGHT 0.01

#define XM_K8S_ID_LEN 320  /* "namespace/name": 63 + 1 + 253 */
#define XM_K8S_NOTE_LEN 400

/* What `xmeshctl service list` shows about a translated service. */
struct xm_k8s_svc_meta {
	char id[XM_K8S_ID_LEN];    /* namespace/name */
	long long generation;      /* highest metadata.generation of its EndpointSlices, 0: none */
	unsigned int n_slices;
	char note[XM_K8S_NOTE_LEN]; /* why an annotation was refused, what was skipped; "" */
	bool annotation_refused;
};

struct xm_k8s_node {
	const char *name; /* this node (endpoint nodeName, hints.forNodes) */
	const char *zone; /* its topology.kubernetes.io/zone; NULL or "": unknown */
};

/* The algorithm a service ran before (a refused annotation keeps it), or NULL. */
typedef const struct xm_lb_svc_conf *(*xm_k8s_prev_fn)(void *arg, const struct xm_lb_svc_key *key);

struct xm_k8s_result {
	struct xm_lb_conf conf;       /* one service per cluster IP x port */
	struct xm_k8s_svc_meta *meta; /* parallel to conf.svc */
	unsigned int left_alone;      /* Services not ours: headless, ExternalName, other proxy */
	/* Services of ours that gave no entry at all (SCTP only, no usable port), with the note why */
	struct xm_k8s_svc_meta *unusable;
	unsigned int n_unusable;
};

/*
 * Translate every Service in `services` with the EndpointSlices in `slices`
 * (each a JSON object of any keys -> API objects, or an array of them).
 * Returns 0 or -ENOMEM; a Service that cannot be used is left out with a note
 * only when a part of it is unusable, never failing the whole set.
 */
int xm_k8s_translate(json_t *services, json_t *slices, const struct xm_k8s_node *node,
		     xm_k8s_prev_fn prev, void *prev_arg, struct xm_k8s_result *out);
void xm_k8s_result_free(struct xm_k8s_result *r);
/*
 * One Service with its EndpointSlices (an array, or NULL), appended to out:
 * for a caller that keeps the others' results (the agent re-translates only
 * the Services whose objects changed). The "namespace/service-name" a slice
 * belongs to: xm_k8s_slice_service(); a Service's own: xm_k8s_object_id().
 */
int xm_k8s_translate_service(json_t *svc, json_t *svc_slices, const struct xm_k8s_node *node,
			     xm_k8s_prev_fn prev, void *prev_arg, struct xm_k8s_result *out);
const char *xm_k8s_slice_service(json_t *slice, char *buf, size_t len);
/* Append one service (s is taken) and its meta; 0 or -ENOMEM (s freed). */
int xm_k8s_result_add(struct xm_k8s_result *r, struct xm_lb_svc_conf *s,
		      const struct xm_k8s_svc_meta *m);
const char *xm_k8s_object_id(json_t *obj, char *buf, size_t len);
/* obj (a Service or an EndpointSlice) cut to the fields the translation reads; returns obj. */
json_t *xm_k8s_prune(json_t *obj);

#endif
