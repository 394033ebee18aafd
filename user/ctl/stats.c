// SPDX-License-Identifier: MIT
/* xmeshctl stats: datapath counters, summed over CPUs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "ctl.h"
#include "stats.h"

/* Both printers read the counters as read (vals, by XM_STAT_* index). */
static void stats_plain(const __u64 *vals)
{
	for (unsigned int i = 0; i < xm_stat_desc_count; i++)
		printf("%-24s %llu\n", xm_stat_descs[i].name,
		       (unsigned long long)vals[xm_stat_descs[i].idx]);
}

static json_t *stats_json(const __u64 *vals)
{
	json_t *o = json_object();

	for (unsigned int i = 0; i < xm_stat_desc_count; i++)
		json_object_set_new(o, xm_stat_descs[i].name,
				    json_integer((json_int_t)vals[xm_stat_descs[i].idx]));
	return o;
}

static int stats_show(int argc, char **argv)
{
	__u64 vals[XM_STAT_MAX];
	int err;

	NO_MORE_ARGS();
	err = xm_stats_read(xm_pin_root, vals);
	if (err) {
		if (err == -ENOENT)
			p_err("no xmesh datapath at %s: is xmesh-agent running, or is --pin-root right?",
			      xm_pin_root);
		else
			p_err("read counters: %s", strerror(-err));
		return -1;
	}
	if (xm_out_json)
		xm_out_print_json(stats_json(vals));
	else
		stats_plain(vals);
	return 0;
}

static int stats_help(int argc, char **argv)
{
	ctl_help( "Usage: xmeshctl stats [show]\n"
			"  Datapath counters since the datapath was loaded.\n");
	return 0;
}

int do_stats(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "show", stats_show },
		{ "help", stats_help },
		{}
	};

	return cmd_select(cmds, argc, argv, stats_help);
}
