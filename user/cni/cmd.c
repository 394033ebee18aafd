// SPDX-License-Identifier: MIT
/*
 * ADD, DEL, CHECK, GC and STATUS.
 *
 * Errors in what the runtime handed us (environment, config, netns) are CNI
 * errors. Anything that goes wrong on our side after that (no datapath, a
 * link we cannot find, a full map) is logged and ADD still succeeds with the
 * primary plugin's result: the pod gets plain networking, never none.
 *
 * Order inside ADD: the record (state file) is written before any map entry,
 * so a plugin killed half-way leaves enough behind for DEL, GC or the agent
 * to finish or undo the work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include "addr.h"
#include "cni.h"
#include "endpoint.h"
#include "link.h"
#include "log.h"
#include "pin.h"
#include "sys.h"

/*
 * Test build only (build/tests/xmesh-cni-crash, -DXM_CNI_TEST_HOOKS; never
 * installed): XMESH_CNI_TEST_CRASH=after-state|after-register makes ADD die
 * (SIGKILL) at that point, as a node reboot or OOM kill would. Used by
 * tests/integration/test_cni.sh to prove that DEL and a second ADD recover.
 * The shipped plugin has no such hook.
 */
#ifndef XM_CNI_TEST_HOOKS
static inline void crash_point(const char *where)
{
}
#else
static void crash_point(const char *where)
{
	const char *want = getenv("XMESH_CNI_TEST_CRASH");

	if (want && !strcmp(want, where)) {
		pr_warn("XMESH_CNI_TEST_CRASH=%s: killing myself", where);
		raise(SIGKILL);
	}
}
#endif

static int need_env(const char *v, const char *name, bool (*valid)(const char *),
		    struct xm_cni_err *e)
{
	if (!v) {
		xm_cni_err_set(e, XM_CNI_E_ENV, NULL, "%s is not set", name);
		return -1;
	}
	if (valid && !valid(v)) {
		xm_cni_err_set(e, XM_CNI_E_ENV, v, "%s is not valid", name);
		return -1;
	}
	return 0;
}

/* CNI_NETNS must be an absolute path to a network namespace that exists. */
static int check_netns(const char *path, struct xm_cni_err *e)
{
	struct statfs sfs;
	int fd, type;

	if (need_env(path, "CNI_NETNS", NULL, e))
		return -1;
	if (path[0] != '/') {
		xm_cni_err_set(e, XM_CNI_E_ENV, path, "CNI_NETNS must be an absolute path");
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		xm_cni_err_set(e, err == ENOENT ? XM_CNI_E_CONTAINER : XM_CNI_E_ENV, strerror(err),
			       "cannot open network namespace %s", path);
		return -1;
	}
	type = fstatfs(fd, &sfs) == 0 && sfs.f_type == NSFS_MAGIC ? ioctl(fd, NS_GET_NSTYPE) : -1;
	close(fd);
	if (type != CLONE_NEWNET) {
		xm_cni_err_set(e, XM_CNI_E_ENV, path, "CNI_NETNS is not a network namespace");
		return -1;
	}
	return 0;
}

/* Our fields as written (conf.h own_err): -1 with the error for ADD and CHECK. */
static int own_fields_refused(const struct xm_cni_conf *c, struct xm_cni_err *e)
{
	if (!c->own_err.code)
		return 0;
	*e = c->own_err;
	return -1;
}

static int need_prev_result(const struct xm_cni_conf *c, const char *cmd, struct xm_cni_err *e)
{
	if (c->prev_result && c->prev_err.code) {
		*e = c->prev_err;
		return -1;
	}
	if (c->prev_result)
		return 0;
	xm_cni_err_set(e, XM_CNI_E_CONFIG, "xmesh-cni is a chained plugin: list it after the "
		       "primary plugin in the conflist", "%s needs prevResult", cmd);
	return -1;
}

/* What the pod's side of the attachment looks like, read inside its netns. */
struct pod_view {
	const char *ifname;
	struct xm_link link;
	__u64 cookie;
	unsigned int n_addrs;
	struct xm_cni_ip addrs[XM_CNI_MAX_RESULT_IPS];
	int err;
	const char *what;
};

