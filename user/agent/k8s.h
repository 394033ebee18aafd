/* SPDX-License-Identifier: MIT */
/*
 * The agent's Kubernetes source: lists and watches Services and
 * EndpointSlices with libcurl's multi interface on the agent's event loop,
 * translates them (k8s_translate.h) and hands the result to the service
 * sources (svcsources.h). docs/kubernetes.md describes the behaviour.
 */
#ifndef XMESH_AGENT_K8S_H
#define XMESH_AGENT_K8S_H

#include <stdbool.h>
#include <curl/curl.h>
#include <jansson.h>
#include "k8s_conn.h"
#include "k8s_translate.h"

struct xm_agent;
struct xm_k8s;

#define XM_K8S_PAGE 500            /* items per list page */
#define XM_K8S_QUIET_MS 5          /* coalescing: apply after the watches were quiet this long */
#define XM_K8S_MAX_WAIT_MS 50      /* ... or this long after the first change waiting */
#define XM_K8S_MAX_LINE (16u << 20) /* longest watch event accepted */
#define XM_K8S_MAX_BODY (256u << 20) /* longest list page accepted */
#define XM_K8S_BACKOFF_MIN_MS 500
#define XM_K8S_BACKOFF_MAX_MS 30000
#define XM_K8S_NODE_REFRESH_S 60   /* the node is read again this often (or each watch timeout) */

/* One listed and watched resource. */
struct xm_k8s_res {
	struct xm_k8s *k;
	const char *kind;    /* "services", for messages */
	const char *path;    /* "/api/v1/services" */
	bool watch;          /* false: one GET of one object (the node) */
	json_t *store;       /* the node's object (watched resources are kept in k8s.c) */
	json_t *staging;     /* a list in progress: id -> [compact text, owner]; k8s.c takes it
				when complete (xm_k8s_stage(), xm_k8s_listed()) */
	char rv[64];         /* resourceVersion to watch from */
	char *cont;          /* continue token of the next page */
	bool synced;         /* a complete list arrived at least once */
	bool listing;        /* the request running is a list (else a watch) */
	CURL *h;             /* the request running, or NULL */
	struct curl_slist *hdrs;
	char *buf;           /* list body, or the partial line of a watch */
	size_t len, cap;
	char why[300];       /* why the request was ended from our side */
	char errbuf[CURL_ERROR_SIZE]; /* curl's detail of a failed request */
	bool relist;         /* the request ended with 410 Gone: list again */
	unsigned int attempt; /* failures in a row, for the backoff */
	int tfd;             /* retry timer */
	unsigned long events;
	unsigned long long listed_ms; /* CLOCK_MONOTONIC of the last complete list */
};

struct xm_k8s {
	struct xm_agent *a;
	struct xm_k8s_conn conn;
	char node_name[256];
	char node_zone[64];
	bool node_seen;       /* the node was read once: later reads only log a change */
	unsigned int watch_timeout_s;
	CURLM *multi;
	int curl_tfd;         /* curl's own timeouts */
	int apply_tfd;        /* coalescing */
	struct xm_k8s_res svc, eps, node;
	/*
	 * The cluster as compact records, by Service id (k8s.c's struct
	 * xm_k8s_group: the Service and its slices as pruned JSON text, and the
	 * keys it gave the sources) and by slice id: tsearch(3) trees.
	 */
	void *groups, *slices;
	struct xm_k8s_group *dirty; /* groups whose objects changed since the last apply */
	bool all_dirty;       /* the node's zone changed: translate everything */
	unsigned int n_entries; /* services the cluster source has (every group's keys) */
	unsigned int n_left_alone; /* Services not ours (headless, ExternalName, other proxy) */
	unsigned long applies, changes_pending;
	unsigned long long applied_ms; /* CLOCK_MONOTONIC of the last apply's end */
	unsigned long long first_pending_ms; /* of the first change the next apply takes */
	volatile int ready;   /* both initial lists applied: read by the metrics thread */
};

/* From the agent's flags; 0 when the source is not wanted. */
int xm_k8s_start(struct xm_agent *a);
void xm_k8s_stop(struct xm_agent *a);
/* 1 once the initial lists are applied (or no Kubernetes source): for /readyz. */
bool xm_k8s_ready(const struct xm_agent *a);

/* k8s_watch.c: the requests. */
int xm_k8s_http_init(struct xm_k8s *k);
void xm_k8s_http_free(struct xm_k8s *k);
void xm_k8s_res_init(struct xm_k8s *k, struct xm_k8s_res *r, const char *kind, const char *path,
		     bool watch);
void xm_k8s_res_free(struct xm_k8s_res *r);
int xm_k8s_res_start(struct xm_k8s_res *r);
/*
 * k8s.c, the view: obj of a watched resource r added or modified (deleted
 * false) or deleted; a list's object into r->staging, and the complete list
 * replacing r's objects in one step; the node's object (r->store) changed.
 */
void xm_k8s_object(struct xm_k8s *k, struct xm_k8s_res *r, json_t *obj, bool deleted);
int xm_k8s_stage(struct xm_k8s_res *r, json_t *obj);
void xm_k8s_listed(struct xm_k8s *k, struct xm_k8s_res *r);
void xm_k8s_node_changed(struct xm_k8s *k);

#endif
