// SPDX-License-Identifier: MIT
/* Per-attachment records of xmesh-cni and the endpoint registration both the plugin and agent do. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <net/if.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <bpf/bpf.h>
#include <xmesh/redirect.h>
#include "addr.h"
#include "cni_state.h"
#include "endpoint.h"
#include "log.h"
#include "overlay.h"
#include "pin.h"
#include "sys.h"

#define STATE_FORMAT 1

int xm_cni_state_path(char *buf, size_t len, const char *dir, const char *network,
		      const char *container_id, const char *ifname)
{
	int n;

	if (!xm_cni_valid_network_name(network) || !xm_cni_valid_container_id(container_id) ||
	    !xm_cni_valid_ifname(ifname))
		return -EINVAL;
	n = snprintf(buf, len, "%s/%s/%s:%s.json", dir, network, container_id, ifname);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void mac_str(const __u8 *mac, char *buf)
{
	sprintf(buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		mac[5]);
}

static int mac_parse(const char *s, __u8 *mac)
{
	unsigned int b[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = b[i];
	return 0;
}

static json_t *state_to_json(const struct xm_cni_state *s)
{
	char mac_pod[18], mac_host[18], ip[XM_ADDR_STRLEN + 8];
	json_t *ips = json_array(), *j;

	for (unsigned int i = 0; i < s->n_ips; i++) {
		xm_addr_str(s->ips[i].family, &s->ips[i].addr, ip, XM_ADDR_STRLEN);
		snprintf(ip + strlen(ip), 8, "/%u", s->ips[i].prefix_len);
		json_array_append_new(ips, json_string(ip));
	}
	mac_str(s->pod_mac, mac_pod);
	mac_str(s->host_mac, mac_host);
	j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:s, s:s, s:o}",
		      "format", STATE_FORMAT, "network", s->network, "containerID",
		      s->container_id, "ifname", s->ifname, "netns", s->netns, "pinRoot",
		      s->pin_root, "netnsCookie", (json_int_t)s->netns_cookie, "hostNetnsCookie",
		      (json_int_t)s->host_netns_cookie, "podIfindex", (json_int_t)s->pod_ifindex,
		      "podMac", mac_pod, "hostIfindex", (json_int_t)s->host_ifindex, "hostIfname",
		      s->host_ifname, "hostMac", mac_host, "ips", ips);
	if (j && s->pod[0])
		json_object_set_new(j, "pod", json_string(s->pod));
	if (j && (s->optout.redirect_off || s->optout.n_ports)) {
		json_t *ports = json_array();

		for (unsigned int i = 0; i < s->optout.n_ports; i++)
			json_array_append_new(ports, json_integer(s->optout.ports[i]));
		json_object_set_new(j, "redirectOptout",
				    json_pack("{s:b, s:o}", "off", s->optout.redirect_off,
					      "skipPorts", ports));
	}
	return j;
}

int xm_cni_state_write(const char *dir, const struct xm_cni_state *s)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], sub[PATH_MAX];
	json_t *j;
	int err, fd;

	err = xm_cni_state_path(path, sizeof(path), dir, s->network, s->container_id, s->ifname);
	if (err)
		return err;
	if (snprintf(sub, sizeof(sub), "%s/%s", dir, s->network) >= (int)sizeof(sub))
		return -ENAMETOOLONG;
	err = xm_mkdir_p(sub, 0700);
	if (err)
		return err;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	j = state_to_json(s);
	if (!j)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		json_decref(j);
		return -errno;
	}
	err = json_dumpfd(j, fd, JSON_INDENT(1)) ? -EIO : 0;
	json_decref(j);
	/*
	 * No fsync: a record only matters while the node is up (its pods die
	 * with it), and rename() is atomic for every process that reads it. A
	 * record torn by a power loss is unreadable; GC removes those.
	 */
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static int copy_str(char *dst, size_t len, json_t *v)
{
	const char *s = json_string_value(v);

	if (!s || strlen(s) >= len)
		return -EINVAL;
	strcpy(dst, s);
	return 0;
}

