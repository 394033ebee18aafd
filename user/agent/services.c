// SPDX-License-Identifier: MIT
/*
 * Services of the agent: the config file (loaded at start, on SIGHUP and
 * when the file changes) and the control socket (changes from xmeshctl),
 * both applied through lbstate. A file that does not parse or check is
 * rejected as a whole with FILE:LINE:COL and the running services stay.
 *
 * Control protocol (unix stream socket at xm_run_path(pin root, "sock")):
 * the client sends one JSON object and a newline, the agent answers one
 * JSON object and a newline, then closes. Requests:
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
#include <sys/un.h>
#include <unistd.h>
#include "addr.h"
#include "agent.h"
#include "lbstate.h"
#include "log.h"
#include "pin.h"
#include "svcsources.h"
#include "weighting.h"

static struct xm_lb_state lb_state;
static bool lb_ready;
static int inotify_fd = -1, ctl_fd = -1;
static char ctl_path[PATH_MAX], cfg_dir[PATH_MAX], cfg_base[PATH_MAX];
static struct stat cfg_st; /* the file (symlinks followed) last loaded */

struct xm_lb_state *xm_services_state(void)
{
	return lb_ready ? &lb_state : NULL;
}

int xm_services_reload(struct xm_agent *a)
{
	struct xm_lb_conf c;
	unsigned int n;
	char err[600];
	int r;

	if (!a->config_path || !lb_ready)
		return 0;
	if (stat(a->config_path, &cfg_st))
		memset(&cfg_st, 0, sizeof(cfg_st));
	r = xm_lb_conf_load(a->config_path, &c, err, sizeof(err));
	if (r) {
		pr_err("config rejected, running services unchanged: %s", err);
		return r;
	}
	n = c.n_svc;
	xm_weighting_set_tick(a, c.tick_ms);
	r = xm_svc_sources_replace(a, XM_SRC_FILE, &c, NULL);
	pr_info("config %s applied: %u services%s", a->config_path, n,
		r ? " (with errors, see above)" : "");
	xm_lb_conf_free(&c);
	/* Parsing a large config leaves megabytes of freed heap: give them back. */
	malloc_trim(0);
	return r;
}

