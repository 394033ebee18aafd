// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include "sys.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int xm_file_read(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f)
		return -errno;
	do {
		if (n + 4096 > cap) {
			char *t = realloc(buf, cap = cap * 2 + 8192);

			if (!t) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = t;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got);
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int xm_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int xm_cgroup2_mount(char *buf, size_t len)
{
	struct mntent *m;
	FILE *f;
	int err = -ENOENT;

	f = setmntent("/proc/mounts", "r");
	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (!strcmp(m->mnt_type, "cgroup2")) {
			err = snprintf(buf, len, "%s", m->mnt_dir) >= (int)len ? -ENAMETOOLONG : 0;
			break;
		}
	}
	endmntent(f);
	return err;
}

int xm_cgroup_check(const char *path)
{
	struct statfs sfs;
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (statfs(path, &sfs))
		return -errno;
	return sfs.f_type == CGROUP2_SUPER_MAGIC ? 0 : -EMEDIUMTYPE;
}

bool xm_cgroup_is_root(const char *path)
{
	char mnt[PATH_MAX];
	struct stat a, b;

	if (xm_cgroup2_mount(mnt, sizeof(mnt)))
		return false;
	return stat(path, &a) == 0 && stat(mnt, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

int xm_netns_cookie_self(__u64 *cookie)
{
	socklen_t len = sizeof(*cookie);
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = errno == ENOPROTOOPT ? -EOPNOTSUPP : -errno;
	close(fd);
	return err;
}

struct netns_job {
	int nsfd;
	int (*fn)(void *arg);
	void *arg;
	int ret;
};

static void *netns_thread(void *p)
{
	struct netns_job *job = p;

	/* setns() on a network namespace affects only this thread. */
	if (setns(job->nsfd, CLONE_NEWNET))
		job->ret = -errno;
	else
		job->ret = job->fn(job->arg);
	return NULL;
}

int xm_netns_run(const char *path, int (*fn)(void *arg), void *arg)
{
	struct netns_job job = { .fn = fn, .arg = arg };
	struct statfs sfs;
	pthread_t t;
	int err;

	job.nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (job.nsfd < 0)
		return -errno;
	/* Anything else (a plain file, a directory) is not a netns. */
	if (fstatfs(job.nsfd, &sfs) || (sfs.f_type != NSFS_MAGIC && sfs.f_type != PROC_SUPER_MAGIC)) {
		close(job.nsfd);
		return -EINVAL;
	}
	err = pthread_create(&t, NULL, netns_thread, &job);
	if (err) {
		close(job.nsfd);
		return -err;
	}
	pthread_join(t, NULL);
	close(job.nsfd);
	return job.ret;
}

static int cookie_job(void *arg)
{
	return xm_netns_cookie_self(arg);
}

int xm_netns_cookie_of_path(const char *path, __u64 *cookie)
{
	return xm_netns_run(path, cookie_job, cookie);
}

unsigned int xm_kernel_version(void)
{
	unsigned int maj = 0, min = 0, pat = 0;
	struct utsname u;

	if (uname(&u))
		return 0;
	sscanf(u.release, "%u.%u.%u", &maj, &min, &pat);
	return maj * 65536 + min * 256 + (pat > 255 ? 255 : pat);
}

bool xm_have_btf(void)
{
	return access("/sys/kernel/btf/vmlinux", R_OK) == 0;
}