static int state_from_json(json_t *j, struct xm_cni_state *s)
{
	json_t *ips, *v;
	size_t i;

	memset(s, 0, sizeof(*s));
	if (!json_is_object(j) || json_integer_value(json_object_get(j, "format")) != STATE_FORMAT)
		return -EINVAL;
	if (copy_str(s->network, sizeof(s->network), json_object_get(j, "network")) ||
	    copy_str(s->container_id, sizeof(s->container_id), json_object_get(j, "containerID")) ||
	    copy_str(s->ifname, sizeof(s->ifname), json_object_get(j, "ifname")) ||
	    copy_str(s->netns, sizeof(s->netns), json_object_get(j, "netns")) ||
	    copy_str(s->pin_root, sizeof(s->pin_root), json_object_get(j, "pinRoot")) ||
	    copy_str(s->host_ifname, sizeof(s->host_ifname), json_object_get(j, "hostIfname")))
		return -EINVAL;
	if (json_object_get(j, "pod") &&
	    copy_str(s->pod, sizeof(s->pod), json_object_get(j, "pod")))
		return -EINVAL;
	/* Records written before opt-outs existed have none. */
	v = json_object_get(j, "redirectOptout");
	if (v) {
		json_t *ports = json_object_get(v, "skipPorts"), *p;

		if (!json_is_boolean(json_object_get(v, "off")) || !json_is_array(ports) ||
		    json_array_size(ports) > XM_CNI_MAX_SKIP_PORTS)
			return -EINVAL;
		s->optout.redirect_off = json_is_true(json_object_get(v, "off"));
		json_array_foreach(ports, i, p) {
			json_int_t port = json_integer_value(p);

			if (!json_is_integer(p) || port < 1 || port > 65535)
				return -EINVAL;
			s->optout.ports[s->optout.n_ports++] = port;
		}
	}
	s->netns_cookie = json_integer_value(json_object_get(j, "netnsCookie"));
	s->host_netns_cookie = json_integer_value(json_object_get(j, "hostNetnsCookie"));
	s->pod_ifindex = json_integer_value(json_object_get(j, "podIfindex"));
	s->host_ifindex = json_integer_value(json_object_get(j, "hostIfindex"));
	v = json_object_get(j, "podMac");
	if (!json_is_string(v) || mac_parse(json_string_value(v), s->pod_mac))
		return -EINVAL;
	v = json_object_get(j, "hostMac");
	if (!json_is_string(v) || mac_parse(json_string_value(v), s->host_mac))
		return -EINVAL;
	ips = json_object_get(j, "ips");
	if (!json_is_array(ips) || json_array_size(ips) > XM_CNI_MAX_IPS)
		return -EINVAL;
	json_array_foreach(ips, i, v) {
		char buf[XM_ADDR_STRLEN + 8], *slash;
		struct xm_cni_ip *ip = &s->ips[s->n_ips];

		if (!json_is_string(v) || copy_str(buf, sizeof(buf), v))
			return -EINVAL;
		slash = strchr(buf, '/');
		if (!slash)
			return -EINVAL;
		*slash = '\0';
		ip->prefix_len = atoi(slash + 1);
		if (xm_addr_parse(buf, &ip->family, &ip->addr))
			return -EINVAL;
		s->n_ips++;
	}
	return 0;
}

int xm_cni_state_read(const char *path, struct xm_cni_state *s)
{
	json_error_t jerr;
	json_t *j;
	int err;

	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return access(path, F_OK) ? -ENOENT : -EINVAL;
	err = state_from_json(j, s);
	json_decref(j);
	return err;
}

int xm_cni_state_load(const char *dir, const char *network, const char *container_id,
		      const char *ifname, struct xm_cni_state *s)
{
	char path[PATH_MAX];
	int err;

	err = xm_cni_state_path(path, sizeof(path), dir, network, container_id, ifname);
	return err ?: xm_cni_state_read(path, s);
}

int xm_cni_state_remove(const char *dir, const char *network, const char *container_id,
			const char *ifname)
{
	char path[PATH_MAX];
	int err;

	err = xm_cni_state_path(path, sizeof(path), dir, network, container_id, ifname);
	if (err)
		return err;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && !strcmp(s + n - m, suffix);
}

