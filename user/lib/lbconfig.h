/* SPDX-License-Identifier: MIT */
/*
 * The "services" part of the agent's JSON config (docs/config.md): what the
 * node should balance. Parsing checks everything before anything is applied,
 * and every error names its place as FILE:LINE:COL.
 */
#ifndef XMESH_LBCONFIG_H
#define XMESH_LBCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <xmesh/lb.h>
#include "rebal.h"

#define XM_LB_NAME_LEN 64
#define XM_LB_ALGO_LEN 32
#define XM_LB_MAX_SVC_BACKENDS XM_LB_SLOTS /* more could not all hold a slot */

struct xm_lb_be_conf {
	struct xm_addr addr;
	__u16 port;
	__u8 family;
	__u8 pad;
	double weight;
	char cluster[XM_LB_CLUSTER_NAME_LEN];
};

struct xm_lb_svc_conf {
	char name[XM_LB_NAME_LEN];
	struct xm_lb_svc_key key;
	char algorithm[XM_LB_ALGO_LEN];
	json_t *params;  /* algorithm parameters (object, owned), never NULL */
	struct xm_rebal_conf rebalance; /* "rebalance": retiring idle pooled connections */
	struct xm_lb_be_conf *be;
	unsigned int n_be;
};

/*
 * "probes": which balanced connections the per-packet probes (cgroup_skb) time.
 * ALL: every one (request counts and latencies of every backend, also in
 * `xmeshctl backend list` and the metrics); WEIGHTED: only while some service's
 * weights come from the loop, the only reader that needs them. Without a
 * reader the two cgroup_skb links are detached: every packet of every socket
 * of the cgroup stops paying the hooks' dispatch (docs/probes.md).
 */
enum xm_lb_probes { XM_LB_PROBES_ALL, XM_LB_PROBES_WEIGHTED };

/*
 * "probes_clientless_s": on a node that has not balanced a TCP connect() this
 * long after the programs loaded (a node whose pods only serve), the probe
 * links are detached whatever "probes" says: they would time nothing, and the
 * kernel's dispatch of a run costs every packet of the cgroup about as much
 * as the probe itself. They come back within a tick of the node's first
 * balanced connect(); 0 keeps them attached.
 */
#define XM_LB_PROBES_CLIENTLESS_S 60
#define XM_LB_PROBES_CLIENTLESS_S_MAX 86400

struct xm_lb_conf {
	struct xm_lb_svc_conf *svc;
	unsigned int n_svc;
	unsigned int tick_ms; /* "weighting": {"tick_ms"} (weightcfg.h), default 500 */
	enum xm_lb_probes probes; /* "probes": "all" (default) or "weighted" */
	unsigned int probes_clientless_s; /* "probes_clientless_s", default XM_LB_PROBES_CLIENTLESS_S */
	/*
	 * "redirect_recv_counters": count reads on redirected sockets that differ
	 * from TCP (docs/redirect-compat.md). Off by default: the counting
	 * program runs for every recvmsg of every process of the node, in the
	 * mesh or not (a tracepoint is not per cgroup).
	 */
	bool redirect_recv_counters;
};

/*
 * Algorithms a service may name: "static" (the configured weights, as
 * they are) and every algorithm of the weighting loop's table
 * (xm_weight_algos, weight.h).
 */
#define XM_LB_ALGO_STATIC "static"
bool xm_lb_algo_known(const char *name);
/* Whether the service's table gets equal weights (round-robin), from the algorithm's ops. */
bool xm_lb_algo_equal_weights(const char *name);
/* Whether the weighting loop sets the service's weights from its probes. */
bool xm_lb_algo_reads_probes(const char *name);

/*
 * Parse a whole config file's text; `file` is used in messages only. On
 * error, returns -EINVAL and err holds "file:line:col: message".
 */
int xm_lb_conf_parse(const char *file, const char *text, size_t len, struct xm_lb_conf *out,
		     char *err, size_t errlen);
/* A config file is a regular file of at most this size (checked before it is read). */
#define XM_LB_CONF_MAX_BYTES (8u << 20)
#define XM_LB_CONF_MAX_STR "8 MiB"
int xm_lb_conf_load(const char *file, struct xm_lb_conf *out, char *err, size_t errlen);
/* One service object (as in "services"), e.g. from the control socket; err has no location. */
int xm_lb_svc_conf_from_json(json_t *o, struct xm_lb_svc_conf *out, char *err, size_t errlen);
void xm_lb_svc_conf_free(struct xm_lb_svc_conf *s);
int xm_lb_svc_conf_copy(struct xm_lb_svc_conf *dst, const struct xm_lb_svc_conf *src);
void xm_lb_conf_free(struct xm_lb_conf *c);
/* Find a service by key, or NULL. */
struct xm_lb_svc_conf *xm_lb_conf_find(struct xm_lb_conf *c, const struct xm_lb_svc_key *key);
/*
 * Services by key in O(1), for the merges and checks that pair two lists of
 * services (1,000s on a cluster): the keys are at first + i * stride, i < n
 * (e.g. &c->svc[0].key, sizeof(c->svc[0])); the list must not change while
 * the index is used.
 */
struct xm_lb_key_index {
	const unsigned char *first;
	size_t stride;
	unsigned int *slot; /* index + 1, 0 = empty */
	unsigned int mask;
};
int xm_lb_key_index_init(struct xm_lb_key_index *ix, const struct xm_lb_svc_key *first,
			 unsigned int n, size_t stride);
/* The index of key in the list, or -1. */
long xm_lb_key_index_find(const struct xm_lb_key_index *ix, const struct xm_lb_svc_key *key);
void xm_lb_key_index_free(struct xm_lb_key_index *ix);
/* The hash of a key that both indexes use (FNV-1a over its bytes). */
unsigned int xm_lb_svc_key_hash(const struct xm_lb_svc_key *key);
/* "VIP:PORT" or "VIP:PORT/udp" (default tcp) into a zeroed key. */
int xm_lb_svc_key_parse(const char *s, struct xm_lb_svc_key *key);
/*
 * The one check of a backend weight, wherever it comes from (config file,
 * control socket, xmeshctl): a finite number in [0, XM_LB_WEIGHT_MAX].
 * NaN passes every comparison, so a range test alone lets it through.
 */
#define XM_LB_WEIGHT_MAX 1e6
#define XM_LB_WEIGHT_RULE "\"weight\" must be a finite number from 0 to 1000000"
bool xm_lb_weight_valid(double w);
/* A JSON weight: 0 and *w set, or -EINVAL (not a number, or not valid). */
int xm_lb_weight_from_json(const json_t *v, double *w);
/* Weights the table gets for the configured algorithm (round-robin: all 1). */
void xm_lb_conf_weights(const struct xm_lb_svc_conf *s, double *w);

#endif
