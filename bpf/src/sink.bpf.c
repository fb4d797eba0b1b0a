// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_sink: the benchmark's real server. Counts every IPv4 frame that reaches it (UDP,
 * TCP, or IPIP from a TUN director) and every IPv6 one but ICMPv6 in a per-CPU counter
 * and drops it; everything else (ARP, neighbour discovery) goes to the kernel. */
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

SEC("xdp")
int xvs_sink(struct xdp_md *ctx)
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
			return XDP_PASS;
	} else if (proto != bpf_htons(ETH_P_IP)) {
		return XDP_PASS;
	}
	n = bpf_map_lookup_elem(&xvs_sink_counts, &key);
	if (n) {
		n->packets++;
		n->bytes += ctx->data_end - ctx->data;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
