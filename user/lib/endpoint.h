/* SPDX-License-Identifier: MIT */
/* The endpoints map: which pod addresses live on this node, in which netns. */
#ifndef XMESH_ENDPOINT_H
#define XMESH_ENDPOINT_H

#include <xmesh/common.h>

int xm_endpoint_put(const char *pin_root, __u8 family, const struct xm_addr *addr,
		    const struct xm_endpoint *ep);
int xm_endpoint_get(const char *pin_root, __u8 family, const struct xm_addr *addr,
		    struct xm_endpoint *ep);
/* -ENOENT when the address was not registered. */
int xm_endpoint_del(const char *pin_root, __u8 family, const struct xm_addr *addr);
/* Call fn for each entry; stops on a non-zero return, which it passes back. */
int xm_endpoint_foreach(const char *pin_root,
			int (*fn)(const struct xm_endpoint_key *k, const struct xm_endpoint *ep,
				  void *arg),
			void *arg);

#endif
