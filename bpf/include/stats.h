/* The steering program's outcome counters (xvs_counters, XVS_STAT_*). */
#ifndef XVS_STATS_H
#define XVS_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"
#include "maps.h"
#include "parse.h"

/* Counts `stat` and returns `action`, so an outcome is decided and counted in one. */
static __always_inline int count(enum xvs_xdp_stat stat, int action)
{
	__u32 zero = 0;
	struct xvs_xdp_counters *c = bpf_map_lookup_elem(&xvs_counters, &zero);

	if (c)
		c->packets[stat]++;
	return action;
}

static __always_inline int parse_error(int err)
{
	return count(err == XVS_PARSE_BAD_HEADER ? XVS_STAT_PASS_BAD_HEADER : XVS_STAT_PASS_TRUNCATED,
		     XDP_PASS);
}

#endif
