// SPDX-License-Identifier: MIT
/*
 * Services of the agent: the config file (loaded at start, on SIGHUP and
 * when the file changes) and the control socket (changes from xmeshctl),
 * both applied through lbstate. A file that does not parse or check is
 * rejected as a whole with FILE:LINE:COL and the running services stay.
 *
 * Control protocol (transport and limits in control.c, parsing in
 * user/lib/ctlproto.c): the client sends one JSON object and a newline, the
 * agent answers one JSON object and a newline, then closes. Requests:
 *   {"cmd":"service-add","service":{...as in the config...}}  add or replace
 *   {"cmd":"service-del","service":"VIP:PORT[/udp]"}
 *   {"cmd":"backend-weight","service":"VIP:PORT[/udp]","backend":"ADDR:PORT","weight":N}
 *   {"cmd":"reload"}
 * Answers: {"ok":true} or {"error":"what is wrong"}. Changes made here last
 * until the next reload of the config file (svcsources.h: they win over the
 * file and the cluster until then).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <libgen.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>
#include "addr.h"
#include "agent.h"
#include "control.h"
#include "ctlproto.h"
#include "lbstate.h"
#include "log.h"
#include "pin.h"
#include "stats.h"
#include "svcsources.h"
#include "weighting.h"

struct xm_services {
	struct xm_lb_state lb;
	bool lb_ready;
	int inotify_fd;
	int lru_fd;              /* timerfd: LRU eviction estimates, once a second */
	__u64 lru_seen[2];       /* lb_rev_new, lb_flows_new at the last estimate */
	char cfg_dir[PATH_MAX], cfg_base[PATH_MAX];
	struct stat cfg_st;      /* the file (symlinks followed) last loaded */
};

struct xm_lb_state *xm_services_state(const struct xm_agent *a)
{
	return a->services && a->services->lb_ready ? &a->services->lb : NULL;
}

int xm_services_reload(struct xm_agent *a)
{
	struct xm_lb_state *st = xm_services_state(a);
	struct xm_lb_conf c;
	unsigned int n;
	char err[600];
	int r;

	if (!a->config_path || !st)
		return 0;
	if (stat(a->config_path, &a->services->cfg_st))
		memset(&a->services->cfg_st, 0, sizeof(a->services->cfg_st));
	r = xm_lb_conf_load(a->config_path, &c, err, sizeof(err));
	if (!r && xm_lb_state_check(st, &c, err, sizeof(err))) {
		xm_lb_conf_free(&c);
		r = -E2BIG;
	}
	if (r) {
		pr_err("config rejected, running services unchanged: %s", err);
		return r;
	}
	n = c.n_svc;
	xm_weighting_set_tick(a, c.tick_ms);
	a->lb_probes_mode = c.probes;
	a->lb_probes_clientless_s = c.probes_clientless_s;
	a->recv_counters_mode = c.redirect_recv_counters;
	r = xm_svc_sources_replace(a, XM_SRC_FILE, &c);
	xm_lb_probes_sync(a); /* also when the services did not change */
	xm_redirect_counters_sync(a);
	pr_info("config %s applied: %u services%s", a->config_path, n,
		r ? " (with errors, see above)" : "");
	xm_lb_conf_free(&c);
	/* Parsing a large config leaves megabytes of freed heap: give them back. */
	malloc_trim(0);
	return r;
}

static void on_inotify(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xm_services *sv = ((struct xm_agent *)arg)->services;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct stat st;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	/*
	 * Whatever changed in the directory, reload when the file the path leads
	 * to is another one: a ConfigMap's kubelet swaps a "..data" symlink, not
	 * the file's own name; editors rename over it; others write in place.
	 */
	if (stat(((struct xm_agent *)arg)->config_path, &st))
		return;
	if (st.st_dev != sv->cfg_st.st_dev || st.st_ino != sv->cfg_st.st_ino ||
	    st.st_size != sv->cfg_st.st_size || st.st_mtim.tv_sec != sv->cfg_st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != sv->cfg_st.st_mtim.tv_nsec) {
		pr_info("config file changed: reloading");
		xm_services_reload(arg);
	}
}

