// SPDX-License-Identifier: MIT
/*
 * Loading the datapath so that it survives the agent: every map and link is
 * pinned under the pin root. A later agent reuses the pinned maps (libbpf
 * pin_path) and swaps programs inside the pinned links (bpf_link_update), so
 * an upgrade or restart never detaches anything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "version.h"
#include "agent.h"
#include "attach.h"
#include "kfeatures.h"
#include "log.h"
#include "pin.h"
#include "rebalance.h"

static const struct xm_dp_module modules[] = {
	{ "redirect", dp_redirect_load, dp_redirect_close, XM_KF_SOCKOPS_NETNS_COOKIE },
	{ "lb", dp_lb_load, dp_lb_close, -1 },
	{ "overlay", dp_overlay_load, dp_overlay_close, -1 },
};

/* Maps whose size is a capacity (entries come and go), not a key space. */
static bool size_is_capacity(enum bpf_map_type type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_SOCKHASH:
		return true;
	default:
		return false;
	}
}

/*
 * libbpf reuses a pinned map only if it matches the object's definition in
 * every field, max_entries included. A size set by a flag (--lb-udp-max,
 * --overlay-max-flows) may differ from the one the pinned map was made with,
 * by an earlier agent started with another value or none: refusing would
 * leave the datapath running without an agent. A hash map keeps its entries
 * and its size (only a new map can have another); an array's size is its key
 * space, so a different one is another layout and stays refused.
 */
static void adopt_pinned_size(struct bpf_map *map, const char *path)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return; /* nothing pinned yet: the map is made with the asked size */
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == bpf_map__type(map) &&
	    size_is_capacity(info.type) && info.key_size == bpf_map__key_size(map) &&
	    info.value_size == bpf_map__value_size(map) &&
	    info.max_entries != bpf_map__max_entries(map)) {
		pr_warn("pinned map %s keeps its %u entries (this agent asked for %u): a new "
			"size takes effect after 'xmesh-agent uninstall'",
			bpf_map__name(map), info.max_entries, bpf_map__max_entries(map));
		bpf_map__set_max_entries(map, info.max_entries);
	}
	close(fd);
}

int xm_dp_pin_maps(struct bpf_object *obj, const char *pin_root)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int err;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map))
			continue; /* .rodata/.bss belong to one object */
		err = xm_pin_path(path, sizeof(path), pin_root, XM_PIN_MAPS, bpf_map__name(map));
		if (!err)
			err = bpf_map__set_pin_path(map, path);
		if (err)
			return err;
		adopt_pinned_size(map, path);
	}
	return 0;
}

/* A pinned cgroup link is ours only on our cgroup: another one is an operator's mistake. */
static int cgroup_check(const struct bpf_link_info *info, const void *arg)
{
	const struct xm_agent *a = arg;

	if (info->type == BPF_LINK_TYPE_CGROUP && info->cgroup.cgroup_id != a->cgroup_id) {
		pr_err("a pinned link is attached to cgroup id %llu, not to %s (id %llu): run "
		       "'xmesh-agent uninstall' first or use the same --cgroup",
		       (unsigned long long)info->cgroup.cgroup_id, a->cgroup_path,
		       (unsigned long long)a->cgroup_id);
		return -EEXIST;
	}
	return info->type == BPF_LINK_TYPE_CGROUP ? 0 : 1;
}

static int link_report(const char *link_name, struct bpf_program *prog, const char *where,
		       int err)
{
	if (err == 1)
		pr_info("adopted link %s (program %s updated in place)", link_name,
			bpf_program__name(prog));
	else if (!err)
		pr_info("attached %s%s%s", link_name, where ? " to " : "", where ?: "");
	else if (err != -EEXIST)
		pr_err("attach %s: %s", link_name, strerror(-err));
	return err < 0 ? err : 0;
}

int xm_dp_link_cgroup(struct xm_agent *a, const char *link_name, struct bpf_program *prog)
{
	char path[PATH_MAX];
	int err;

	err = xm_pin_path(path, sizeof(path), a->pin_root, XM_PIN_LINKS, link_name);
	if (!err)
		err = xm_link_adopt_or_create(path, bpf_program__fd(prog), a->cgroup_fd,
					      bpf_program__expected_attach_type(prog),
					      cgroup_check, a);
	return link_report(link_name, prog, a->cgroup_path, err);
}

