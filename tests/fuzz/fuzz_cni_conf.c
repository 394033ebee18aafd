// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the network configuration xmesh-cni reads on stdin
 * (user/cni/conf.c). Any input must either parse into a consistent struct or
 * yield a CNI error with a code and a message; nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xm_cni_err e = {};
	struct xm_cni_conf c;

	if (xm_cni_conf_parse((const char *)data, size, &c, &e)) {
		/* Every failure is a spec error with a message. */
		if (e.code <= 0 || !e.msg[0])
			abort();
		return 0;
	}
	if (!xm_cni_version_supported(c.version) || !xm_cni_valid_network_name(c.name) ||
	    c.n_ips > XM_CNI_MAX_RESULT_IPS || c.n_ifaces > XM_CNI_MAX_IFACES)
		abort();
	for (unsigned int i = 0; i < c.n_ips; i++) {
		if (c.ips[i].iface >= (int)c.n_ifaces || c.ips[i].iface < -2)
			abort();
		if (c.ips[i].ip.family == AF_INET && c.ips[i].ip.prefix_len > 32)
			abort();
	}
	for (size_t i = 0; i < c.n_valid; i++)
		(void)xm_cni_valid_container_id(c.valid[i].container_id);
	xm_cni_conf_free(&c);
	return 0;
}