/* ---- control socket ---- */

static json_t *reply_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *reply_err(const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:s}", "error", msg);
}

static json_t *reply_applied(const struct xm_agent *a, int r)
{
	if (r == -E2BIG)
		return reply_err("rejected, nothing changed: %s", xm_svc_sources_why(a));
	return r ? reply_err("applied with errors: %s (see the agent's log)", strerror(-r))
		 : json_pack("{s:b}", "ok", 1);
}

static json_t *ctl_service_add(struct xm_agent *a, struct xm_lb_svc_conf *s)
{
	return reply_applied(a, xm_svc_sources_put(a, s));
}

static json_t *ctl_service_del(struct xm_agent *a, const struct xm_lb_svc_key *key)
{
	int r = xm_svc_sources_del(a, key);

	if (r == -ENOENT)
		return reply_err("no such service");
	return reply_applied(a, r);
}

static json_t *ctl_backend_weight(struct xm_agent *ag, struct xm_lb_state *st,
				  const struct xm_lb_svc_key *key, const struct xm_lb_be_conf *be)
{
	char a[XM_ADDR_STRLEN];
	struct xm_lb_svc_rt *rt;
	double *w;
	int r, hit = -1;

	xm_addr_str(be->family, &be->addr, a, sizeof(a));
	rt = xm_lb_state_find(st, key);
	if (!rt)
		return reply_err("no such service");
	if (xm_lb_algo_equal_weights(rt->conf.algorithm))
		return reply_err("service uses %s: all weights are equal", rt->conf.algorithm);
	for (unsigned int i = 0; i < rt->conf.n_be; i++)
		if (rt->conf.be[i].port == be->port && rt->conf.be[i].family == be->family &&
		    !memcmp(&rt->conf.be[i].addr, &be->addr, sizeof(be->addr)))
			hit = i;
	if (hit < 0)
		return reply_err("no backend %s port %u in this service", a, be->port);
	rt->conf.be[hit].weight = be->weight;
	xm_svc_sources_set_weight(ag, key, &rt->conf.be[hit], be->weight);
	w = calloc(rt->conf.n_be, sizeof(*w));
	if (!w)
		return reply_err("out of memory");
	xm_lb_conf_weights(&rt->conf, w);
	r = xm_lb_state_set_weights(st, rt, w);
	free(w);
	if (r)
		return reply_err("write table: %s", strerror(-r));
	pr_info("weight of %s port %u set to %g by the control socket", a, be->port, be->weight);
	return json_pack("{s:b}", "ok", 1);
}

json_t *xm_services_request(struct xm_agent *a, const char *line, size_t len)
{
	struct xm_lb_state *st = xm_services_state(a);
	struct xm_ctl_request req;
	char err[600];
	json_t *rep = NULL;

	if (xm_ctl_request_parse(line, len, &req, err, sizeof(err)))
		return json_pack("{s:s}", "error", err);
	if (!st) {
		rep = reply_err("the LB datapath is not loaded");
		goto out;
	}
	switch (req.cmd) {
	case XM_CTL_SERVICE_ADD:
		rep = ctl_service_add(a, &req.svc);
		break;
	case XM_CTL_SERVICE_DEL:
		rep = ctl_service_del(a, &req.key);
		break;
	case XM_CTL_BACKEND_WEIGHT:
		rep = ctl_backend_weight(a, st, &req.key, &req.be);
		break;
	case XM_CTL_RELOAD:
		rep = !a->config_path ? reply_err("the agent runs without --config")
		      : xm_services_reload(a) ? reply_err("config rejected (see the agent's log)")
					       : json_pack("{s:b}", "ok", 1);
		break;
	}
	/* Whatever a request changed, the weighting loop re-reads backends and services. */
	xm_weighting_topology_changed(a);
out:
	xm_ctl_request_free(&req);
	return rep;
}

