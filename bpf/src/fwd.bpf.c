// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_fwd: the benchmark's baseline, an in-kernel DR forwarder. A TCP or UDP packet to
 * the VIP gets the real server's MAC as destination and ours as source and goes back
 * out with XDP_TX, as xvs's DR rewrite does; everything else goes to the kernel. It
 * parses what xvs parses, and no more. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"
#include "bench_abi.h"

/* Set by the loader. */
volatile const struct xvs_fwd_config cfg = {};

SEC("xdp")
int xvs_fwd(struct xdp_md *ctx)
{
	struct hdr_cursor c = { .pos = (void *)(long)ctx->data,
				.end = (void *)(long)ctx->data_end };
	struct ethhdr *eth;
	struct iphdr *ip;
	int proto;

	if (parse_ethhdr(&c, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&c, &ip);
	if ((proto != IPPROTO_UDP && proto != IPPROTO_TCP) || ip->daddr != cfg.vip)
		return XDP_PASS;
	/* The ports must be there, as xvs requires before it forwards. */
	if (c.pos + 4 > c.end)
		return XDP_PASS;
#pragma unroll
	for (int i = 0; i < 6; i++) {
		eth->h_dest[i] = cfg.rs_mac[i];
		eth->h_source[i] = cfg.own_mac[i];
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
