/* NAT clients' next hops: the MAC a request to a NAT service came from, learned from
 * packets that may open a flow, unless the FIB or a fresh entry says otherwise
 * (xvs_nat_clients): where nat.h sends the replies. */
#ifndef XVS_NAT_CLIENTS_H
#define XVS_NAT_CLIENTS_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"
#include "maps.h"
#include "parse.h"

/* A packet that may open a NAT flow (a TCP SYN, a UDP datagram): whether its source MAC
 * may be learned as its client's next hop. Not when the FIB knows the next hop and it is
 * another MAC (a spoofed frame on the link), nor over an entry learned less than
 * XVS_NAT_CLIENT_FRESH_NS ago (`known`) that says otherwise. */
static __always_inline int may_learn(struct xdp_md *ctx, struct ethhdr *eth,
				     struct bpf_fib_lookup *fib, struct xvs_nat_client *known)
{
	fib->ifindex = ingress_ifindex(ctx);
	if (bpf_fib_lookup(ctx, fib, sizeof(*fib), 0) == BPF_FIB_LKUP_RET_SUCCESS)
		return mac_eq(fib->dmac, eth->h_source);
	return !known || bpf_ktime_get_coarse_ns() - known->learned >= XVS_NAT_CLIENT_FRESH_NS;
}

/* The client's entry names this MAC already: kept fresh (written at most every half
 * freshness), so a spoofer waits for the client's silence, not for a minute after it
 * was first seen. True when there is nothing else to learn. */
static __always_inline int refreshed(struct xvs_nat_client *known, struct ethhdr *eth)
{
	__u64 now;

	if (!known || !mac_eq(known->mac, eth->h_source))
		return 0;
	now = bpf_ktime_get_coarse_ns();
	if (now - known->learned >= XVS_NAT_CLIENT_FRESH_NS / 2)
		known->learned = now;
	return 1;
}

/* Whether a packet to a service may open a flow: a TCP SYN without ACK, or UDP. */
static __always_inline int opens_flow(void *l4, int proto, void *end)
{
	__u8 *flags = (__u8 *)l4 + 13;

	if (proto != IPPROTO_TCP)
		return 1;
	return (void *)(flags + 1) <= end && (*flags & 0x12) == 0x02;
}

/* A request to a NAT service: remember the MAC its client is reached through. */
static __always_inline void learn_client(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip,
					 void *l4, int proto, void *end)
{
	struct xvs_nat_client fresh = {}, *known;
	struct bpf_fib_lookup fib = {};

	/* Checked first: an established TCP flow's segment costs no lookup. */
	if (!opens_flow(l4, proto, end))
		return;
	known = bpf_map_lookup_elem(&xvs_nat_clients, &ip->saddr);
	if (refreshed(known, eth))
		return;
	fib.family = AF_INET;
	fib.ipv4_src = ip->daddr;
	fib.ipv4_dst = ip->saddr;
	if (!may_learn(ctx, eth, &fib, known))
		return;
	__builtin_memcpy(fresh.mac, eth->h_source, ETH_ALEN);
	fresh.learned = bpf_ktime_get_coarse_ns();
	bpf_map_update_elem(&xvs_nat_clients, &ip->saddr, &fresh, BPF_ANY);
}

/* learn_client for IPv6 clients. */
static __always_inline void learn_client6(struct xdp_md *ctx, struct ethhdr *eth,
					  struct ipv6hdr *ip6, void *l4, int proto, void *end)
{
	struct xvs_nat_client fresh = {}, *known;
	struct bpf_fib_lookup fib = {};

	if (!opens_flow(l4, proto, end))
		return;
	known = bpf_map_lookup_elem(&xvs_nat_clients6, &ip6->saddr);
	if (refreshed(known, eth))
		return;
	fib.family = AF_INET6;
	__builtin_memcpy(fib.ipv6_src, &ip6->daddr, sizeof(fib.ipv6_src));
	__builtin_memcpy(fib.ipv6_dst, &ip6->saddr, sizeof(fib.ipv6_dst));
	if (!may_learn(ctx, eth, &fib, known))
		return;
	__builtin_memcpy(fresh.mac, eth->h_source, ETH_ALEN);
	fresh.learned = bpf_ktime_get_coarse_ns();
	bpf_map_update_elem(&xvs_nat_clients6, &ip6->saddr, &fresh, BPF_ANY);
}

#endif
