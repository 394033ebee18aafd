/* SPDX-License-Identifier: MIT */
/* Parse and print the addresses kept in maps (see include/xmesh/common.h). */
#ifndef XMESH_ADDR_H
#define XMESH_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <xmesh/common.h>

#define XM_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

/* "10.0.0.1", "fd00::1", "::ffff:10.0.0.1" (normalised to IPv4). -EINVAL if bad. */
int xm_addr_parse(const char *s, __u8 *family, struct xm_addr *addr);
/* "10.0.0.1:80", "[fd00::1]:80". */
int xm_addr_port_parse(const char *s, __u8 *family, struct xm_addr *addr, __u16 *port);
const char *xm_addr_str(__u8 family, const struct xm_addr *addr, char *buf, size_t len);
bool xm_addr_is_loopback(__u8 family, const struct xm_addr *addr);

#endif
