// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "overlay.h"
#include "pin.h"
#include "progstats.h"

const char *xm_prog_type_name(__u32 type)
{
	const char *n = libbpf_bpf_prog_type_str(type);

	return n ?: "unknown";
}

/* What a bpffs object is: "bpf-link", "bpf-prog", "bpf-map" (its anon inode). */
static bool fd_is(int fd, const char *kind)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return strstr(target, kind) != NULL;
}

/* The id of the program behind a pinned link or program, 0 if none. */
static __u32 pinned_prog_id(int fd)
{
	if (fd_is(fd, "bpf-link")) {
		struct bpf_link_info li = {};
		__u32 len = sizeof(li);

		return bpf_obj_get_info_by_fd(fd, &li, &len) ? 0 : li.prog_id;
	}
	if (fd_is(fd, "bpf-prog")) {
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(pi);

		return bpf_obj_get_info_by_fd(fd, &pi, &len) ? 0 : pi.id;
	}
	return 0;
}

static int prog_stat_fill(__u32 id, struct xm_prog_stat *s)
{
	struct bpf_prog_info pi = {};
	__u32 len = sizeof(pi);
	int fd, err = 0;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &pi, &len))
		err = -errno;
	close(fd);
	if (err)
		return err;
	memset(s, 0, sizeof(*s));
	s->id = pi.id;
	s->type = pi.type;
	memcpy(s->name, pi.name, sizeof(s->name));
	s->run_cnt = pi.run_cnt;
	s->run_time_ns = pi.run_time_ns;
	s->recursion_misses = pi.recursion_misses;
	s->xlated_insns = pi.xlated_prog_len / sizeof(struct bpf_insn);
	s->jited_bytes = pi.jited_prog_len;
	s->verified_insns = pi.verified_insns;
	return 0;
}

struct walk {
	struct xm_prog_stat *out;
	int max, n;
};

static void walk_add(struct walk *w, __u32 id)
{
	struct xm_prog_stat s;

	for (int i = 0; i < w->n && i < w->max; i++) {
		if (w->out[i].id == id) {
			w->out[i].pins++;
			return;
		}
	}
	if (prog_stat_fill(id, &s))
		return; /* unloaded between the pin and now */
	s.pins = 1;
	if (w->n < w->max)
		w->out[w->n] = s;
	w->n++;
}

static int walk_pin(const char *name, int fd, void *arg)
{
	__u32 id = pinned_prog_id(fd);

	if (id)
		walk_add(arg, id);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct xm_prog_stat *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ?: (x->id > y->id) - (x->id < y->id);
}

int xm_prog_stats_read(const char *root, struct xm_prog_stat *out, int max)
{
	struct walk w = { .out = out, .max = max };
	int err;

	if (access(root, F_OK))
		return -errno;
	err = xm_pin_walk(root, XM_PIN_LINKS, walk_pin, &w);
	if (!err)
		err = xm_pin_walk(root, XM_PIN_PROGS, walk_pin, &w);
	if (err)
		return err;
	qsort(out, w.n < max ? w.n : max, sizeof(*out), by_name);
	return w.n;
}

int xm_bpf_stats_sysctl(void)
{
	char c = 0;
	int fd, n;

	fd = open("/proc/sys/kernel/bpf_stats_enabled", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, &c, 1);
	close(fd);
	if (n != 1)
		return -EIO;
	return c == '1';
}

int xm_bpf_stats_hold(void)
{
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);

	return fd < 0 ? -errno : fd;
}
