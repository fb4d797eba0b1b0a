/* Incremental Internet checksum updates (RFC 1624 eqn. 3) for headers rewritten in place. */
#ifndef XVS_CSUM_H
#define XVS_CSUM_H

#include <linux/types.h>

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

#endif
