/* The input checks on a packet to a service: what the kernel's IPv4 input and TCP rules
 * reject in front of IPVS. The pipeline holds the same rules (dataplane/src/screen.rs)
 * and counts under the same labels. Version and header length were checked by
 * parse_iphdr; what fails there goes to the kernel, which drops it itself. */
#ifndef XVS_SCREEN_H
#define XVS_SCREEN_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include "xvs_abi.h"
#include "csum.h"
#include "maps.h"

/* The header checksum over IHL words: the fixed 20 bytes at once, options (rare) in a
 * loop unrolled over constant offsets, each bounds-checked for the verifier. */
static __always_inline int ip_csum_ok(struct iphdr *ip, void *end)
{
	__u16 *w = (void *)ip;
	int words = ip->ihl * 2;
	__u32 sum = 0;

	if ((void *)(w + 10) > end)
		return 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
#pragma unroll
	for (int i = 10; i < 30; i++) {
		if (i < words) {
			if ((void *)(w + i + 1) > end)
				return 0;
			sum += w[i];
		}
	}
	return csum_fold32(sum) == 0xffff;
}

/* The walk over a copy of the IPv4 options: one option a step of bpf_loop (a loop over
 * them inline grows past the verifier's budget). */
struct xvs_opt_walk {
	__u8 opt[48];
	__u32 len;
	__u32 i;
	int routed;
};

static long xvs_opt_step(__u64 n, void *data)
{
	struct xvs_opt_walk *w = data;
	__u32 i = w->i;
	__u8 type, olen;

	if (i >= w->len || i >= 40)
		return 1;
	type = w->opt[i];
	if (type == 0)
		return 1;
	if (type == 1) {
		w->i = i + 1;
		return 0;
	}
	if (type == 131 || type == 137) {
		w->routed = 1;
		return 1;
	}
	olen = w->opt[i + 1];
	if (olen < 2)
		return 1;
	w->i = i + olen;
	return 0;
}

/* An IPv4 loose or strict source route option (LSRR 131, SSRR 137) among the options:
 * ip_rcv_options drops the packet unless accept_source_route is on (a host's default is
 * off). The walk stops at the end of the list or at a length it cannot follow (the
 * pipeline's screen::source_routed reads them the same way). */
static __always_inline int source_routed(struct xdp_md *ctx, struct iphdr *ip)
{
	struct xvs_opt_walk w = {};
	__u32 off = (void *)(ip + 1) - (void *)(long)ctx->data;

	w.len = ip->ihl * 4 - sizeof(*ip);
	if (w.len == 0 || w.len > 40 || bpf_xdp_load_bytes(ctx, off, w.opt, w.len))
		return 0;
	bpf_loop(40, xvs_opt_step, &w, 0);
	return w.routed;
}

/* The kernel's martian sources, and the VIPs and the director's own addresses. */
static __always_inline int martian_source(__be32 saddr)
{
	__u32 a = bpf_ntohl(saddr);
	__u32 first = a >> 24;

	if (first == 0 || first == 127 || (first & 0xf0) == 0xe0 || a == 0xffffffff)
		return 1;
	return bpf_map_lookup_elem(&xvs_local_addrs, &saddr) != NULL;
}

/* The transport checks of both families: ports, TCP offset and flags, UDP length, with
 * `l4_len` the bytes from the transport header to the end of the IP packet. */
static __always_inline int screen_l4(void *l4, int proto, __u32 l4_len, void *end)
{
	__be16 *ports = l4;

	if ((void *)(ports + 2) > end)
		return -1;
	if (!ports[0] || !ports[1])
		return XVS_STAT_DROP_PORT_ZERO;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		__u8 *flags = (__u8 *)l4 + 13;
		__u32 doff;

		if ((void *)(tcp + 1) > end)
			return -1;
		doff = tcp->doff * 4;
		if (doff < sizeof(*tcp) || doff > l4_len)
			return XVS_STAT_DROP_BAD_TCP_OFFSET;
		if (!((XVS_TCP_VALID_FLAGS >> (*flags & XVS_TCP_FLAGS_MASK)) & 1))
			return XVS_STAT_DROP_BAD_TCP_FLAGS;
	} else {
		struct udphdr *udp = l4;
		__u32 len;

		if ((void *)(udp + 1) > end)
			return -1;
		len = bpf_ntohs(udp->len);
		if (len < sizeof(*udp) || len > l4_len)
			return XVS_STAT_DROP_BAD_UDP_LENGTH;
	}
	return -1;
}

/* The drop counter of a packet to a service that fails a check, or -1. `l4` holds at
 * least the protocol's minimal header (parse_l4_ports). */
static __always_inline int screen(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip,
				  void *l4, int proto, void *end)
{
	__u32 tot = bpf_ntohs(ip->tot_len);
	__u32 ihl = ip->ihl * 4;

	/* A VIP is unicast: a flooded frame reaches every director, a backup too. */
	if (eth->h_dest[0] & 1)
		return XVS_STAT_DROP_L2_MULTICAST;
	if (tot < ihl || (void *)ip + tot > end)
		return XVS_STAT_DROP_BAD_IP_LENGTH;
	if (!ip_csum_ok(ip, end))
		return XVS_STAT_DROP_BAD_IP_CHECKSUM;
	if (ihl > sizeof(*ip) && source_routed(ctx, ip))
		return XVS_STAT_DROP_SOURCE_ROUTE;
	if (martian_source(ip->saddr))
		return XVS_STAT_DROP_MARTIAN_SOURCE;
	return screen_l4(l4, proto, tot - ihl, end);
}

/* The IPv6 martian sources (the pipeline's martian_source6): ::, ::1, ff00::/8,
 * ::ffff:0:0/96, and the VIPs and the director's own addresses. */
static __always_inline int martian_source6(struct ipv6hdr *ip6)
{
	__be32 *w = ip6->saddr.in6_u.u6_addr32;

	if (ip6->saddr.in6_u.u6_addr8[0] == 0xff)
		return 1;
	if (!w[0] && !w[1] && !w[2] && (!w[3] || w[3] == bpf_htonl(1)))
		return 1;
	if (!w[0] && !w[1] && w[2] == bpf_htonl(0xffff))
		return 1;
	return bpf_map_lookup_elem(&xvs_local_addrs6, &ip6->saddr) != NULL;
}

/* screen() for IPv6: the same checks, with the payload length in place of the total
 * length and no header checksum. `l4` holds at least the protocol's minimal header. */
static __always_inline int screen6(struct ethhdr *eth, struct ipv6hdr *ip6, void *l4, int proto,
				   void *end, int routed)
{
	void *ip_end = (void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len);

	if (eth->h_dest[0] & 1)
		return XVS_STAT_DROP_L2_MULTICAST;
	if (ip_end > end || ip_end < l4)
		return XVS_STAT_DROP_BAD_IP_LENGTH;
	/* ipv6_rthdr_rcv: not at its final destination, and source routing is off. */
	if (routed)
		return XVS_STAT_DROP_SOURCE_ROUTE;
	if (martian_source6(ip6))
		return XVS_STAT_DROP_MARTIAN_SOURCE;
	return screen_l4(l4, proto, ip_end - l4, end);
}

#endif