static int foreach_in(const char *netdir,
		      int (*fn)(const char *path, const struct xm_cni_state *s, void *arg),
		      void *arg)
{
	struct xm_cni_state *s;
	struct dirent *de;
	int ret = 0;
	DIR *d;

	d = opendir(netdir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	s = malloc(sizeof(*s));
	if (!s) {
		closedir(d);
		return -ENOMEM;
	}
	while (!ret && (de = readdir(d))) {
		char path[PATH_MAX];

		if (!has_suffix(de->d_name, ".json") || !strchr(de->d_name, ':'))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", netdir, de->d_name) >= (int)sizeof(path))
			continue;
		if (xm_cni_state_read(path, s))
			ret = fn(path, NULL, arg);
		else
			ret = fn(path, s, arg);
	}
	free(s);
	closedir(d);
	return ret;
}

int xm_cni_state_foreach(const char *dir, const char *network,
			 int (*fn)(const char *path, const struct xm_cni_state *s, void *arg),
			 void *arg)
{
	char netdir[PATH_MAX];
	struct dirent *de;
	int ret = 0;
	DIR *d;

	if (network) {
		if (snprintf(netdir, sizeof(netdir), "%s/%s", dir, network) >= (int)sizeof(netdir))
			return -ENAMETOOLONG;
		return foreach_in(netdir, fn, arg);
	}
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!ret && (de = readdir(d))) {
		if (de->d_type != DT_DIR || !xm_cni_valid_network_name(de->d_name))
			continue;
		if (snprintf(netdir, sizeof(netdir), "%s/%s", dir, de->d_name) >= (int)sizeof(netdir))
			continue;
		ret = foreach_in(netdir, fn, arg);
	}
	closedir(d);
	return ret;
}

int xm_cni_lock(const char *dir)
{
	char path[PATH_MAX];
	int fd, err;

	err = xm_mkdir_p(dir, 0700);
	if (err)
		return err;
	if (snprintf(path, sizeof(path), "%s/lock", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX)) {
		if (errno != EINTR) {
			err = -errno;
			close(fd);
			return err;
		}
	}
	return fd;
}

/*
 * The owner field holds the container id, cut to 63 characters so it stays
 * NUL-terminated (runtimes use 64 hex digits; 63 of them are as unique).
 */
bool xm_cni_owner_match(const struct xm_endpoint *ep, const char *container_id)
{
	return (ep->flags & XM_EP_F_CNI) &&
	       strnlen(ep->owner, sizeof(ep->owner)) < sizeof(ep->owner) &&
	       !strncmp(ep->owner, container_id, sizeof(ep->owner) - 1);
}

void xm_cni_endpoint_fill(const struct xm_cni_state *s, struct xm_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->netns_cookie = s->netns_cookie;
	ep->host_ifindex = s->host_ifindex;
	ep->pod_ifindex = s->pod_ifindex;
	memcpy(ep->pod_mac, s->pod_mac, 6);
	memcpy(ep->host_mac, s->host_mac, 6);
	ep->flags = XM_EP_F_CNI;
	snprintf(ep->owner, sizeof(ep->owner), "%.*s", (int)sizeof(ep->owner) - 1,
		 s->container_id);
}

static int skip_ports_parse(const char *s, struct xm_cni_optout *o, char *why, size_t len)
{
	const char *p = s;

	for (;;) {
		unsigned int i;
		char *end;
		long port;

		while (*p == ' ')
			p++;
		if (!*p && p == s)
			return 0; /* "" lists no port */
		port = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : 0;
		if (port < 1 || port > 65535)
			goto bad;
		for (i = 0; i < o->n_ports && o->ports[i] != port; i++)
			;
		if (i == o->n_ports) {
			if (o->n_ports == XM_CNI_MAX_SKIP_PORTS) {
				snprintf(why, len, "annotation %s lists more than %d ports",
					 XM_CNI_ANNOT_SKIP_PORTS, XM_CNI_MAX_SKIP_PORTS);
				return -1;
			}
			o->ports[o->n_ports++] = port;
		}
		for (p = end; *p == ' '; p++)
			;
		if (!*p)
			return 0;
		if (*p++ != ',')
			goto bad;
	}
bad:
	snprintf(why, len, "annotation %s: '%.64s' is not a list of TCP ports: give ports "
		 "1-65535 separated by commas, e.g. \"5432,6379\"", XM_CNI_ANNOT_SKIP_PORTS, s);
	return -1;
}