static int pod_view_job(void *arg)
{
	struct pod_view *v = arg;

	v->what = "netns cookie";
	v->err = xm_netns_cookie_self(&v->cookie);
	if (v->err)
		return v->err;
	v->what = "interface";
	v->err = xm_link_by_name(v->ifname, &v->link);
	if (v->err)
		return v->err;
	v->what = "addresses";
	v->err = xm_link_addrs(v->link.ifindex, v->addrs,
			       sizeof(v->addrs) / sizeof(v->addrs[0]), &v->n_addrs);
	return v->err;
}

static bool ip_equal(const struct xm_cni_ip *a, const struct xm_cni_ip *b)
{
	return a->family == b->family && !memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

/* Is prevResult's interface i the one this invocation is about? */
static bool iface_is_ours(const struct xm_cni_conf *c, int i, const char *ifname)
{
	if (i == -1)
		return true; /* the result does not say: it can only be the container's */
	if (i < 0)
		return false; /* an interface past what we keep of the result */
	return c->ifaces[i].sandbox[0] && !strcmp(c->ifaces[i].name, ifname);
}

/* Does prevResult list a host interface (no sandbox) of this name? -1: it lists none at all. */
static int prev_lists_host_iface(const struct xm_cni_conf *c, const char *name)
{
	int seen = -1;

	for (unsigned int i = 0; i < c->n_ifaces; i++) {
		if (c->ifaces[i].sandbox[0])
			continue;
		if (!strcmp(c->ifaces[i].name, name))
			return 1;
		seen = 0;
	}
	return seen;
}

/*
 * The host side of the pod's veth: the link in our netns whose index the
 * pod's interface names as its peer, which must in turn name the pod's
 * interface, in the pod's netns (IFLA_LINK_NETNSID), as its own peer.
 */
static int find_host_veth(const char *netns, const struct xm_link *pod, struct xm_link *host)
{
	int fd, nsid, err;

	if (strcmp(pod->kind, "veth") || !pod->peer_ifindex)
		return -ENODEV;
	err = xm_link_by_index(pod->peer_ifindex, host);
	if (err)
		return err;
	if (strcmp(host->kind, "veth") || host->peer_ifindex != pod->ifindex)
		return -ENODEV; /* that index is another device here: the veth's peer is elsewhere */
	fd = open(netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = xm_netns_id(fd, &nsid);
	close(fd);
	if (!err && host->peer_netnsid != nsid)
		return -ENODEV;
	return 0;
}

/* "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=name;..." -> "ns/name" (for logs and records only). */
static void pod_name_from_args(const char *args, char *out, size_t len)
{
	char ns[XM_CNI_NAME_MAX] = "", name[XM_CNI_NAME_MAX] = "";
	const char *p = args;

	out[0] = '\0';
	while (p && *p) {
		const char *end = strchr(p, ';'), *eq = strchr(p, '=');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (eq && eq < p + n) {
			size_t klen = eq - p, vlen = n - klen - 1;
			char *dst = NULL;

			if (klen == 17 && !strncmp(p, "K8S_POD_NAMESPACE", klen))
				dst = ns;
			else if (klen == 12 && !strncmp(p, "K8S_POD_NAME", klen))
				dst = name;
			if (dst && vlen < XM_CNI_NAME_MAX) {
				memcpy(dst, eq + 1, vlen);
				dst[vlen] = '\0';
			}
		}
		p = end ? end + 1 : NULL;
	}
	if (name[0])
		snprintf(out, len, "%.*s/%.*s", 120, ns[0] ? ns : "-", 120, name);
}

/* Fill s from the runtime's data and what the kernel says. Returns -errno; logs why. */
static int gather(const struct xm_cni_env *env, const struct xm_cni_conf *c,
		  struct xm_cni_state *s)
{
	struct pod_view *v;
	struct xm_link host, pod;
	char buf[XM_ADDR_STRLEN];
	int err;

	memset(s, 0, sizeof(*s));
	snprintf(s->network, sizeof(s->network), "%s", c->name);
	snprintf(s->container_id, sizeof(s->container_id), "%s", env->container_id);
	snprintf(s->ifname, sizeof(s->ifname), "%s", env->ifname);
	snprintf(s->netns, sizeof(s->netns), "%s", env->netns);
	snprintf(s->pin_root, sizeof(s->pin_root), "%s", c->pin_root);
	pod_name_from_args(env->args, s->pod, sizeof(s->pod));
	s->optout = c->optout;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->ifname = env->ifname;
	err = xm_netns_run(env->netns, pod_view_job, v);
	if (err) {
		pr_warn("%s: cannot read %s of %s in %s: %s", env->container_id, v->what ?: "netns",
			env->ifname, env->netns, strerror(-err));
		free(v);
		return err;
	}
	pod = v->link;
	s->netns_cookie = v->cookie;
	s->pod_ifindex = v->link.ifindex;
	if (v->link.has_mac)
		memcpy(s->pod_mac, v->link.mac, 6);

	/* Addresses: those prevResult gives this interface that it really carries. */
	for (unsigned int i = 0; i < c->n_ips; i++) {
		const struct xm_cni_ip *ip = &c->ips[i].ip;
		bool found = false;

		if (!iface_is_ours(c, c->ips[i].iface, env->ifname))
			continue;
		for (unsigned int j = 0; j < v->n_addrs && !found; j++)
			found = ip_equal(ip, &v->addrs[j]);
		xm_addr_str(ip->family, &ip->addr, buf, sizeof(buf));
		if (!found) {
			pr_warn("%s: prevResult gives %s to %s but the interface does not carry it: "
				"not registered", env->container_id, buf, env->ifname);
			continue;
		}
		if (s->n_ips == XM_CNI_MAX_IPS) {
			pr_warn("%s: more than %d addresses: %s and later ones not registered",
				env->container_id, XM_CNI_MAX_IPS, buf);
			break;
		}
		s->ips[s->n_ips++] = *ip;
	}
	if (c->dropped_ips || c->dropped_ifaces)
		pr_warn("%s: prevResult has more than %d interfaces or addresses: the rest is "
			"ignored", env->container_id, XM_CNI_MAX_RESULT_IPS);
	free(v);

	err = xm_netns_cookie_self(&s->host_netns_cookie);
	if (err)
		return err;
	err = find_host_veth(env->netns, &pod, &host);
	if (!err) {
		s->host_ifindex = host.ifindex;
		snprintf(s->host_ifname, sizeof(s->host_ifname), "%s", host.name);
		if (host.has_mac)
			memcpy(s->host_mac, host.mac, 6);
		if (prev_lists_host_iface(c, host.name) == 0)
			pr_info("%s: host veth %s is not among prevResult's host interfaces",
				env->container_id, host.name);
	} else {
		/* Not a veth (macvlan, ipvlan...) or not in our netns: nothing on the host side. */
		pr_info("%s: no host-side veth for %s in this netns (%s): registering without it",
			env->container_id, env->ifname, strerror(-err));
	}
	return 0;
}

/*
 * A second ADD for the same attachment (a runtime retrying, or a pod whose
 * addresses changed): what the previous record registered and this one does
 * not is ours to remove, or DEL would never see it.
 */
static void drop_previous(const struct xm_cni_state *old, const struct xm_cni_state *s)
{
	struct xm_cni_ip gone[XM_CNI_MAX_IPS];
	unsigned int n = 0;

	for (unsigned int i = 0; i < old->n_ips; i++) {
		bool kept = false;

		for (unsigned int j = 0; j < s->n_ips && !kept; j++)
			kept = ip_equal(&old->ips[i], &s->ips[j]);
		if (!kept)
			gone[n++] = old->ips[i];
	}
	if (n && xm_cni_unregister(old->pin_root, old->container_id, gone, n) > 0)
		pr_info("%s: addresses of the previous ADD that are gone now were removed",
			s->container_id);
	if (old->host_ifindex && old->host_ifindex != s->host_ifindex)
		xm_cni_pod_detach(old);
}

int xm_cni_add(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e)
{
	struct xm_cni_state s, old;
	bool had_old;
	int lock, n, err;

	if (need_env(env->container_id, "CNI_CONTAINERID", xm_cni_valid_container_id, e) ||
	    need_env(env->ifname, "CNI_IFNAME", xm_cni_valid_ifname, e) ||
	    check_netns(env->netns, e) || need_prev_result(c, "ADD", e) || own_fields_refused(c, e))
		return -1;
	if (c->optout_err.code) {
		/* The operator asked for something we cannot do: say so in the pod's events. */
		*e = c->optout_err;
		return -1;
	}

	err = gather(env, c, &s);
	if (err) {
		pr_warn("%s: not registered with xmesh (fail-open: the pod keeps plain networking)",
			env->container_id);
		goto out;
	}
	lock = xm_cni_lock(c->state_dir);
	if (lock < 0) {
		pr_warn("%s: state dir %s: %s (fail-open: not registered)", env->container_id,
			c->state_dir, strerror(-lock));
		goto out;
	}
	had_old = !xm_cni_state_load(c->state_dir, c->name, env->container_id, env->ifname, &old);
	err = xm_cni_state_write(c->state_dir, &s);
	if (err) {
		pr_warn("%s: cannot write its record in %s: %s (fail-open: not registered)",
			env->container_id, c->state_dir, strerror(-err));
		close(lock);
		goto out;
	}
	crash_point("after-state");
	n = xm_cni_register(&s, XM_CNI_PUT_OVERWRITE);
	if (n == -ENOENT) {
		pr_info("%s: no xmesh datapath at %s (agent not started yet?): recorded, the agent "
			"registers it when it starts", env->container_id, c->pin_root);
	} else if (n < 0) {
		pr_warn("%s: endpoint registration at %s failed: %s (fail-open: plain networking "
			"until the agent restarts)", env->container_id, c->pin_root, strerror(-n));
	} else {
		if (had_old)
			drop_previous(&old, &s);
		crash_point("after-register");
		err = xm_cni_pod_attach(&s);
		if (err)
			pr_warn("%s: per-pod programs on %s: %s", env->container_id, s.host_ifname,
				strerror(-err));
		pr_info("%s%s%s%s: registered %d address%s in netns cookie %llu, host veth %s "
			"(ifindex %u)", env->container_id, s.pod[0] ? " (pod " : "", s.pod,
			s.pod[0] ? ")" : "", n, n == 1 ? "" : "es",
			(unsigned long long)s.netns_cookie, s.host_ifname[0] ? s.host_ifname : "-",
			s.host_ifindex);
		if (s.optout.redirect_off || s.optout.n_ports)
			pr_info("%s: redirection off for %s", env->container_id,
				s.optout.redirect_off ? "the whole pod"
						      : "the ports in " XM_CNI_ANNOT_SKIP_PORTS);
	}
	close(lock);
out:
	/* The chain's result goes on as it came. */
	if (json_dumpf(c->prev_result, stdout, JSON_COMPACT)) {
		xm_cni_err_set(e, XM_CNI_E_IO, strerror(errno), "cannot write the result");
		return -1;
	}
	fputc('\n', stdout);
	return 0;
}

/* prevResult's addresses for this interface (DEL without a record). */
static unsigned int prev_ips(const struct xm_cni_conf *c, const char *ifname, struct xm_cni_ip *out,
			     unsigned int max)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < c->n_ips && n < max; i++)
		if (iface_is_ours(c, c->ips[i].iface, ifname))
			out[n++] = c->ips[i].ip;
	return n;
}

