// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_sink: the benchmark's real server. Counts every IPv4 frame that reaches it (UDP,
 * TCP, or IPIP from a TUN director) and every IPv6 one but ICMPv6 in a per-CPU counter
 * and drops it; everything else (ARP, neighbour discovery) goes to the kernel.
 * xvs_sink_gaps does the same and also keeps the longest time between two counted
 * frames (a takeover's forwarding gap), measured here rather than by a reader that
 * the scheduler may hold up. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"
#include "bench_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_sink_count);
} xvs_sink_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_sink_gap);
} xvs_sink_gap SEC(".maps");

/* Counts the frame when it is one of the stream's; returns whether it was. */
static __always_inline int count(struct xdp_md *ctx)
{
	struct hdr_cursor c = { .pos = (void *)(long)ctx->data,
				.end = (void *)(long)ctx->data_end };
	struct ethhdr *eth;
	__u32 key = 0;
	struct xvs_sink_count *n;

	int proto = parse_ethhdr(&c, &eth);

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = c.pos;

		if ((void *)(ip6 + 1) > c.end || ip6->nexthdr == IPPROTO_ICMPV6)
			return 0;
	} else if (proto != bpf_htons(ETH_P_IP)) {
		return 0;
	}
	n = bpf_map_lookup_elem(&xvs_sink_counts, &key);
	if (n) {
		n->packets++;
		n->bytes += ctx->data_end - ctx->data;
	}
	return 1;
}

SEC("xdp")
int xvs_sink(struct xdp_md *ctx)
{
	return count(ctx) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xvs_sink_gaps(struct xdp_md *ctx)
{
	struct xvs_sink_gap *g;
	__u32 key = 0;
	__u64 now;

	if (!count(ctx))
		return XDP_PASS;
	g = bpf_map_lookup_elem(&xvs_sink_gap, &key);
	if (!g)
		return XDP_DROP;
	/* Not atomic: two CPUs counting at once are microseconds apart, far below the gaps
	 * this is for. */
	now = bpf_ktime_get_ns();
	if (g->last_ns && now > g->last_ns && now - g->last_ns > g->max_gap_ns) {
		g->max_gap_ns = now - g->last_ns;
		g->max_at_ns = now;
	}
	g->last_ns = now;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
