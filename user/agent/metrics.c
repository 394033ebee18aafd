// SPDX-License-Identifier: MIT
/*
 * --metrics ADDR:PORT: Prometheus text on GET /metrics, /healthz (liveness)
 * and /readyz (the Kubernetes source's initial sync), served by
 * libmicrohttpd's own thread. Any local user can connect, so the server is
 * bounded: XM_METRICS_MAX_CONNS connections in all, XM_METRICS_MAX_PER_IP
 * from one address, XM_METRICS_TIMEOUT_S for an idle one; libmicrohttpd's
 * own messages (e.g. an accept() failing on EMFILE) are rate-limited.
 * Epoll, not select(): descriptors above FD_SETSIZE must not break it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <microhttpd.h>
#include "addr.h"
#include "agent.h"
#include "k8s.h"
#include "lbtable.h"
#include "log.h"

#define XM_METRICS_MAX_CONNS 64u
#define XM_METRICS_MAX_PER_IP 16u
#define XM_METRICS_TIMEOUT_S 5u

struct xm_metrics {
	struct MHD_Daemon *mhd;
	const struct xm_agent *agent; /* for /readyz: read-only from this thread */
	char pin_root[PATH_MAX];
	/* rate limit of libmicrohttpd's messages (its thread only) */
	time_t log_second;
	unsigned int log_suppressed;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	struct xm_metrics *m = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned int code = MHD_HTTP_OK;
	char *body;
	size_t len = 0;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return MHD_NO;
	if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz")) {
		/* ready: the first complete view of the cluster is applied (k8s.h) */
		bool ok = !strcmp(url, "/healthz") || xm_k8s_ready(m->agent);
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
		body = xm_metrics_render(m->pin_root, &len);
		if (!body)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
	}
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* At most one line a second; the next line says how many were dropped. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct xm_metrics *m = cls;
	time_t now = time(NULL);
	char msg[256];
	size_t n;

	if (now == m->log_second) {
		m->log_suppressed++;
		return;
	}
	m->log_second = now;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pr_warn("metrics: %s%s", msg, m->log_suppressed ? " (and more like it, not shown)" : "");
	m->log_suppressed = 0;
}

/* Parse --metrics without starting anything: main() checks it before the datapath loads. */
int xm_metrics_addr_parse(const char *s, struct sockaddr_storage *ss)
{
	struct xm_addr addr;
	__u16 port;
	__u8 fam;

	memset(ss, 0, sizeof(*ss));
	if (xm_addr_port_parse(s, &fam, &addr, &port)) {
		pr_err("--metrics %s: give ADDR:PORT, e.g. 127.0.0.1:9464 or [::1]:9464", s);
		return -EINVAL;
	}
	if (fam == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = addr.ip[0];
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr.ip, 16);
	}
	return 0;
}

int xm_metrics_start(struct xm_agent *a)
{
	struct sockaddr_storage ss;
	struct xm_metrics *m;
	int err;

	err = xm_metrics_addr_parse(a->metrics_addr, &ss);
	if (err)
		return err;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	snprintf(m->pin_root, sizeof(m->pin_root), "%s", a->pin_root);
	m->agent = a;
	m->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
					  (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				  0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR, &ss,
				  MHD_OPTION_CONNECTION_LIMIT, XM_METRICS_MAX_CONNS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, XM_METRICS_MAX_PER_IP,
				  MHD_OPTION_CONNECTION_TIMEOUT, XM_METRICS_TIMEOUT_S,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, m, MHD_OPTION_END);
	if (!m->mhd) {
		pr_err("--metrics %s: cannot listen (address in use?)", a->metrics_addr);
		free(m);
		return -EADDRINUSE;
	}
	a->metrics = m;
	pr_info("metrics on http://%s/metrics (at most %u connections, %u per address, "
		"%u s idle)", a->metrics_addr, XM_METRICS_MAX_CONNS, XM_METRICS_MAX_PER_IP,
		XM_METRICS_TIMEOUT_S);
	return 0;
}

void xm_metrics_stop(struct xm_agent *a)
{
	if (!a->metrics)
		return;
	MHD_stop_daemon(a->metrics->mhd);
	free(a->metrics);
	a->metrics = NULL;
}