/* Undo one attachment given its record: endpoints still ours, per-pod programs, the record. */
static int undo(const char *state_dir, const struct xm_cni_state *s)
{
	int n, err;

	n = xm_cni_unregister(s->pin_root, s->container_id, s->ips, s->n_ips);
	if (n < 0)
		return n;
	err = xm_cni_optout_remove(s);
	if (err)
		pr_warn("%s: removing its redirect opt-out: %s", s->container_id, strerror(-err));
	err = xm_cni_pod_detach(s);
	if (err)
		pr_warn("%s: detaching per-pod programs from %s: %s", s->container_id,
			s->host_ifname, strerror(-err));
	err = xm_cni_state_remove(state_dir, s->network, s->container_id, s->ifname);
	if (err)
		return err;
	pr_info("%s: removed %d endpoint%s and the record", s->container_id, n, n == 1 ? "" : "s");
	return 0;
}

/* DEL without a usable record: what prevResult and the owner index say is this pod's. */
static int del_without_record(const struct xm_cni_env *env, struct xm_cni_conf *c)
{
	struct xm_cni_ip ips[XM_CNI_MAX_RESULT_IPS];
	unsigned int n_ips;
	int n;

	n_ips = prev_ips(c, env->ifname, ips, sizeof(ips) / sizeof(ips[0]));
	n = xm_cni_unregister(c->pin_root, env->container_id, ips, n_ips);
	if (n >= 0)
		n += xm_cni_unregister_owner(c->pin_root, env->container_id);
	if (n > 0)
		pr_info("%s: removed %d endpoint%s left without a record", env->container_id, n,
			n == 1 ? "" : "s");
	return n < 0 ? n : 0;
}

