/* Bounds-checked header parsing: one helper per header, each returns the next protocol,
 * or a negative XVS_PARSE_* error. */
#ifndef XVS_PARSE_H
#define XVS_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>

#include "xvs_abi.h"

/* The address families bpf_fib_lookup() takes (not in the BPF headers). */
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* ICMP, declared here: linux/icmp.h pulls in libc headers that BPF builds lack. */
struct xvs_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

/* The packet's ingress ifindex, loaded straight from the context register. Read as
 * `ctx->ingress_ifindex` in several inlined helpers, clang may keep `ctx + 12` as a
 * pointer of its own and load through it later, which the verifier refuses
 * ("dereference of modified ctx ptr"). 12: its offset in struct xdp_md. */
static __always_inline __u32 ingress_ifindex(const struct xdp_md *ctx)
{
	__u32 v;

	asm volatile("%0 = *(u32 *)(%1 + 12)" : "=r"(v) : "r"(ctx));
	return v;
}

#define XVS_PARSE_TRUNCATED -1
#define XVS_PARSE_BAD_HEADER -2

struct hdr_cursor {
	void *pos;
	void *end;
};

static __always_inline int parse_ethhdr(struct hdr_cursor *c, struct ethhdr **eth)
{
	struct ethhdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return XVS_PARSE_TRUNCATED;
	c->pos = h + 1;
	*eth = h;
	return h->h_proto; /* network byte order */
}

static __always_inline int parse_iphdr(struct hdr_cursor *c, struct iphdr **ip)
{
	struct iphdr *h = c->pos;
	int len;

	if ((void *)(h + 1) > c->end)
		return XVS_PARSE_TRUNCATED;
	len = h->ihl * 4;
	if (h->version != 4 || len < (int)sizeof(*h))
		return XVS_PARSE_BAD_HEADER;
	/* Options are skipped, not read: the verifier only needs the end checked. */
	if (c->pos + len > c->end)
		return XVS_PARSE_TRUNCATED;
	c->pos += len;
	*ip = h;
	return h->protocol;
}

#define XVS_PARSE_FRAGMENT -3
#define XVS_PARSE_EXT -4

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60

/* The IPv6 header and its extension headers, at most XVS_MAX_EXT_HEADERS of them (the
 * pipeline's walk, dataplane/src/wire/ipv6.rs, decides the same): returns the upper
 * protocol with the cursor on it, or XVS_PARSE_FRAGMENT (a fragment but an atomic one),
 * XVS_PARSE_EXT (too long, truncated, hop-by-hop not first), XVS_PARSE_TRUNCATED,
 * XVS_PARSE_BAD_HEADER (not version 6). `*routed` is set when a routing header has
 * segments left: the packet is not at its final destination yet. */
static __always_inline int parse_ipv6hdr(struct hdr_cursor *c, struct ipv6hdr **ip6, int *routed)
{
	struct ipv6hdr *h = c->pos;
	__u8 nh;
	__u32 len;

	if ((void *)(h + 1) > c->end)
		return XVS_PARSE_TRUNCATED;
	if (h->version != 6)
		return XVS_PARSE_BAD_HEADER;
	*ip6 = h;
	c->pos = h + 1;
	nh = h->nexthdr;
#pragma unroll
	for (int i = 0; i <= XVS_MAX_EXT_HEADERS; i++) {
		__u8 *e = c->pos;

		if (nh != NEXTHDR_HOP && nh != NEXTHDR_ROUTING && nh != NEXTHDR_DEST &&
		    nh != NEXTHDR_FRAGMENT && nh != NEXTHDR_AUTH)
			return nh;
		if ((void *)(e + 8) > c->end)
			return XVS_PARSE_EXT;
		if (nh == NEXTHDR_FRAGMENT)
			len = 8;
		else if (nh == NEXTHDR_AUTH)
			len = ((__u32)e[1] + 2) * 4;
		else
			len = ((__u32)e[1] + 1) * 8;
		if (c->pos + len > c->end)
			return XVS_PARSE_EXT;
		if (i == XVS_MAX_EXT_HEADERS)
			return XVS_PARSE_EXT;
		if (nh == NEXTHDR_HOP && i != 0)
			return XVS_PARSE_EXT;
		/* Offset and M: an atomic fragment (both clear, RFC 6946) is a whole packet. */
		if (nh == NEXTHDR_FRAGMENT && (((e[2] << 8) | e[3]) & 0xfff9))
			return XVS_PARSE_FRAGMENT;
		if (nh == NEXTHDR_ROUTING && e[3])
			*routed = 1;
		nh = e[0];
		c->pos += len;
	}
	return XVS_PARSE_EXT;
}

/* TCP and UDP both start with the source and destination ports; the full minimal
 * header is required so a worker never sees a half header. */
static __always_inline int parse_l4_ports(struct hdr_cursor *c, int min_len, __be16 *dport)
{
	__be16 *ports = c->pos;

	if (c->pos + min_len > c->end)
		return XVS_PARSE_TRUNCATED;
	*dport = ports[1];
	return 0;
}

/* Byte by byte: clang emits a libc call for memcmp, which BPF cannot link. */
static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] &&
	       a[5] == b[5];
}

#endif
