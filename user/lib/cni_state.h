/* SPDX-License-Identifier: MIT */
/*
 * What xmesh-cni remembers about each pod attachment, shared by the plugin
 * (which writes it) and the agent (which replays it at start).
 *
 * One JSON file per attachment, keyed as the CNI spec asks for state:
 *   <state dir>/<network name>/<container id>:<ifname>.json
 * (':' is allowed in neither a container id nor an interface name, so the
 * name is unambiguous). The file is written before any map is touched, so a
 * plugin that dies half-way leaves a record that DEL, GC and the agent can
 * finish from. <state dir>/lock serialises the plugin and the agent.
 */
#ifndef XMESH_CNI_STATE_H
#define XMESH_CNI_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <net/if.h>
#include <jansson.h>
#include <xmesh/common.h>

#define XM_CNI_STATE_DIR_DEFAULT "/var/lib/cni/xmesh"
#define XM_CNI_STATE_DIR_ENV "XMESH_CNI_STATE_DIR" /* the agent's override */
#define XM_CNI_MAX_IPS 16
#define XM_CNI_NAME_MAX 256 /* network names and container ids */

struct xm_cni_ip {
	__u8 family;
	__u8 prefix_len;
	struct xm_addr addr;
};

/*
 * A pod's opt-out from socket redirection, from its annotations
 * (docs/redirect-compat.md): all of its connections, or those with one of
 * these local or remote ports. Written to the redirect skip map under the
 * pod's netns cookie before its addresses are registered.
 */
#define XM_CNI_ANNOT_REDIRECT "xmesh.io/redirect"
#define XM_CNI_ANNOT_SKIP_PORTS "xmesh.io/redirect-skip-ports"
#define XM_CNI_MAX_SKIP_PORTS 32

struct xm_cni_optout {
	bool redirect_off;
	unsigned int n_ports;
	__u16 ports[XM_CNI_MAX_SKIP_PORTS];
};

struct xm_cni_state {
	char network[XM_CNI_NAME_MAX];
	char container_id[XM_CNI_NAME_MAX];
	char pod[XM_CNI_NAME_MAX]; /* "namespace/name" from CNI_ARGS (Kubernetes), or "" */
	char ifname[IF_NAMESIZE];
	char netns[PATH_MAX];
	char pin_root[PATH_MAX];
	__u64 netns_cookie;      /* the pod's netns when ADD ran */
	__u64 host_netns_cookie; /* the netns the plugin ran in (host side of the veth) */
	__u32 pod_ifindex;
	__u32 host_ifindex;      /* 0: the pod interface has no peer on the host (not a veth) */
	char host_ifname[IF_NAMESIZE];
	__u8 pod_mac[6];
	__u8 host_mac[6];
	unsigned int n_ips;
	struct xm_cni_ip ips[XM_CNI_MAX_IPS];
	struct xm_cni_optout optout;
};

/* Syntax checks from the CNI spec; they also keep state file names safe. */
bool xm_cni_valid_container_id(const char *s);
bool xm_cni_valid_ifname(const char *s);
bool xm_cni_valid_network_name(const char *s);

int xm_cni_state_path(char *buf, size_t len, const char *dir, const char *network,
		      const char *container_id, const char *ifname);
/* Write atomically (temporary file + rename). */
int xm_cni_state_write(const char *dir, const struct xm_cni_state *s);
/* -ENOENT when absent, -EINVAL when the file is not a state record. */
int xm_cni_state_read(const char *path, struct xm_cni_state *s);
int xm_cni_state_load(const char *dir, const char *network, const char *container_id,
		      const char *ifname, struct xm_cni_state *s);
/* 0 also when it was already gone. */
int xm_cni_state_remove(const char *dir, const char *network, const char *container_id,
			const char *ifname);
/*
 * Call fn for each record of one network (network != NULL) or of all. A file
 * that cannot be read is reported with s == NULL. Stops on a non-zero return.
 */
int xm_cni_state_foreach(const char *dir, const char *network,
			 int (*fn)(const char *path, const struct xm_cni_state *s, void *arg),
			 void *arg);

/* Exclusive lock on <dir>/lock (created with dir). Returns the fd to close, or -errno. */
int xm_cni_lock(const char *dir);

/* Does this endpoint belong to the container (registered by xmesh-cni for it)? */
bool xm_cni_owner_match(const struct xm_endpoint *ep, const char *container_id);
void xm_cni_endpoint_fill(const struct xm_cni_state *s, struct xm_endpoint *ep);

enum xm_cni_put_mode {
	XM_CNI_PUT_OVERWRITE, /* ADD: the IPAM just gave these addresses to this pod */
	XM_CNI_PUT_KEEP,      /* replay: never take an address another owner holds now */
};
/*
 * Parse a pod's annotations (a JSON object of strings, NULL: none) into o.
 * Returns 0, or -1 with what is wrong and what to write instead in why.
 */
int xm_cni_optout_parse(json_t *annotations, struct xm_cni_optout *o, char *why, size_t len);
/*
 * Register every address of s in the endpoints map of s->pin_root, after its
 * opt-outs. Returns the number of addresses written, or -errno (-ENOENT: no
 * datapath at pin root).
 */
int xm_cni_register(const struct xm_cni_state *s, enum xm_cni_put_mode mode);
/* Remove the opt-outs of s from the skip map (its netns cookie is its own). */
int xm_cni_optout_remove(const struct xm_cni_state *s);
/* Remove the addresses of s that are still owned by its container. Returns the number removed. */
int xm_cni_unregister(const char *pin_root, const char *container_id,
		      const struct xm_cni_ip *ips, unsigned int n_ips);
/* Remove every xmesh-cni endpoint owned by container_id (when no record is left). */
int xm_cni_unregister_owner(const char *pin_root, const char *container_id);

/*
 * Per-pod datapath programs on the host-side veth. The one place the plugin
 * and the agent attach and detach them; see the comment in cni_state.c.
 */
int xm_cni_pod_attach(const struct xm_cni_state *s);
int xm_cni_pod_detach(const struct xm_cni_state *s);
/* Are the per-pod programs in place (CHECK)? */
int xm_cni_pod_check(const struct xm_cni_state *s);

#endif
