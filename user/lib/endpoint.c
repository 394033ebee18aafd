// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "endpoint.h"
#include "overlay.h"
#include "pin.h"

static void endpoint_key(struct xm_endpoint_key *k, __u8 family, const struct xm_addr *addr)
{
	memset(k, 0, sizeof(*k));
	k->family = family;
	k->addr = *addr;
}

int xm_endpoint_put(const char *pin_root, __u8 family, const struct xm_addr *addr,
		    const struct xm_endpoint *ep)
{
	struct xm_endpoint_key k;
	int fd, err = 0;

	fd = xm_map_open(pin_root, "xm_endpoints");
	if (fd < 0)
		return fd;
	endpoint_key(&k, family, addr);
	if (bpf_map_update_elem(fd, &k, ep, BPF_ANY))
		err = errno == E2BIG ? -ENOSPC : -errno;
	close(fd);
	return err;
}

int xm_endpoint_get(const char *pin_root, __u8 family, const struct xm_addr *addr,
		    struct xm_endpoint *ep)
{
	struct xm_endpoint_key k;
	int fd, err = 0;

	fd = xm_map_open(pin_root, "xm_endpoints");
	if (fd < 0)
		return fd;
	endpoint_key(&k, family, addr);
	if (bpf_map_lookup_elem(fd, &k, ep))
		err = -errno;
	close(fd);
	return err;
}

int xm_endpoint_del(const char *pin_root, __u8 family, const struct xm_addr *addr)
{
	struct xm_endpoint_key k;
	int fd, err = 0;

	fd = xm_map_open(pin_root, "xm_endpoints");
	if (fd < 0)
		return fd;
	endpoint_key(&k, family, addr);
	if (bpf_map_delete_elem(fd, &k))
		err = -errno;
	close(fd);
	/* The address may come back on another node: nothing cached may outlive it. */
	if (!err)
		xm_overlay_forget_addr(pin_root, family, addr);
	return err;
}

int xm_endpoint_foreach(const char *pin_root,
			int (*fn)(const struct xm_endpoint_key *k, const struct xm_endpoint *ep,
				  void *arg),
			void *arg)
{
	struct xm_endpoint_key key, next;
	struct xm_endpoint ep;
	void *prev = NULL;
	int fd, ret = 0;

	fd = xm_map_open(pin_root, "xm_endpoints");
	if (fd < 0)
		return fd;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &ep))
			continue; /* deleted meanwhile */
		ret = fn(&key, &ep, arg);
		if (ret)
			break;
	}
	close(fd);
	return ret;
}
