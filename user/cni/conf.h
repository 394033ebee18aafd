/* SPDX-License-Identifier: MIT */
/*
 * The network configuration xmesh-cni reads on stdin: the CNI fields, our own
 * fields, and the prevResult of the plugins before us. Parsing never touches
 * the system, so it can be fuzzed on its own (tests/fuzz/fuzz_cni_conf.c).
 */
#ifndef XMESH_CNI_CONF_H
#define XMESH_CNI_CONF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "cni_state.h"

/* Error codes of the CNI spec (1.1.0 "Error" section), and ours from 100. */
enum xm_cni_code {
	XM_CNI_E_VERSION = 1,    /* incompatible CNI version */
	XM_CNI_E_FIELD = 2,      /* unsupported field in network configuration */
	XM_CNI_E_CONTAINER = 3,  /* container unknown or does not exist */
	XM_CNI_E_ENV = 4,        /* invalid necessary environment variables */
	XM_CNI_E_IO = 5,         /* I/O failure */
	XM_CNI_E_DECODE = 6,     /* failed to decode content */
	XM_CNI_E_CONFIG = 7,     /* invalid network config */
	XM_CNI_E_AGAIN = 11,     /* try again later */
	XM_CNI_E_UNAVAILABLE = 50,
	XM_CNI_E_CHECK = 100,    /* CHECK: the pod is not registered as ADD left it */
};

struct xm_cni_err {
	int code;
	char msg[256];
	char details[512];
};

#define XM_CNI_CAP_POD_ANNOTATIONS "io.kubernetes.cri.pod-annotations"
#define XM_CNI_V(a, b, c) ((a) << 16 | (b) << 8 | (c))
/* What we keep of prevResult; more is ignored (counted), never an error. */
#define XM_CNI_MAX_IFACES 64
#define XM_CNI_MAX_RESULT_IPS 64

struct xm_cni_iface {
	char name[IF_NAMESIZE];
	char sandbox[PATH_MAX]; /* empty: a host interface */
	__u8 mac[6];
	bool has_mac;
};

struct xm_cni_res_ip {
	struct xm_cni_ip ip;
	int iface; /* index into ifaces; -1: the result does not say; -2: an interface not kept */
};

struct xm_cni_attachment {
	char container_id[XM_CNI_NAME_MAX];
	char ifname[IF_NAMESIZE];
};

struct xm_cni_conf {
	json_t *root;
	json_t *prev_result; /* borrowed from root; NULL when absent */
	char cni_version[16];
	unsigned int version; /* XM_CNI_V() */
	char name[XM_CNI_NAME_MAX];
	char type[64];

	/* Ours (all optional). */
	char pin_root[PATH_MAX];
	char state_dir[PATH_MAX];
	char log_file[PATH_MAX];
	char log_level[16];

	/* prevResult, parsed. */
	unsigned int n_ifaces;
	struct xm_cni_iface ifaces[XM_CNI_MAX_IFACES];
	unsigned int n_ips;
	struct xm_cni_res_ip ips[XM_CNI_MAX_RESULT_IPS];
	unsigned int dropped_ifaces, dropped_ips; /* beyond the arrays above */
	/*
	 * Set (code != 0) when prevResult does not parse: ADD and CHECK refuse
	 * with it; DEL goes on without prevResult's addresses, as teardown must
	 * never stick on a bad previous result.
	 */
	struct xm_cni_err prev_err;

	/*
	 * The pod's redirect opt-out, from runtimeConfig's
	 * "io.kubernetes.cri.pod-annotations" (the capability of that name in
	 * our conflist entry asks the runtime for them; containerd passes them). A bad value
	 * sets optout_err (code != 0): ADD refuses with it, DEL goes on.
	 */
	struct xm_cni_optout optout;
	struct xm_cni_err optout_err;
	/*
	 * Set (code != 0) for one of our fields misspelt or an unknown logLevel
	 * (xm_cni_conf_ours): ADD and CHECK refuse with it; DEL goes on with the
	 * defaults, as plugins before the check did, so teardown never sticks.
	 */
	struct xm_cni_err own_err;
	/* GC: "cni.dev/valid-attachments". */
	bool has_valid;
	size_t n_valid;
	struct xm_cni_attachment *valid;
};

extern const char *const xm_cni_versions[]; /* supported, oldest first; NULL-terminated */
#define XM_CNI_VERSION_LATEST "1.1.0"

/* "1.0.0" -> XM_CNI_V(1,0,0); -EINVAL when it is not a.b.c. */
int xm_cni_version_parse(const char *s, unsigned int *v);
bool xm_cni_version_supported(unsigned int v);

/*
 * Parse buf. On failure fills err (code, msg, details) and returns -1; c is
 * left freed. On success the caller frees c with xm_cni_conf_free().
 */
int xm_cni_conf_parse(const char *buf, size_t len, struct xm_cni_conf *c, struct xm_cni_err *err);
/*
 * Our own fields of obj (pinRoot, stateDir, logFile, logLevel) into c, with
 * their defaults; -1 with err filled for a bad value. One of them misspelt
 * or an unknown logLevel, which older plugins took as absent: into *later
 * (returning 0) when later is not NULL, else as any bad value. The parser's
 * (later: own_err), and `conflist add`'s for the entry it installs (NULL).
 */
int xm_cni_conf_ours(json_t *obj, struct xm_cni_conf *c, struct xm_cni_err *err,
		     struct xm_cni_err *later);
void xm_cni_conf_free(struct xm_cni_conf *c);

void xm_cni_err_set(struct xm_cni_err *e, int code, const char *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