int xm_cni_optout_parse(json_t *annotations, struct xm_cni_optout *o, char *why, size_t len)
{
	const char *off, *ports;
	json_t *v;

	memset(o, 0, sizeof(*o));
	if (!annotations)
		return 0;
	if (!json_is_object(annotations)) {
		snprintf(why, len, "the runtime's pod annotations are not a JSON object");
		return -1;
	}
	v = json_object_get(annotations, XM_CNI_ANNOT_REDIRECT);
	if (v) {
		off = json_string_value(v);
		if (off && !strcmp(off, "off")) {
			o->redirect_off = true;
		} else if (!off || strcmp(off, "on")) {
			snprintf(why, len, "annotation %s: '%.64s' is neither \"off\" (this pod's "
				 "connections stay on TCP) nor \"on\" (the default)",
				 XM_CNI_ANNOT_REDIRECT, off ?: "(not a string)");
			return -1;
		}
	}
	v = json_object_get(annotations, XM_CNI_ANNOT_SKIP_PORTS);
	if (!v)
		return 0;
	ports = json_string_value(v);
	if (!ports) {
		snprintf(why, len, "annotation %s must be a string, e.g. \"5432,6379\"",
			 XM_CNI_ANNOT_SKIP_PORTS);
		return -1;
	}
	return skip_ports_parse(ports, o, why, len);
}

static int skip_put(int fd, __u64 netns_cookie, __u16 port, __u32 flags, __u64 how)
{
	struct xm_redirect_skip_key k = { .netns_cookie = netns_cookie, .port = port };

	if (!bpf_map_update_elem(fd, &k, &flags, how) || (how == BPF_NOEXIST && errno == EEXIST))
		return 0;
	return errno == E2BIG ? -ENOSPC : -errno;
}

/*
 * The pod's ports first, then the entry for its netns that makes the
 * datapath look at them: sockops never sees a half-written opt-out. An
 * existing whole-pod entry (`xmeshctl sock skip add netns`) is kept.
 */
static int optout_apply(const struct xm_cni_state *s)
{
	const struct xm_cni_optout *o = &s->optout;
	int fd, err = 0;

	if (!o->redirect_off && !o->n_ports)
		return 0;
	fd = xm_map_open(s->pin_root, "xm_redirect_skip");
	if (fd < 0)
		return fd;
	for (unsigned int i = 0; i < o->n_ports && !o->redirect_off && !err; i++)
		err = skip_put(fd, s->netns_cookie, o->ports[i], 0, BPF_ANY);
	if (!err)
		err = o->redirect_off ? skip_put(fd, s->netns_cookie, 0, 0, BPF_ANY)
				      : skip_put(fd, s->netns_cookie, 0, XM_REDIRECT_SKIP_F_PORTS,
						 BPF_NOEXIST);
	close(fd);
	return err;
}

int xm_cni_optout_remove(const struct xm_cni_state *s)
{
	const struct xm_cni_optout *o = &s->optout;
	struct xm_redirect_skip_key k = { .netns_cookie = s->netns_cookie };
	int fd, err = 0;

	if (!o->redirect_off && !o->n_ports)
		return 0;
	fd = xm_map_open(s->pin_root, "xm_redirect_skip");
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (bpf_map_delete_elem(fd, &k) && errno != ENOENT)
		err = -errno;
	for (unsigned int i = 0; i < o->n_ports; i++) {
		k.port = o->ports[i];
		if (bpf_map_delete_elem(fd, &k) && errno != ENOENT)
			err = -errno;
	}
	close(fd);
	return err;
}

int xm_cni_register(const struct xm_cni_state *s, enum xm_cni_put_mode mode)
{
	struct xm_endpoint ep, cur;
	char buf[XM_ADDR_STRLEN];
	int n = 0, err;

	/* Before any address: no connection of the pod may be redirected against its wish. */
	err = optout_apply(s);
	if (err)
		return err;
	xm_cni_endpoint_fill(s, &ep);
	for (unsigned int i = 0; i < s->n_ips; i++) {
		const struct xm_cni_ip *ip = &s->ips[i];

		xm_addr_str(ip->family, &ip->addr, buf, sizeof(buf));
		err = xm_endpoint_get(s->pin_root, ip->family, &ip->addr, &cur);
		if (err == 0 && !xm_cni_owner_match(&cur, s->container_id)) {
			if (mode == XM_CNI_PUT_KEEP) {
				pr_warn("%s is registered to '%.*s' now: not taking it for %s", buf,
					(int)sizeof(cur.owner), cur.owner, s->container_id);
				continue;
			}
			pr_warn("%s was registered to '%.*s': reassigned to %s", buf,
				(int)sizeof(cur.owner), cur.owner, s->container_id);
		} else if (err && err != -ENOENT) {
			return err; /* -ENOENT from the map open: no datapath */
		}
		err = xm_endpoint_put(s->pin_root, ip->family, &ip->addr, &ep);
		if (err)
			return err;
		pr_debug("endpoint %s -> netns cookie %llu, host ifindex %u (%s)", buf,
			 (unsigned long long)ep.netns_cookie, ep.host_ifindex, s->container_id);
		n++;
	}
	return n;
}

