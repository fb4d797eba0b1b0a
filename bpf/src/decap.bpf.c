// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_decap: a real server's tc ingress program for xvs's TUN method, for kernels without
 * the ipip and ip6_tunnel modules. An IPIP packet (or an IPv6-in-IPv6 one, RFC 2473)
 * whose inner destination is one of this host's VIPs loses its outer header and goes on
 * into the stack as the client's own packet; everything else passes untouched. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"
#include "parse.h"

/* Debian's UAPI headers (6.1) predate it; the kernel has had it since 5.17. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV6
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, __u8);
	__uint(max_entries, XVS_MAX_DECAP_VIPS);
} xvs_decap_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct in6_addr);
	__type(value, __u8);
	__uint(max_entries, XVS_MAX_DECAP_VIPS);
} xvs_decap_vips6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xvs_decap_counters);
	__uint(max_entries, 1);
} xvs_decap_counters SEC(".maps");

static __always_inline int count(enum xvs_decap_stat stat)
{
	__u32 zero = 0;
	struct xvs_decap_counters *c = bpf_map_lookup_elem(&xvs_decap_counters, &zero);

	if (c)
		c->packets[stat]++;
	return TC_ACT_OK;
}

/* IPv6-in-IPv6 as xvs writes it: an outer header without extension headers, next
 * header 41, then the client's packet. */
static __always_inline int decap6(struct __sk_buff *skb, struct hdr_cursor *c)
{
	struct ipv6hdr *outer = c->pos, *inner;

	if ((void *)(outer + 1) > c->end)
		return count(XVS_DECAP_PASS_TRUNCATED);
	if (outer->version != 6 || outer->nexthdr != IPPROTO_IPV6)
		return count(XVS_DECAP_PASS_NOT_IPIP);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > c->end)
		return count(XVS_DECAP_PASS_TRUNCATED);
	if (!bpf_map_lookup_elem(&xvs_decap_vips6, &inner->daddr))
		return count(XVS_DECAP_PASS_NOT_VIP);
	if (bpf_skb_adjust_room(skb, -(int)sizeof(struct ipv6hdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV6))
		return count(XVS_DECAP_ERROR);
	return count(XVS_DECAP_DECAPPED);
}

SEC("tc")
int xvs_decap(struct __sk_buff *skb)
{
	struct hdr_cursor c = {
		.pos = (void *)(long)skb->data,
		.end = (void *)(long)skb->data_end,
	};
	struct ethhdr *eth;
	struct iphdr *outer, *inner;
	int proto;

	proto = parse_ethhdr(&c, &eth);
	if (proto < 0)
		return count(XVS_DECAP_PASS_TRUNCATED);
	if (proto == bpf_htons(ETH_P_IPV6))
		return decap6(skb, &c);
	if (proto != bpf_htons(ETH_P_IP))
		return count(XVS_DECAP_PASS_NOT_IPIP);
	proto = parse_iphdr(&c, &outer);
	if (proto == XVS_PARSE_TRUNCATED)
		return count(XVS_DECAP_PASS_TRUNCATED);
	/* xvs writes option-less outer headers; anything else is not ours to undo. */
	if (proto != IPPROTO_IPIP || outer->ihl != 5)
		return count(XVS_DECAP_PASS_NOT_IPIP);
	/* A fragment of a tunnelled packet: stripped fragment by fragment the inner packet
	 * would come out corrupt. The kernel reassembles first (as before its ipip). */
	if (outer->frag_off & bpf_htons(0x3fff))
		return count(XVS_DECAP_PASS_FRAGMENT);
	inner = c.pos;
	if ((void *)(inner + 1) > c.end)
		return count(XVS_DECAP_PASS_TRUNCATED);
	if (!bpf_map_lookup_elem(&xvs_decap_vips, &inner->daddr))
		return count(XVS_DECAP_PASS_NOT_VIP);

	if (bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV4))
		return count(XVS_DECAP_ERROR);
	return count(XVS_DECAP_DECAPPED);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
