// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "drain.h"
#include "pin.h"

/*
 * sk_msg (the link or, before kernel 6.10, the attachment held by the map)
 * and the SOCKHASH keep redirecting between sockets already in the map; the
 * kernel frees a socket's redirect queue with the map, so the map must live
 * until it is empty. Meta and stats stay so that xmeshctl status/stats work.
 * The sk_msg program holds its other maps (socket state, probes) itself.
 */
const char *const xm_drain_keep[] = {
	XM_PIN_LINKS "/sk_msg",
	XM_PIN_MAPS "/xm_socks",
	XM_PIN_MAPS "/xm_meta",
	XM_PIN_MAPS "/xm_stats",
	NULL,
};

long xm_redirect_sock_count(const char *root)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char key[256], next[256];
	void *prev = NULL;
	long n = 0;
	int fd;

	fd = xm_map_open(root, "xm_socks");
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.key_size > sizeof(key)) {
		close(fd);
		return -EPROTO;
	}
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, info.key_size);
		prev = key;
		n++;
	}
	close(fd);
	return n;
}

bool xm_pin_root_draining(const char *root)
{
	char path[PATH_MAX];

	if (xm_pin_path(path, sizeof(path), root, XM_PIN_LINKS, "sockops"))
		return false;
	return access(path, F_OK) != 0 && xm_redirect_sock_count(root) >= 0;
}
