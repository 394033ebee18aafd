// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <mntent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include "pin.h"
#include "sys.h"

int xm_pin_path(char *buf, size_t len, const char *root, const char *sub, const char *name)
{
	int n = snprintf(buf, len, "%s/%s/%s", root, sub, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int xm_map_open(const char *root, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (xm_pin_path(path, sizeof(path), root, XM_PIN_MAPS, name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int dir_is_empty(const char *path)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(path);

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n == 0;
}

/*
 * The bpffs that xm_pin_root_prepare() mounted at root: found in
 * /proc/mounts by its source name, so that a bpffs someone else mounted
 * (e.g. /sys/fs/bpf itself) is never unmounted by uninstall.
 */
#define XM_BPFFS_SOURCE "xmesh-bpffs"

static bool is_own_mount(const char *root)
{
	bool found = false;
	struct mntent *m;
	FILE *f = setmntent("/proc/mounts", "r");

	if (!f)
		return false;
	while ((m = getmntent(f)))
		if (!strcmp(m->mnt_dir, root) && !strcmp(m->mnt_fsname, XM_BPFFS_SOURCE))
			found = true;
	endmntent(f);
	return found;
}

int xm_pin_root_prepare(const char *root)
{
	char sub[PATH_MAX];
	int err;

	if (root[0] != '/' || !strcmp(root, "/"))
		return -EINVAL;
	if (!is_bpffs(root)) {
		/*
		 * Mount bpffs at the pin root itself, never above it (that would
		 * hide the parent's files), and never over a directory that holds
		 * something (that would hide it).
		 */
		err = xm_mkdir_p(root, 0700);
		if (err)
			return err;
		if (!is_bpffs(root)) {
			err = dir_is_empty(root);
			if (err < 0)
				return err;
			if (!err)
				return -ENOTEMPTY;
			if (mount(XM_BPFFS_SOURCE, root, "bpf", 0, "mode=0700"))
				return -errno;
		}
	}
	err = snprintf(sub, sizeof(sub), "%s/" XM_PIN_MAPS, root) >= (int)sizeof(sub) ?
		      -ENAMETOOLONG : xm_mkdir_p(sub, 0700);
	if (!err)
		err = snprintf(sub, sizeof(sub), "%s/" XM_PIN_LINKS, root) >= (int)sizeof(sub) ?
			      -ENAMETOOLONG : xm_mkdir_p(sub, 0700);
	return err;
}

int xm_meta_read(const char *root, struct xm_meta *meta)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), key = 0;
	int fd, err = 0;

	fd = xm_map_open(root, "xm_meta");
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	else if (info.value_size != sizeof(*meta))
		err = -EPROTO;
	else if (bpf_map_lookup_elem(fd, &key, meta))
		err = -errno;
	close(fd);
	return err;
}

bool xm_pin_root_in_use(const char *root)
{
	struct xm_meta meta;

	return xm_meta_read(root, &meta) != -ENOENT;
}

static bool kept(const char *rel, const char *const *keep)
{
	for (; keep && *keep; keep++)
		if (!strcmp(rel, *keep))
			return true;
	return false;
}

/*
 * Remove what is below path (rel: its name relative to the pin root), except
 * the entries named in keep, and path itself once empty. Returns the number
 * of pins removed or -errno.
 */
static int remove_tree(const char *path, const char *rel, const char *const *keep)
{
	struct dirent *de;
	int n = 0, r;
	DIR *d;

	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char child[PATH_MAX], child_rel[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		snprintf(child_rel, sizeof(child_rel), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		if (kept(child_rel, keep) || lstat(child, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			r = remove_tree(child, child_rel, keep);
			if (r < 0) {
				closedir(d);
				return r;
			}
			n += r;
		} else if (unlink(child) == 0) {
			n++;
		} else {
			closedir(d);
			return -errno;
		}
	}
	closedir(d);
	if (rmdir(path) && errno != ENOENT && errno != ENOTEMPTY)
		return -errno;
	return n;
}

int xm_pin_root_remove_except(const char *root, const char *const *keep)
{
	char links[PATH_MAX];
	int n, m;

	/* Links first: the programs detach before the maps they use go away. */
	snprintf(links, sizeof(links), "%s/%s", root, XM_PIN_LINKS);
	n = remove_tree(links, XM_PIN_LINKS, keep);
	if (n < 0)
		return n;
	/*
	 * A bpffs mounted at the root itself (xm_pin_root_prepare): our pins are
	 * in its directories; its own entries (bpf preload's maps.debug,
	 * progs.debug) cannot be unlinked and go with the umount, once nothing is
	 * kept (a draining uninstall comes back for the rest).
	 */
	if (is_own_mount(root)) {
		struct dirent *de;
		struct stat st;
		DIR *d = opendir(root);

		if (!d)
			return -errno;
		m = 0;
		while ((de = readdir(d)) && m >= 0) {
			char sub[PATH_MAX];
			int r;

			if (de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", root, de->d_name);
			if (lstat(sub, &st) || !S_ISDIR(st.st_mode))
				continue;
			r = remove_tree(sub, de->d_name, keep);
			m = r < 0 ? r : m + r;
		}
		closedir(d);
		if (m < 0 || keep)
			return m < 0 ? m : n + m;
		if (umount2(root, MNT_DETACH))
			return -errno;
		if (rmdir(root) && errno != ENOENT)
			return -errno;
		return n + m;
	}
	m = remove_tree(root, "", keep);
	return m < 0 ? m : n + m;
}

int xm_pin_root_remove(const char *root)
{
	return xm_pin_root_remove_except(root, NULL);
}

static const char *run_dir(void)
{
	const char *dir = getenv("XM_RUN_DIR");

	return dir && *dir ? dir : XM_RUN_DIR_DEFAULT;
}

int xm_run_path(char *buf, size_t len, const char *root, const char *suffix)
{
	char canon[PATH_MAX];
	const char *base;
	__u64 h = 0xcbf29ce484222325ULL; /* FNV-1a */
	int n, err;

	/*
	 * Keyed by the canonical pin root, so that every spelling of one pin
	 * root (trailing slash, symlink, "..") meets the same agent, and two pin
	 * roots with the same basename never share one.
	 */
	err = xm_path_canonical(root, canon, sizeof(canon));
	if (err)
		return err;
	for (const char *p = canon; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	base = strrchr(canon, '/') + 1;
	n = snprintf(buf, len, "%s/%.24s-%016llx.%s", run_dir(), *base ? base : "root",
		     (unsigned long long)h, suffix);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int xm_run_dir_prepare(void)
{
	return mkdir(run_dir(), 0755) && errno != EEXIST ? -errno : 0;
}

void xm_run_dir_release(void)
{
	rmdir(run_dir()); /* only if empty: other agents' files stay */
}

int xm_pin_walk(const char *root, const char *sub, int (*fn)(const char *name, int fd, void *arg),
		void *arg)
{
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX + 1];
	struct dirent *de;
	int fd, r = 0;
	DIR *d;

	if (snprintf(dir, sizeof(dir), "%s/%s", root, sub) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!r && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		r = fn(de->d_name, fd, arg);
		close(fd);
	}
	closedir(d);
	return r;
}
