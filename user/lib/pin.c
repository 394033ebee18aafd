// SPDX-License-Identifier: MIT
#include <dirent.h>
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

int xm_pin_root_prepare(const char *root)
{
	char parent[PATH_MAX], sub[PATH_MAX];
	char *slash;
	int err;

	if (snprintf(parent, sizeof(parent), "%s", root) >= (int)sizeof(parent))
		return -ENAMETOOLONG;
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return -EINVAL; /* the pin root must be a directory below a bpffs mount */
	*slash = '\0';
	if (!is_bpffs(parent)) {
		err = xm_mkdir_p(parent, 0700);
		if (err)
			return err;
		if (mount("bpf", parent, "bpf", 0, "mode=0700"))
			return -errno;
	}
	err = xm_mkdir_p(root, 0700);
	if (!err && !is_bpffs(root))
		return -ENOTSUP;
	if (!err) {
		snprintf(sub, sizeof(sub), "%s/" XM_PIN_MAPS, root);
		err = xm_mkdir_p(sub, 0700);
	}
	if (!err) {
		snprintf(sub, sizeof(sub), "%s/" XM_PIN_LINKS, root);
		err = xm_mkdir_p(sub, 0700);
	}
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

static int remove_tree(const char *path)
{
	struct dirent *de;
	int n = 0, r;
	DIR *d;

	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char child[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		if (lstat(child, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			r = remove_tree(child);
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
	if (rmdir(path) && errno != ENOENT)
		return -errno;
	return n;
}

int xm_pin_root_remove(const char *root)
{
	char links[PATH_MAX];
	int n, m;

	/* Links first: the programs detach before the maps they use go away. */
	snprintf(links, sizeof(links), "%s/%s", root, XM_PIN_LINKS);
	n = remove_tree(links);
	if (n < 0)
		return n;
	m = remove_tree(root);
	return m < 0 ? m : n + m;
}

int xm_run_path(char *buf, size_t len, const char *root, const char *suffix)
{
	const char *dir = getenv("XM_RUN_DIR");
	const char *base = strrchr(root, '/');
	int n;

	if (!dir || !*dir)
		dir = "/run/xmesh";
	base = base ? base + 1 : root;
	n = snprintf(buf, len, "%s/%s.%s", dir, base, suffix);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
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
