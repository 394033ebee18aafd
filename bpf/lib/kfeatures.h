/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The kernel features the agent found (include/xmesh/kfeatures.h), set before load. */
#ifndef XMESH_BPF_KFEATURES_H
#define XMESH_BPF_KFEATURES_H

#include <xmesh/kfeatures.h>

/* All present unless the agent says otherwise (a test loading the object itself). */
const volatile __u32 xm_kf_mask = ~0U;

static __always_inline bool xm_kf(enum xm_kfeature f)
{
	return xm_kf_mask & (1U << f);
}

#endif
