// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: one line of the agent's control protocol
 * (user/lib/ctlproto.c). Any input either parses into a request the agent
 * can execute without further checks (a valid command, key and weight) or
 * yields a printable ASCII message (it goes back to the client as JSON); nothing may crash or leak.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ctlproto.h"

static void printable(const char *s)
{
	if (!*s)
		abort();
	for (; *s; s++)
		if (!isprint((unsigned char)*s))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xm_ctl_request r;
	char err[600];

	err[0] = '\0';
	if (xm_ctl_request_parse((const char *)data, size, &r, err, sizeof(err))) {
		printable(err);
		return 0;
	}
	switch (r.cmd) {
	case XM_CTL_SERVICE_ADD:
		if (r.svc.n_be > XM_LB_MAX_SVC_BACKENDS || !r.svc.params)
			abort();
		for (unsigned int i = 0; i < r.svc.n_be; i++)
			if (!xm_lb_weight_valid(r.svc.be[i].weight) ||
			    r.svc.be[i].family != r.svc.key.family)
				abort();
		break;
	case XM_CTL_SERVICE_DEL:
	case XM_CTL_BACKEND_WEIGHT:
		if (r.key.proto != IPPROTO_TCP && r.key.proto != IPPROTO_UDP)
			abort();
		if (r.cmd == XM_CTL_BACKEND_WEIGHT && !xm_lb_weight_valid(r.be.weight))
			abort();
		break;
	case XM_CTL_RELOAD:
		break;
	default:
		abort();
	}
	xm_ctl_request_free(&r);
	return 0;
}