/*
 * DEL fails open, as ADD does: a pod's teardown must never stick on xmesh.
 * What cannot be undone now (state dir unwritable, maps unreachable) is
 * logged; the agent's GC and the next ADD of the same attachment clean up.
 */
int xm_cni_del(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e)
{
	struct xm_cni_state s;
	int lock, err;

	/* The netns and prevResult may be gone by now; the ids are all we need. */
	if (need_env(env->container_id, "CNI_CONTAINERID", xm_cni_valid_container_id, e) ||
	    need_env(env->ifname, "CNI_IFNAME", xm_cni_valid_ifname, e))
		return -1;
	if (c->prev_err.code)
		pr_warn("%s: DEL goes on without prevResult's addresses: %s", env->container_id,
			c->prev_err.msg);
	if (c->own_err.code)
		pr_warn("%s: DEL goes on with the defaults for: %s", env->container_id,
			c->own_err.msg);
	lock = xm_cni_lock(c->state_dir);
	if (lock < 0) {
		pr_warn("%s: state dir %s: %s (fail-open: endpoints removed from prevResult only, "
			"the record stays for GC)", env->container_id, c->state_dir,
			strerror(-lock));
		err = del_without_record(env, c);
		goto out;
	}
	err = xm_cni_state_load(c->state_dir, c->name, env->container_id, env->ifname, &s);
	if (!err) {
		err = undo(c->state_dir, &s);
	} else {
		if (err != -ENOENT)
			pr_warn("%s: unreadable record (%s): cleaning up from prevResult",
				env->container_id, strerror(-err));
		/* No record: ADD never got as far as a map entry, unless the record was lost. */
		err = del_without_record(env, c);
		if (!err)
			err = xm_cni_state_remove(c->state_dir, c->name, env->container_id,
						  env->ifname);
	}
	close(lock);
out:
	if (err)
		pr_warn("%s: not fully removed from xmesh: %s (fail-open: the pod's teardown goes "
			"on)", env->container_id, strerror(-err));
	return 0;
}

