/* Incremental Internet checksum updates (RFC 1624 eqn. 3) for headers rewritten in place. */
#ifndef XVS_CSUM_H
#define XVS_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>

static __always_inline __u16 csum_fold32(__u32 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)c;
}

/* The checksum `sum` (as stored, network order) after a 16-bit word changed. */
static __always_inline __sum16 csum_update16(__sum16 sum, __be16 from, __be16 to)
{
	__u32 c = (__u16)~sum;

	c += (__u16)~from;
	c += (__u16)to;
	return (__sum16)~csum_fold32(c);
}

/* The same for a 32-bit field (an address). */
static __always_inline __sum16 csum_update32(__sum16 sum, __be32 from, __be32 to)
{
	sum = csum_update16(sum, (__be16)(from >> 16), (__be16)(to >> 16));
	return csum_update16(sum, (__be16)(from & 0xffff), (__be16)(to & 0xffff));
}

/* The same for a 128-bit field (an IPv6 address), as four 32-bit words. */
static __always_inline __sum16 csum_update128(__sum16 sum, const __be32 *from, const __be32 *to)
{
#pragma unroll
	for (int i = 0; i < 4; i++)
		sum = csum_update32(sum, from[i], to[i]);
	return sum;
}

/* The folded sum of an IPv4 pseudo-header (addresses, protocol, transport length), as
 * a stack that offloads the checksum leaves it in the field (CHECKSUM_PARTIAL: a veth
 * hands such frames over from another namespace). Raw words: the sum is order-proof. */
static __always_inline __u16 csum_pseudo4(__be32 saddr, __be32 daddr, __u8 proto, __u16 len)
{
	__u32 c = (saddr & 0xffff) + (saddr >> 16) + (daddr & 0xffff) + (daddr >> 16);

	c += bpf_htons(proto) + bpf_htons(len);
	return csum_fold32(c);
}

/* The same for IPv6 (upper-layer length under 64 KiB: no jumbograms here). */
static __always_inline __u16 csum_pseudo6(const __be32 *saddr, const __be32 *daddr, __u8 proto,
					  __u16 len)
{
	__u32 c = bpf_htons(proto) + bpf_htons(len);

#pragma unroll
	for (int i = 0; i < 4; i++)
		c += (saddr[i] & 0xffff) + (saddr[i] >> 16) + (daddr[i] & 0xffff) + (daddr[i] >> 16);
	return csum_fold32(c);
}

/* A partial field (the pseudo-header's sum, not yet complemented) after an address in
 * the pseudo-header changed: the sum moves the other way from a checksum's. */
static __always_inline __sum16 csum_partial_update32(__sum16 sum, __be32 from, __be32 to)
{
	return (__sum16)~csum_update32((__sum16)~sum, from, to);
}

static __always_inline __sum16 csum_partial_update128(__sum16 sum, const __be32 *from,
						      const __be32 *to)
{
	return (__sum16)~csum_update128((__sum16)~sum, from, to);
}

#endif
