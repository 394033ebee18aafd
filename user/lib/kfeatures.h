/* SPDX-License-Identifier: MIT */
/*
 * Kernel features xmesh uses when the running kernel has them, and what it
 * does instead when not. Probed once at agent start from the kernel's own
 * BTF and with libbpf's load probes; the agent records the result in the
 * pin root's meta entry, where xmeshctl and the CNI plugin read it.
 */
#ifndef XMESH_KFEATURES_H
#define XMESH_KFEATURES_H

#include <stdbool.h>
#include <linux/types.h>
#include <xmesh/kfeatures.h>

struct xm_kfeature_desc {
	const char *name;    /* as in XMESH_DISABLE_FEATURES and xmeshctl status */
	const char *since;   /* first Linux version that has it */
	const char *without; /* what xmesh does on a kernel without it */
};

extern const struct xm_kfeature_desc xm_kfeatures[XM_KF_COUNT];

/*
 * Probe the running kernel: returns a mask of (1 << enum xm_kfeature) with
 * XM_KF_VALID set. XMESH_DISABLE_FEATURES=name[,name...] in the environment
 * makes features count as missing (to run a fallback on a newer kernel, or
 * to avoid a feature a kernel gets wrong); unknown names are -EINVAL.
 */
int xm_kfeatures_probe(__u32 *mask);

static inline bool xm_kf_has(__u32 mask, enum xm_kfeature f)
{
	return mask & (1U << f);
}

/* The mask the agent recorded at the pin root, or -errno (-ENODATA: an agent that did not probe). */
int xm_kfeatures_of_pin_root(const char *pin_root, __u32 *mask);

#endif
