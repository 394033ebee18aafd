/* SPDX-License-Identifier: MIT */
/*
 * The agent's control protocol, parsed: one JSON request line into a typed
 * request, checked as completely as possible without the agent's state, so
 * that the agent only executes and the parser can be fuzzed on its own
 * (tests/fuzz/fuzz_ctl_request.c). Requests (docs/config.md):
 *   {"cmd":"service-add","service":{...as in the config...}}
 *   {"cmd":"service-del","service":"VIP:PORT[/udp]"}
 *   {"cmd":"backend-weight","service":"VIP:PORT[/udp]","backend":"ADDR:PORT","weight":N}
 *   {"cmd":"reload"}
 */
#ifndef XMESH_CTLPROTO_H
#define XMESH_CTLPROTO_H

#include <stddef.h>
#include "lbconfig.h"

enum xm_ctl_cmd {
	XM_CTL_SERVICE_ADD,
	XM_CTL_SERVICE_DEL,
	XM_CTL_BACKEND_WEIGHT,
	XM_CTL_RELOAD,
};

struct xm_ctl_request {
	enum xm_ctl_cmd cmd;
	struct xm_lb_svc_conf svc; /* SERVICE_ADD (owned: xm_ctl_request_free) */
	struct xm_lb_svc_key key;  /* SERVICE_DEL, BACKEND_WEIGHT */
	struct xm_lb_be_conf be;   /* BACKEND_WEIGHT: address, port, family, weight */
};

/* 0, or -EINVAL with err saying what is wrong (the answer's "error"). */
int xm_ctl_request_parse(const char *line, size_t len, struct xm_ctl_request *req, char *err,
			 size_t errlen);
void xm_ctl_request_free(struct xm_ctl_request *req);

#endif
