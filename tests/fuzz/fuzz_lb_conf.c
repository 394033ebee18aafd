// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the agent's config file (user/lib/lbconfig.c with
 * jsonloc.c and weightcfg.c). Any input either parses into a config whose
 * every value is in range, or yields "FILE:LINE:COL: message" with a
 * printable message; nothing may crash or leak.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lbconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xm_lb_conf c;
	char err[600];

	memset(err, 0x5a, sizeof(err)); /* a message that is not written shows as Z... */
	err[sizeof(err) - 1] = '\0';
	if (xm_lb_conf_parse("f.json", (const char *)data, size, &c, err, sizeof(err))) {
		if (strncmp(err, "f.json:", 7) || strspn(err, "Z") > 8)
			abort();
		return 0;
	}
	if (c.n_svc > XM_LB_MAX_SERVICES || !c.tick_ms)
		abort();
	for (unsigned int i = 0; i < c.n_svc; i++) {
		const struct xm_lb_svc_conf *s = &c.svc[i];

		if (s->n_be > XM_LB_MAX_SVC_BACKENDS || !s->params || !s->key.port)
			abort();
		for (unsigned int j = 0; j < i; j++)
			if (!memcmp(&c.svc[j].key, &s->key, sizeof(s->key)))
				abort();
		for (unsigned int j = 0; j < s->n_be; j++)
			if (!xm_lb_weight_valid(s->be[j].weight) || !s->be[j].port ||
			    s->be[j].family != s->key.family ||
			    memchr(s->be[j].cluster, 0, sizeof(s->be[j].cluster)) == NULL)
				abort();
	}
	xm_lb_conf_free(&c);
	return 0;
}