int xm_cni_unregister(const char *pin_root, const char *container_id,
		      const struct xm_cni_ip *ips, unsigned int n_ips)
{
	struct xm_endpoint cur;
	int n = 0, err;

	for (unsigned int i = 0; i < n_ips; i++) {
		err = xm_endpoint_get(pin_root, ips[i].family, &ips[i].addr, &cur);
		if (err)
			continue; /* gone already, or no datapath at all */
		if (!xm_cni_owner_match(&cur, container_id))
			continue; /* reused by another pod since: not ours to remove */
		err = xm_endpoint_del(pin_root, ips[i].family, &ips[i].addr);
		if (!err)
			n++;
		else if (err != -ENOENT)
			return err;
	}
	return n;
}

struct owner_scan {
	const char *container_id;
	struct xm_endpoint_key keys[64];
	unsigned int n;
};

static int collect_owned(const struct xm_endpoint_key *k, const struct xm_endpoint *ep, void *arg)
{
	struct owner_scan *o = arg;

	if (xm_cni_owner_match(ep, o->container_id))
		o->keys[o->n++] = *k;
	return o->n == sizeof(o->keys) / sizeof(o->keys[0]) ? 1 : 0;
}

int xm_cni_unregister_owner(const char *pin_root, const char *container_id)
{
	struct owner_scan o = { .container_id = container_id };
	int n = 0, err, more;

	/* Delete outside the walk: deleting while iterating can restart the walk. */
	do {
		o.n = 0;
		more = xm_endpoint_foreach(pin_root, collect_owned, &o);
		if (more < 0)
			return more == -ENOENT ? n : more;
		for (unsigned int i = 0; i < o.n; i++) {
			err = xm_endpoint_del(pin_root, o.keys[i].family, &o.keys[i].addr);
			if (!err)
				n++;
		}
	} while (more == 1);
	return n;
}

/*
 * Per-pod programs. The redirect datapath needs nothing per pod beyond the
 * endpoint entry: its programs sit on the cgroup. The overlay cache has tc
 * programs for the pod's host veth; they are attached and detached here, so
 * that the plugin (ADD, DEL, GC) and the agent (replaying records at start)
 * do the same thing.
 */

/* Is s's host veth still the device at its ifindex in this netns (not a reused index)? */
static bool host_veth_present(const struct xm_cni_state *s)
{
	char name[IF_NAMESIZE];
	__u64 self;

	if (!s->host_ifindex || xm_netns_cookie_self(&self) || self != s->host_netns_cookie)
		return false;
	return if_indextoname(s->host_ifindex, name) && !strcmp(name, s->host_ifname);
}

int xm_cni_pod_attach(const struct xm_cni_state *s)
{
	int err;

	if (!host_veth_present(s))
		return 0;
	err = xm_overlay_attach_pod(s->pin_root, s->host_ifindex, xm_overlay_tcx(s->pin_root));
	return err == -ENOENT ? 0 : err; /* no overlay cache loaded */
}

int xm_cni_pod_detach(const struct xm_cni_state *s)
{
	int err = 0;

	/*
	 * A veth that is gone took its tc links along; its index may be another
	 * pod's now. What was learned per address goes with the endpoint
	 * (xm_endpoint_del() forgets it).
	 */
	if (host_veth_present(s))
		err = xm_overlay_detach_pod(s->pin_root, s->host_ifindex);
	return err == -ENOENT || err > 0 ? 0 : err;
}

int xm_cni_pod_check(const struct xm_cni_state *s)
{
	char path[PATH_MAX], name[64];

	if (!host_veth_present(s))
		return 0;
	if (xm_pin_path(path, sizeof(path), s->pin_root, XM_PIN_PROGS, XM_OVL_PROG_POD_INGRESS) ||
	    access(path, F_OK))
		return 0; /* no overlay cache loaded */
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "ovl_pod_%u_%s", s->host_ifindex, i ? "out" : "in");
		if (xm_pin_path(path, sizeof(path), s->pin_root, XM_PIN_LINKS, name) ||
		    access(path, F_OK))
			return -ENOENT;
	}
	return 0;
}
