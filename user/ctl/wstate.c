// SPDX-License-Identifier: MIT
/*
 * The weighting loop's published state (include/xmesh/weight.h), as the CLI
 * shows it: `backend list` adds it to each row, `top` is built on it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <xmesh/weight.h>
#include "ctl.h"
#include "pin.h"
#include "monoclock.h"

int ctl_wstate_open(void)
{
	return xm_map_open(xm_pin_root, "xm_lb_wstate");
}

int ctl_wloop_read(struct xm_lb_wloop *out)
{
	__u32 zero = 0;
	int fd = xm_map_open(xm_pin_root, "xm_lb_wloop"), err = 0;

	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &zero, out))
		err = -errno;
	close(fd);
	return err;
}

static double us_ms(__u32 us)
{
	return us == XM_WEIGHT_UNSET ? -1 : us / 1e3;
}

bool ctl_wview_read(int fd, __u32 id, struct ctl_wview *v)
{
	struct xm_lb_wstate s;

	if (fd < 0 || bpf_map_lookup_elem(fd, &id, &s) || !s.updated_ns)
		return false;
	memset(v, 0, sizeof(*v));
	snprintf(v->algorithm, sizeof(v->algorithm), "%.*s", (int)sizeof(s.algo), s.algo);
	v->age_s = xm_mono_s() - s.updated_ns / 1e9;
	v->p99_ms = us_ms(s.p99_us);
	v->l_est_ms = us_ms(s.l_est_us);
	v->tick_p50_ms = us_ms(s.tick_p50_us);
	v->tick_p99_ms = us_ms(s.tick_p99_us);
	v->success_rate = s.success_ppm / 1e6;
	v->rps = s.rps_milli / 1e3;
	v->in_flight = s.inflight_milli / 1e3;
	v->in_flight_now = s.inflight_now;
	v->weight = s.weight_ppm == XM_WEIGHT_UNSET ? -1 : s.weight_ppm / 1e6;
	v->live = s.flags & XM_WSTATE_F_LIVE;
	return true;
}

static json_t *ms_or_null(double ms)
{
	return ms < 0 ? json_null() : json_real(ms);
}

json_t *ctl_wview_json(const struct ctl_wview *v)
{
	return json_pack("{s:s, s:f, s:o, s:o, s:o, s:o, s:f, s:f, s:f, s:i, s:o, s:b}",
			 "algorithm", v->algorithm, "age_s", v->age_s, "p99_ms",
			 ms_or_null(v->p99_ms), "l_est_ms", ms_or_null(v->l_est_ms), "tick_p50_ms",
			 ms_or_null(v->tick_p50_ms), "tick_p99_ms", ms_or_null(v->tick_p99_ms),
			 "success_rate", v->success_rate, "rps", v->rps, "in_flight", v->in_flight,
			 "in_flight_now", v->in_flight_now, "weight",
			 v->weight < 0 ? json_null() : json_real(v->weight), "live", v->live);
}

void ctl_fmt_ms(char *buf, size_t len, double ms)
{
	if (ms < 0)
		snprintf(buf, len, "-");
	else if (ms >= 1000)
		snprintf(buf, len, "%.2fs", ms / 1000);
	else if (ms >= 1)
		snprintf(buf, len, "%.1fms", ms);
	else
		snprintf(buf, len, "%.0fus", ms * 1000);
}
