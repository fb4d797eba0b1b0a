// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_trafgen: the benchmark's traffic generator. Run by BPF_PROG_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES and a repeat count on the client's interface, it rewrites
 * the template frame (Ethernet, IPv4 or IPv6, UDP or TCP SYN) for the next of `flows` flows —
 * source address and port — recomputes the checksums, and sends it with XDP_TX. A page
 * of the pool may hold a frame written by an earlier run: every field that varies is
 * written whole, never updated. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"
#include "csum.h"
#include "bench_abi.h"

/* Set by the loader. Flow i has source address saddr_base + (i & 0xfffff) and source port
 * 1024 + (i >> 20): a million flows are a million sources (a spoofed SYN flood's). */
volatile const struct xvs_trafgen_config cfg = { .flows = 1 };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} xvs_trafgen_seq SEC(".maps");

static __always_inline __u16 csum_words(const __u16 *w, int n, __u32 sum)
{
#pragma unroll
	for (int i = 0; i < n; i++)
		sum += w[i];
	return ~csum_fold32(sum);
}

/* IPv6: the last 32 bits of the source address vary, as IPv4's whole address does; the
 * transport checksum (UDP's is mandatory over IPv6) is written whole over the
 * pseudo-header and the template's fixed header (no payload). */
static __always_inline int trafgen6(void *l3, void *end, __u32 saddr, __u16 sport)
{
	struct ipv6hdr *ip6 = l3;
	__u32 sum;

	if ((void *)(ip6 + 1) > end)
		return XDP_ABORTED;
	ip6->saddr.in6_u.u6_addr32[3] = saddr;
	/* The pseudo-header: both addresses, the upper-layer length, the next header. */
	sum = bpf_htons(bpf_ntohs(ip6->payload_len)) + bpf_htons(ip6->nexthdr);
#pragma unroll
	for (int i = 0; i < 16; i++)
		sum += ((__u16 *)&ip6->saddr)[i];
	if (ip6->nexthdr == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip6 + 1);

		if ((void *)(udp + 1) > end || udp->len != bpf_htons(sizeof(*udp)))
			return XDP_ABORTED;
		udp->source = sport;
		udp->check = 0;
		udp->check = csum_words((__u16 *)udp, 4, sum);
		if (!udp->check)
			udp->check = 0xffff;
	} else if (ip6->nexthdr == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip6 + 1);

		if ((void *)(tcp + 1) > end || tcp->doff != 5)
			return XDP_ABORTED;
		tcp->source = sport;
		tcp->check = 0;
		tcp->check = csum_words((__u16 *)tcp, 10, sum);
	} else {
		return XDP_ABORTED;
	}
	return XDP_TX;
}

SEC("xdp")
int xvs_trafgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct hdr_cursor c = { .pos = data, .end = end };
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 key = 0;
	__u64 *seq = bpf_map_lookup_elem(&xvs_trafgen_seq, &key);

	if (!seq)
		return XDP_ABORTED;
	int proto = parse_ethhdr(&c, &eth);
	__u32 flows = cfg.flows ? cfg.flows : 1;
	__u32 i = (__u32)((*seq)++ % flows);
	__u32 saddr = bpf_htonl(cfg.saddr_base + (i & 0xfffff));
	__u16 sport = bpf_htons(1024 + (i >> 20));

	if (proto == bpf_htons(ETH_P_IPV6))
		return trafgen6(c.pos, end, saddr, sport);
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_ABORTED;
	ip = c.pos;
	/* The template has no IP options: a fixed header keeps the checksum loop simple. */
	if ((void *)(ip + 1) > end || ip->ihl != 5)
		return XDP_ABORTED;

	ip->saddr = saddr;
	ip->check = 0;
	ip->check = csum_words((__u16 *)ip, 10, 0);
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > end)
			return XDP_ABORTED;
		udp->source = sport;
		udp->check = 0; /* optional in IPv4 */
	} else if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > end || tcp->doff != 5)
			return XDP_ABORTED;
		tcp->source = sport;
		tcp->check = 0;
		/* Pseudo-header (addresses, protocol, TCP length), then the 20-byte header. */
		__u32 sum = (saddr & 0xffff) + (saddr >> 16) + (ip->daddr & 0xffff) +
			    (ip->daddr >> 16) + bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(*tcp));
		tcp->check = csum_words((__u16 *)tcp, 10, sum);
	} else {
		return XDP_ABORTED;
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
