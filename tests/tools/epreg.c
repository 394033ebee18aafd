// SPDX-License-Identifier: MIT
/*
 * epreg: register a pod address in the endpoints map of a pin root, as the
 * CNI plugin or `xmeshctl endpoint add` would. For benchmarks and tests that
 * run before either exists.
 *
 *   epreg PIN_ROOT IP NETNS_PATH
 */
#include <stdio.h>
#include <string.h>
#include "addr.h"
#include "endpoint.h"
#include "sys.h"

int main(int argc, char **argv)
{
	struct xm_endpoint ep = {};
	struct xm_addr addr;
	__u8 family;
	int err;

	if (argc != 4) {
		fprintf(stderr, "usage: epreg PIN_ROOT IP NETNS_PATH\n");
		return 2;
	}
	if (xm_addr_parse(argv[2], &family, &addr)) {
		fprintf(stderr, "epreg: bad address '%s'\n", argv[2]);
		return 2;
	}
	err = xm_netns_cookie_of_path(argv[3], &ep.netns_cookie);
	if (err) {
		fprintf(stderr, "epreg: netns cookie of %s: %s\n", argv[3], strerror(-err));
		return 1;
	}
	snprintf(ep.owner, sizeof(ep.owner), "manual");
	err = xm_endpoint_put(argv[1], family, &addr, &ep);
	if (err) {
		fprintf(stderr, "epreg: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