static void on_inotify(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
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
	if (st.st_dev != cfg_st.st_dev || st.st_ino != cfg_st.st_ino ||
	    st.st_size != cfg_st.st_size || st.st_mtim.tv_sec != cfg_st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != cfg_st.st_mtim.tv_nsec) {
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

static json_t *ctl_service_add(struct xm_agent *a, json_t *req)
{
	struct xm_lb_svc_conf s;
	char err[600];
	int r;

	if (xm_lb_svc_conf_from_json(json_object_get(req, "service"), &s, err, sizeof(err)))
		return reply_err("service: %s", err);
	r = xm_svc_sources_put(a, &s);
	return r ? reply_err("applied with errors: %s (see the agent's log)", strerror(-r))
		 : json_pack("{s:b}", "ok", 1);
}

static int req_key(json_t *req, struct xm_lb_svc_key *key)
{
	const char *s = json_string_value(json_object_get(req, "service"));

	return s ? xm_lb_svc_key_parse(s, key) : -EINVAL;
}

static json_t *ctl_service_del(struct xm_agent *a, json_t *req)
{
	struct xm_lb_svc_key key;
	int r;

	if (req_key(req, &key))
		return reply_err("\"service\" must be \"VIP:PORT\" or \"VIP:PORT/udp\"");
	r = xm_svc_sources_del(a, &key);
	if (r == -ENOENT)
		return reply_err("no such service");
	return r ? reply_err("applied with errors: %s (see the agent's log)", strerror(-r))
		 : json_pack("{s:b}", "ok", 1);
}

static json_t *ctl_backend_weight(struct xm_agent *a, json_t *req)
{
	struct xm_lb_svc_key key;
	struct xm_lb_svc_rt *rt;
	struct xm_addr addr;
	json_t *wv = json_object_get(req, "weight");
	const char *bs = json_string_value(json_object_get(req, "backend"));
	double *w;
	__u8 fam;
	__u16 port;
	int r, hit = -1;

	if (req_key(req, &key))
		return reply_err("\"service\" must be \"VIP:PORT\" or \"VIP:PORT/udp\"");
	if (!bs || xm_addr_port_parse(bs, &fam, &addr, &port))
		return reply_err("\"backend\" must be \"ADDR:PORT\" or \"[ADDR6]:PORT\"");
	if (!json_is_number(wv) || json_number_value(wv) < 0 || json_number_value(wv) > 1e6)
		return reply_err("\"weight\" must be a number from 0 to 1000000");
	rt = xm_lb_state_find(&lb_state, &key);
	if (!rt)
		return reply_err("no such service");
	if (!strcmp(rt->conf.algorithm, "round-robin"))
		return reply_err("service uses round-robin: all weights are equal");
	for (unsigned int i = 0; i < rt->conf.n_be; i++)
		if (rt->conf.be[i].port == port && rt->conf.be[i].family == fam &&
		    !memcmp(&rt->conf.be[i].addr, &addr, sizeof(addr)))
			hit = i;
	if (hit < 0)
		return reply_err("no backend %s in this service", bs);
	rt->conf.be[hit].weight = json_number_value(wv);
	xm_svc_sources_set_weight(a, &key, &rt->conf.be[hit], json_number_value(wv));
	w = calloc(rt->conf.n_be, sizeof(*w));
	if (!w)
		return reply_err("out of memory");
	xm_lb_conf_weights(&rt->conf, w);
	r = xm_lb_state_set_weights(&lb_state, rt, w);
	free(w);
	if (r)
		return reply_err("write table: %s", strerror(-r));
	pr_info("weight of %s set to %g by the control socket", bs, json_number_value(wv));
	return json_pack("{s:b}", "ok", 1);
}

static json_t *ctl_handle(struct xm_agent *a, const char *line)
{
	json_error_t je;
	json_t *req = json_loads(line, 0, &je), *rep;
	const char *cmd;

	if (!req)
		return reply_err("request is not JSON: %d:%d: %s", je.line, je.column, je.text);
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (!lb_ready)
		rep = reply_err("the LB datapath is not loaded");
	else if (!cmd)
		rep = reply_err("request needs a \"cmd\"");
	else if (!strcmp(cmd, "service-add"))
		rep = ctl_service_add(a, req);
	else if (!strcmp(cmd, "service-del"))
		rep = ctl_service_del(a, req);
	else if (!strcmp(cmd, "backend-weight"))
		rep = ctl_backend_weight(a, req);
	else if (!strcmp(cmd, "reload"))
		rep = !a->config_path ? reply_err("the agent runs without --config")
		      : xm_services_reload(a) ? reply_err("config rejected (see the agent's log)")
					       : json_pack("{s:b}", "ok", 1);
	else
		rep = reply_err("unknown cmd \"%s\"", cmd);
	json_decref(req);
	/* Whatever a request changed, the weighting loop re-reads backends and services. */
	xm_weighting_topology_changed(a);
	return rep;
}

static void on_ctl(struct xm_loop *loop, int fd, uint32_t events, void *arg)
{
	struct timeval tv = { .tv_sec = 2 };
	char buf[1 << 16];
	size_t len = 0;
	json_t *rep;
	char *out;
	int c;

	c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	/* One short request; a stuck client cannot hold the agent for long. */
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			break;
		len += n;
		if (memchr(buf + len - n, '\n', n))
			break;
	}
	buf[len] = '\0';
	rep = ctl_handle(arg, buf);
	out = json_dumps(rep, JSON_COMPACT);
	if (out) {
		size_t n = strlen(out);

		if (write(c, out, n) != (ssize_t)n || write(c, "\n", 1) != 1)
			pr_debug("control client went away before the answer");
		free(out);
	}
	json_decref(rep);
	close(c);
}

static int ctl_listen(struct xm_agent *a)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int err;

	err = xm_run_path(ctl_path, sizeof(ctl_path), a->pin_root, "sock");
	if (err)
		return err;
	if (strlen(ctl_path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, ctl_path);
	ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl_fd < 0)
		return -errno;
	unlink(ctl_path); /* we hold the pin root's lock: a leftover socket is stale */
	if (bind(ctl_fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(ctl_fd, 16)) {
		err = -errno;
		close(ctl_fd);
		ctl_fd = -1;
		return err;
	}
	chmod(ctl_path, 0600);
	return xm_loop_add(a->loop, ctl_fd, EPOLLIN, on_ctl, a);
}

static int watch_config(struct xm_agent *a)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", a->config_path);
	snprintf(cfg_dir, sizeof(cfg_dir), "%s", dirname(tmp));
	snprintf(tmp, sizeof(tmp), "%s", a->config_path);
	snprintf(cfg_base, sizeof(cfg_base), "%s", basename(tmp));
	inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (inotify_fd < 0)
		return -errno;
	/* The directory: editors and ConfigMaps replace the file by rename. */
	if (inotify_add_watch(inotify_fd, cfg_dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0)
		return -errno;
	return xm_loop_add(a->loop, inotify_fd, EPOLLIN, on_inotify, a);
}

int xm_services_start(struct xm_agent *a)
{
	int err;

	err = xm_lb_state_init(&lb_state, a->pin_root);
	if (err) {
		pr_err("LB maps under %s: %s", a->pin_root, strerror(-err));
		return err;
	}
	lb_ready = true;
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
	err = ctl_listen(a);
	if (err)
		pr_err("control socket %s: %s", ctl_path, strerror(-err));
	return err;
}

void xm_services_stop(struct xm_agent *a)
{
	if (ctl_fd >= 0) {
		close(ctl_fd);
		unlink(ctl_path);
	}
	if (inotify_fd >= 0)
		close(inotify_fd);
	ctl_fd = inotify_fd = -1;
	xm_svc_sources_free(a);
	if (lb_ready)
		xm_lb_state_free(&lb_state);
	lb_ready = false;
}