static int check_fail(struct xm_cni_err *e, const char *details, const char *fmt, const char *a)
{
	char msg[256];

	snprintf(msg, sizeof(msg), fmt, a);
	xm_cni_err_set(e, XM_CNI_E_CHECK, details, "%s", msg);
	return -1;
}

int xm_cni_check(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e)
{
	struct xm_cni_ip ips[XM_CNI_MAX_RESULT_IPS];
	char buf[XM_ADDR_STRLEN], details[256];
	struct xm_cni_state s;
	struct xm_endpoint ep;
	unsigned int n_ips;
	__u64 cookie;
	int err, fd;

	if (c->version < XM_CNI_V(0, 4, 0)) {
		xm_cni_err_set(e, XM_CNI_E_VERSION, NULL, "CHECK needs cniVersion 0.4.0 or later "
			       "(config has %s)", c->cni_version);
		return -1;
	}
	if (need_env(env->container_id, "CNI_CONTAINERID", xm_cni_valid_container_id, e) ||
	    need_env(env->ifname, "CNI_IFNAME", xm_cni_valid_ifname, e) ||
	    check_netns(env->netns, e) || need_prev_result(c, "CHECK", e) || own_fields_refused(c, e))
		return -1;
	err = xm_cni_state_load(c->state_dir, c->name, env->container_id, env->ifname, &s);
	if (err)
		return check_fail(e, strerror(-err), "xmesh has no record of %s", env->container_id);
	err = xm_netns_cookie_of_path(env->netns, &cookie);
	if (err || cookie != s.netns_cookie)
		return check_fail(e, env->netns, "the netns of %s is not the one ADD saw",
				  env->container_id);
	/* Every address of prevResult for this interface that ADD found on it is registered. */
	n_ips = prev_ips(c, env->ifname, ips, sizeof(ips) / sizeof(ips[0]));
	for (unsigned int i = 0; i < n_ips; i++) {
		bool recorded = false;

		for (unsigned int j = 0; j < s.n_ips && !recorded; j++)
			recorded = ip_equal(&ips[i], &s.ips[j]);
		xm_addr_str(ips[i].family, &ips[i].addr, buf, sizeof(buf));
		if (!recorded)
			pr_info("%s: %s was not on %s at ADD: not checked", env->container_id, buf,
				env->ifname);
	}
	fd = xm_map_open(c->pin_root, "xm_endpoints");
	if (fd < 0) {
		/* Fail-open: without a datapath there is nothing to verify yet. */
		pr_info("%s: no xmesh datapath at %s: the agent registers the pod when it starts",
			env->container_id, c->pin_root);
		return 0;
	}
	close(fd);
	for (unsigned int i = 0; i < s.n_ips; i++) {
		xm_addr_str(s.ips[i].family, &s.ips[i].addr, buf, sizeof(buf));
		err = xm_endpoint_get(c->pin_root, s.ips[i].family, &s.ips[i].addr, &ep);
		if (err)
			return check_fail(e, strerror(-err), "endpoint %s is not registered", buf);
		if (!xm_cni_owner_match(&ep, env->container_id) || ep.netns_cookie != cookie ||
		    ep.host_ifindex != s.host_ifindex) {
			snprintf(details, sizeof(details), "owner '%.*s', netns cookie %llu, host "
				 "ifindex %u", (int)sizeof(ep.owner), ep.owner,
				 (unsigned long long)ep.netns_cookie, ep.host_ifindex);
			return check_fail(e, details, "endpoint %s is registered to something else",
					  buf);
		}
	}
	err = xm_cni_pod_check(&s);
	if (err)
		return check_fail(e, strerror(-err), "per-pod programs of %s are not in place",
				  env->container_id);
	return 0;
}

