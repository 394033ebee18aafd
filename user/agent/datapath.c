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
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "version.h"
#include "agent.h"
#include "log.h"
#include "pin.h"

static const struct xm_dp_module modules[] = {
	{ "redirect", dp_redirect_load, dp_redirect_close },
	{ "lb", dp_lb_load, dp_lb_close },
	{ "overlay", dp_overlay_load, dp_overlay_close },
};

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
	}
	return 0;
}

/* Take over a pinned link: put prog into it. -ENOENT if nothing is pinned there. */
static int link_adopt(const char *path, struct bpf_program *prog, struct bpf_link_info *info)
{
	__u32 len = sizeof(*info);
	int fd, err = 0;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		err = -errno;
	else if (bpf_link_update(fd, bpf_program__fd(prog), NULL))
		err = -errno;
	close(fd);
	return err;
}

int xm_dp_link_cgroup(struct xm_agent *a, const char *link_name, struct bpf_program *prog)
{
	struct bpf_link_info info;
	struct bpf_link *link;
	char path[PATH_MAX];
	int err;

	err = xm_pin_path(path, sizeof(path), a->pin_root, XM_PIN_LINKS, link_name);
	if (err)
		return err;
	err = link_adopt(path, prog, &info);
	if (!err) {
		if (info.cgroup.cgroup_id != a->cgroup_id) {
			pr_err("%s is attached to cgroup id %llu, not to %s (id %llu): run "
			       "'xmesh-agent uninstall' first or use the same --cgroup",
			       path, (unsigned long long)info.cgroup.cgroup_id, a->cgroup_path,
			       (unsigned long long)a->cgroup_id);
			return -EEXIST;
		}
		pr_info("adopted link %s (program %s updated in place)", link_name,
			bpf_program__name(prog));
		return 0;
	}
	if (err != -ENOENT)
		pr_warn("cannot adopt pinned link %s: %s; attaching anew", path, strerror(-err));
	unlink(path);

	link = bpf_program__attach_cgroup(prog, a->cgroup_fd);
	err = libbpf_get_error(link);
	if (err) {
		pr_err("attach %s to %s: %s", bpf_program__name(prog), a->cgroup_path,
		       strerror(-err));
		return err;
	}
	err = bpf_link__pin(link, path);
	if (err)
		pr_err("pin %s: %s", path, strerror(-err));
	else
		pr_info("attached %s to %s", link_name, a->cgroup_path);
	bpf_link__destroy(link); /* drops our fd; the pin keeps the link */
	return err;
}

int xm_dp_link_map(struct xm_agent *a, const char *link_name, struct bpf_program *prog,
		   int map_fd, int attach_type)
{
	struct bpf_link_info info;
	char path[PATH_MAX];
	int err, fd;

	err = xm_pin_path(path, sizeof(path), a->pin_root, XM_PIN_LINKS, link_name);
	if (err)
		return err;
	err = link_adopt(path, prog, &info);
	if (!err) {
		pr_info("adopted link %s (program %s updated in place)", link_name,
			bpf_program__name(prog));
		return 0;
	}
	unlink(path);
	err = 0;
	fd = bpf_link_create(bpf_program__fd(prog), map_fd, attach_type, NULL);
	if (fd < 0) {
		/*
		 * Kernels before 6.10 have no sockmap links: attach to the map
		 * directly. The attachment lives as long as the pinned map, and
		 * attaching again replaces the program.
		 */
		if (bpf_prog_attach(bpf_program__fd(prog), map_fd, attach_type, 0)) {
			err = -errno;
			pr_err("attach %s to its map: %s", bpf_program__name(prog), strerror(-err));
			return err;
		}
		pr_info("attached %s to its map (no link support in this kernel)", link_name);
		return 0;
	}
	if (bpf_obj_pin(fd, path))
		err = -errno;
	close(fd);
	if (err)
		pr_err("pin %s: %s", path, strerror(-err));
	else
		pr_info("attached %s", link_name);
	return err;
}

static int meta_check_and_write(const char *pin_root)
{
	struct xm_meta meta = {};
	int err;

	err = xm_meta_read(pin_root, &meta);
	if (err == -EPROTO || (!err && meta.magic == XM_META_MAGIC &&
			       meta.abi_version != XM_ABI_VERSION)) {
		pr_err("pin root %s holds an xmesh datapath of another version (ABI %u, agent %.32s); "
		       "this agent speaks ABI %u: run 'xmesh-agent uninstall' (it drains a datapath of "
		       "any ABI) or choose another --pin-root",
		       pin_root, err ? 0 : meta.abi_version, err ? "?" : meta.agent_version,
		       XM_ABI_VERSION);
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

static int meta_write(const char *pin_root)
{
	struct xm_meta meta = { .magic = XM_META_MAGIC, .abi_version = XM_ABI_VERSION };
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
	if (err)
		return err;
	for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
		pr_debug("loading datapath module %s", modules[i].name);
		err = modules[i].load(a);
		if (err) {
			pr_err("datapath module %s failed to load: %s", modules[i].name,
			       strerror(-err));
			return err;
		}
	}
	return meta_write(a->pin_root);
}

void xm_datapath_close(struct xm_agent *a)
{
	for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++)
		modules[i].close(a);
}