int xm_dp_link_map(struct xm_agent *a, const char *link_name, struct bpf_program *prog,
		   int map_fd, int attach_type)
{
	char path[PATH_MAX];
	int err;

	err = xm_pin_path(path, sizeof(path), a->pin_root, XM_PIN_LINKS, link_name);
	if (err)
		return err;
	if (xm_kf_has(a->kfeatures, XM_KF_SOCKMAP_LINK))
		return link_report(link_name, prog, NULL,
				   xm_link_adopt_or_create(path, bpf_program__fd(prog), map_fd,
							   attach_type, NULL, NULL));
	/*
	 * No sockmap links: attach to the map directly. The attachment lives
	 * as long as the pinned map, and attaching again replaces the program.
	 */
	unlink(path);
	if (bpf_prog_attach(bpf_program__fd(prog), map_fd, attach_type, 0)) {
		err = -errno;
		pr_err("attach %s to its map: %s", bpf_program__name(prog), strerror(-err));
		return err;
	}
	pr_info("attached %s to its map (no link)", link_name);
	return 0;
}

int xm_dp_link_tc(struct xm_agent *a, const char *link_name, struct bpf_program *prog,
		  int ifindex, bool ingress)
{
	int err = xm_tc_attach(a->pin_root, link_name, bpf_program__fd(prog), ifindex, ingress,
			       xm_kf_has(a->kfeatures, XM_KF_TCX));

	return link_report(link_name, prog, NULL, err);
}

/* One line per feature the kernel lacks: what xmesh does instead. */
static int kfeatures_detect(struct xm_agent *a)
{
	int err = xm_kfeatures_probe(&a->kfeatures);
	long destroy_ms, walk_ms;

	if (!err) /* a bad test knob: refuse to start */
		err = xm_rebalance_test_env(&destroy_ms, &walk_ms);
	if (err)
		return err;
	for (int f = 0; f < XM_KF_COUNT; f++)
		if (!xm_kf_has(a->kfeatures, f))
			pr_info("kernel: no %s (Linux >= %s): %s", xm_kfeatures[f].name,
				xm_kfeatures[f].since, xm_kfeatures[f].without);
	return 0;
}

static int meta_check_and_write(const char *pin_root)
{
	struct xm_meta meta = {};
	int err;

	err = xm_meta_read(pin_root, &meta);
	if (err == -EPROTO || (!err && meta.magic == XM_META_MAGIC &&
			       meta.abi_version != XM_ABI_VERSION)) {
		pr_err("pin root %s holds an xmesh datapath of another version (ABI %u, agent %.32s); "
		       "this agent speaks ABI %u. To upgrade, run 'xmesh-agent uninstall --pin-root "
		       "%s --cgroup CGROUP' with this agent (it drains a datapath of any ABI: open "
		       "connections keep working until they close), then start this agent again; or "
		       "choose another --pin-root (docs/install.md, Upgrade)",
		       pin_root, err ? 0 : meta.abi_version, err ? "?" : meta.agent_version,
		       XM_ABI_VERSION, pin_root);
		return -EPROTO;
	}
	if (!err && meta.magic && meta.magic != XM_META_MAGIC) {
		pr_err("pin root %s is in use by something else than xmesh", pin_root);
		return -EEXIST;
	}
	if (err && err != -ENOENT)
		return err;
	return 0;
}

static int meta_write(const char *pin_root, __u32 kfeatures)
{
	struct xm_meta meta = { .magic = XM_META_MAGIC, .abi_version = XM_ABI_VERSION,
				.kfeatures = kfeatures };
	__u32 key = 0;
	int fd, err = 0;

	snprintf(meta.agent_version, sizeof(meta.agent_version), "%s", XM_VERSION);
	fd = xm_map_open(pin_root, "xm_meta");
	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(fd, &key, &meta, BPF_ANY))
		err = -errno;
	close(fd);
	return err;
}

int xm_datapath_load(struct xm_agent *a)
{
	int err;

	err = meta_check_and_write(a->pin_root);
	if (!err)
		err = kfeatures_detect(a);
	if (err)
		return err;
	for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
		int need = modules[i].needs;

		if (need >= 0 && !xm_kf_has(a->kfeatures, need)) {
			pr_err("datapath module %s is off: it needs %s (Linux >= %s); the rest runs",
			       modules[i].name, xm_kfeatures[need].name, xm_kfeatures[need].since);
			continue;
		}
		pr_debug("loading datapath module %s", modules[i].name);
		err = modules[i].load(a);
		if (err) {
			pr_err("datapath module %s failed to load: %s", modules[i].name,
			       strerror(-err));
			return err;
		}
	}
	return meta_write(a->pin_root, a->kfeatures);
}

void xm_datapath_close(struct xm_agent *a)
{
	for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++)
		modules[i].close(a);
}