static int need_version(const struct xm_cni_conf *c, const char *cmd, struct xm_cni_err *e)
{
	if (c->version >= XM_CNI_V(1, 1, 0))
		return 0;
	xm_cni_err_set(e, XM_CNI_E_VERSION, NULL, "%s needs cniVersion 1.1.0 (config has %s)", cmd,
		       c->cni_version);
	return -1;
}

struct gc_ctx {
	const struct xm_cni_conf *c;
	int removed, errors;
	/* Owners that keep their endpoints: valid attachments, then live records. */
	size_t n_keep, cap_keep;
	char (*keep)[XM_CNI_NAME_MAX];
};

static bool attachment_valid(const struct xm_cni_conf *c, const struct xm_cni_state *s)
{
	for (size_t i = 0; i < c->n_valid; i++)
		if (!strcmp(c->valid[i].container_id, s->container_id) &&
		    (!c->valid[i].ifname[0] || !strcmp(c->valid[i].ifname, s->ifname)))
			return true;
	return false;
}

static int keep_owner(struct gc_ctx *g, const char *id)
{
	if (g->n_keep == g->cap_keep) {
		size_t cap = g->cap_keep ? g->cap_keep * 2 : 64;
		void *p = realloc(g->keep, cap * sizeof(*g->keep));

		if (!p)
			return -ENOMEM;
		g->keep = p;
		g->cap_keep = cap;
	}
	snprintf(g->keep[g->n_keep++], XM_CNI_NAME_MAX, "%s", id);
	return 0;
}

