// SPDX-License-Identifier: MIT
/*
 * --metrics ADDR:PORT: Prometheus text on GET /metrics, /healthz (liveness)
 * and /readyz (the Kubernetes source's initial sync), on libmicrohttpd's own
 * thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>
#include "addr.h"
#include "agent.h"
#include "k8s.h"
#include "lbtable.h"
#include "log.h"

static struct MHD_Daemon *mhd;
static char metrics_pin_root[PATH_MAX];

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned int code = MHD_HTTP_OK;
	char *body;
	size_t len = 0;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return MHD_NO;
	if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz")) {
		/* ready: the first complete view of the cluster is applied (k8s.h) */
		bool ok = !strcmp(url, "/healthz") || xm_k8s_ready(cls);
		static const char yes[] = "ok\n", no[] = "initial sync not done\n";

		resp = MHD_create_response_from_buffer(ok ? sizeof(yes) - 1 : sizeof(no) - 1,
						       (void *)(ok ? yes : no), MHD_RESPMEM_PERSISTENT);
		code = ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
	} else if (strcmp(url, "/metrics")) {
		static const char nf[] = "xmesh-agent: metrics are at /metrics\n";

		resp = MHD_create_response_from_buffer(sizeof(nf) - 1, (void *)nf,
						       MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_NOT_FOUND;
	} else {
		body = xm_metrics_render(metrics_pin_root, &len);
		if (!body)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
	}
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

int xm_metrics_start(struct xm_agent *a)
{
	struct sockaddr_storage ss = {};
	struct xm_addr addr;
	__u16 port;
	__u8 fam;

	if (xm_addr_port_parse(a->metrics_addr, &fam, &addr, &port)) {
		pr_err("--metrics %s: give ADDR:PORT, e.g. 127.0.0.1:9464 or [::1]:9464",
		       a->metrics_addr);
		return -EINVAL;
	}
	if (fam == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = addr.ip[0];
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr.ip, 16);
	}
	snprintf(metrics_pin_root, sizeof(metrics_pin_root), "%s", a->pin_root);
	mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
				       (fam == AF_INET6 ? MHD_USE_IPv6 : 0),
			       port, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR, &ss,
			       MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!mhd) {
		pr_err("--metrics %s: cannot listen (address in use?)", a->metrics_addr);
		return -EADDRINUSE;
	}
	pr_info("metrics on http://%s/metrics", a->metrics_addr);
	return 0;
}

void xm_metrics_stop(struct xm_agent *a)
{
	if (mhd)
		MHD_stop_daemon(mhd);
	mhd = NULL;
}