/*
 * Once a second, when the LB created reverse entries or shared flow states
 * meanwhile: estimate what the full LRUs evicted (user/lib/stats.h), so that
 * `xmeshctl stats` and the metrics show lb_rev_evictions, lb_flows_evictions.
 */
static void on_lru_tick(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct xm_agent *a = arg;
	struct xm_services *sv = a->services;
	__u64 vals[XM_STAT_MAX], exp;

	if (read(fd, &exp, sizeof(exp)) != sizeof(exp) || xm_stats_read(a->pin_root, vals))
		return;
	if (vals[XM_STAT_LB_REV_NEW] != sv->lru_seen[0])
		xm_lru_evictions_update(a->pin_root, "xm_lb_rev", XM_STAT_LB_REV_NEW, -1, -1,
					XM_STAT_LB_REV_EVICTIONS);
	if (vals[XM_STAT_LB_FLOWS_NEW] != sv->lru_seen[1])
		xm_lru_evictions_update(a->pin_root, "xm_lb_flows", XM_STAT_LB_FLOWS_NEW,
					XM_STAT_LB_FLOWS_ENDED, -1, XM_STAT_LB_FLOWS_EVICTIONS);
	sv->lru_seen[0] = vals[XM_STAT_LB_REV_NEW];
	sv->lru_seen[1] = vals[XM_STAT_LB_FLOWS_NEW];
}

static int lru_tick_start(struct xm_agent *a)
{
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	struct xm_services *sv = a->services;

	sv->lru_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (sv->lru_fd < 0 || timerfd_settime(sv->lru_fd, 0, &its, NULL))
		return -errno;
	return xm_loop_add(a->loop, sv->lru_fd, EPOLLIN, on_lru_tick, a);
}

static int watch_config(struct xm_agent *a)
{
	struct xm_services *sv = a->services;
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", a->config_path);
	snprintf(sv->cfg_dir, sizeof(sv->cfg_dir), "%s", dirname(tmp));
	snprintf(tmp, sizeof(tmp), "%s", a->config_path);
	snprintf(sv->cfg_base, sizeof(sv->cfg_base), "%s", basename(tmp));
	sv->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (sv->inotify_fd < 0)
		return -errno;
	/* The directory: editors and ConfigMaps replace the file by rename. */
	if (inotify_add_watch(sv->inotify_fd, sv->cfg_dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0)
		return -errno;
	return xm_loop_add(a->loop, sv->inotify_fd, EPOLLIN, on_inotify, a);
}

int xm_services_start(struct xm_agent *a)
{
	struct xm_services *sv = calloc(1, sizeof(*sv));
	int err;

	if (!sv)
		return -ENOMEM;
	sv->inotify_fd = sv->lru_fd = -1;
	a->services = sv;
	err = xm_lb_state_init(&sv->lb, a->pin_root);
	if (err) {
		pr_err("LB maps under %s: %s", a->pin_root, strerror(-err));
		return err;
	}
	sv->lb_ready = true;
	err = lru_tick_start(a);
	if (err)
		pr_warn("LRU eviction estimates off: %s", strerror(-err));
	err = xm_svc_sources_init(a, a->k8s_enabled);
	if (err)
		return err;
	if (a->config_path) {
		xm_services_reload(a); /* a bad file leaves the adopted services running */
		err = watch_config(a);
		if (err)
			pr_warn("cannot watch %s for changes (%s): reload with SIGHUP",
				a->config_path, strerror(-err));
	}
	return xm_control_start(a);
}

void xm_services_stop(struct xm_agent *a)
{
	struct xm_services *sv = a->services;

	xm_control_stop(a);
	if (!sv)
		return;
	if (sv->inotify_fd >= 0) {
		xm_loop_del(a->loop, sv->inotify_fd);
		close(sv->inotify_fd);
	}
	if (sv->lru_fd >= 0) {
		xm_loop_del(a->loop, sv->lru_fd);
		close(sv->lru_fd);
	}
	xm_svc_sources_free(a);
	if (sv->lb_ready)
		xm_lb_state_free(&sv->lb);
	free(sv);
	a->services = NULL;
}