static int gc_record(const char *path, const struct xm_cni_state *s, void *arg)
{
	struct gc_ctx *g = arg;
	int err;

	if (!s) {
		/* Nothing can act on it (no ids, no addresses); its endpoints are orphans below. */
		if (unlink(path) == 0)
			pr_warn("GC: %s was not a readable record: removed", path);
		return 0;
	}
	if (attachment_valid(g->c, s))
		return 0;
	err = undo(g->c->state_dir, s);
	if (err) {
		pr_warn("GC: %s: %s", s->container_id, strerror(-err));
		g->errors++;
	} else {
		g->removed++;
	}
	return 0;
}

/* Records of any network that stay: their owners keep their endpoints. */
static int gc_keep_record(const char *path, const struct xm_cni_state *s, void *arg)
{
	struct gc_ctx *g = arg;

	return s && !strcmp(s->pin_root, g->c->pin_root) ? keep_owner(g, s->container_id) : 0;
}

struct orphan_scan {
	struct gc_ctx *g;
	struct xm_endpoint_key keys[256];
	unsigned int n;
};

static int collect_orphans(const struct xm_endpoint_key *k, const struct xm_endpoint *ep,
			   void *arg)
{
	struct orphan_scan *o = arg;

	if (!(ep->flags & XM_EP_F_CNI))
		return 0; /* `xmeshctl endpoint add`: not the plugin's */
	for (size_t i = 0; i < o->g->n_keep; i++)
		if (xm_cni_owner_match(ep, o->g->keep[i]))
			return 0;
	o->keys[o->n++] = *k;
	return o->n == sizeof(o->keys) / sizeof(o->keys[0]);
}

int xm_cni_gc(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e)
{
	struct gc_ctx g = { .c = c };
	struct orphan_scan *o;
	int lock, err = 0, more, orphans = 0;

	if (need_version(c, "GC", e))
		return -1;
	if (!c->has_valid) {
		xm_cni_err_set(e, XM_CNI_E_CONFIG, NULL, "GC needs cni.dev/valid-attachments");
		return -1;
	}
	lock = xm_cni_lock(c->state_dir);
	if (lock < 0) {
		xm_cni_err_set(e, XM_CNI_E_IO, strerror(-lock), "cannot lock state dir %s",
			       c->state_dir);
		return -1;
	}
	err = xm_cni_state_foreach(c->state_dir, c->name, gc_record, &g);
	/*
	 * Endpoints the plugin registered whose owner has neither a valid
	 * attachment nor a record left (a record lost with its state dir):
	 * nobody will ever DEL them.
	 */
	for (size_t i = 0; !err && i < c->n_valid; i++)
		err = keep_owner(&g, c->valid[i].container_id);
	if (!err)
		err = xm_cni_state_foreach(c->state_dir, NULL, gc_keep_record, &g);
	o = err ? NULL : calloc(1, sizeof(*o));
	if (o) {
		o->g = &g;
		do {
			o->n = 0;
			more = xm_endpoint_foreach(c->pin_root, collect_orphans, o);
			for (unsigned int i = 0; i < o->n; i++)
				if (!xm_endpoint_del(c->pin_root, o->keys[i].family,
						     &o->keys[i].addr))
					orphans++;
		} while (more == 1);
		free(o);
	} else if (!err) {
		err = -ENOMEM;
	}
	close(lock);
	free(g.keep);
	pr_info("GC %s: removed %d attachment%s and %d orphaned endpoint%s", c->name, g.removed,
		g.removed == 1 ? "" : "s", orphans, orphans == 1 ? "" : "s");
	if (err || g.errors) {
		xm_cni_err_set(e, XM_CNI_E_IO, err ? strerror(-err) : "see the log",
			       "GC could not remove everything");
		return -1;
	}
	return 0;
}

/*
 * STATUS: ADD never refuses a pod (fail-open), so the plugin is always ready.
 * Whether the datapath is there only changes whether pods are accelerated.
 */
int xm_cni_status(const struct xm_cni_env *env, struct xm_cni_conf *c, struct xm_cni_err *e)
{
	int fd;

	if (need_version(c, "STATUS", e))
		return -1;
	fd = xm_map_open(c->pin_root, "xm_endpoints");
	if (fd < 0)
		pr_info("STATUS: no xmesh datapath at %s: pods get plain networking until the "
			"agent starts", c->pin_root);
	else
		close(fd);
	return 0;
}
