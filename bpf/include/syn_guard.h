/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The SYN guard: while a queue's worker is overloaded by new flows (its RX ring backs up
 * or its table evicts live flows, and it says so in xvs_syn_guard; `syn_guard: auto`), or
 * always with `syn_guard: on`, a new connection's SYN reaches
 * the worker only on its retransmission. A real client retransmits the same SYN (the
 * same addresses, ports and sequence number) after its RTO; a spoofed flood sends each
 * source once. Every SYN shed sets its bits in xvs_syn_seen (a Bloom filter that empties
 * itself: xvs_abi.h), where its retransmission finds them for 4.3 to 8.6 s; a flood SYN
 * whose bits others set passes too, more often the faster the flood (docs/input.md). The
 * flood is dropped here, at XDP's cost, and the ring is left to known flows, real clients
 * and the few flood SYNs that pass. */
#ifndef XVS_SYN_GUARD_H
#define XVS_SYN_GUARD_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"
#include "maps.h"
#include "stats.h"

/* Murmur3's finaliser: every input bit moves every output bit. */
static __always_inline __u64 guard_mix(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Whether the guard is on for the packet's queue at `now`. */
static __always_inline int guard_on(struct xdp_md *ctx, const struct xvs_steer_config *cfg,
				    __u64 now)
{
	__u32 queue = ctx->rx_queue_index;
	struct xvs_syn_guard *g;

	if (!cfg || !(cfg->flags & (XVS_CFG_SYN_GUARD | XVS_CFG_SYN_GUARD_AUTO)))
		return 0;
	if (cfg->flags & XVS_CFG_SYN_GUARD)
		return 1;
	g = bpf_map_lookup_elem(&xvs_syn_guard, &queue);
	return g && now < g->until;
}

/* The keyed hash of a SYN: source, destination, ports and sequence number, each word
 * mixed with the per-load key, so that where a SYN's bits fall cannot be worked out from
 * outside (not a cryptographic MAC: the filter's answers are all an attacker sees). */
static __always_inline __u64 syn_hash(const struct svc_packet *p, int v6, const struct tcphdr *tcp,
				      const struct xvs_syn_key *key)
{
	__u64 h = guard_mix(key->k[0] ^ (((__u64)tcp->seq << 32) | ((__u64)tcp->source << 16) |
					 tcp->dest));
	__u32 a[8];

	if (v6) {
		__builtin_memcpy(a, &p->ip6->saddr, 16);
		__builtin_memcpy(a + 4, &p->ip6->daddr, 16);
		h = guard_mix(h ^ key->k[1] ^ (((__u64)a[0] << 32) | a[1]));
		h = guard_mix(h ^ key->k[0] ^ (((__u64)a[2] << 32) | a[3]));
		h = guard_mix(h ^ key->k[1] ^ (((__u64)a[4] << 32) | a[5]));
		return guard_mix(h ^ key->k[0] ^ (((__u64)a[6] << 32) | a[7]));
	}
	return guard_mix(h ^ key->k[1] ^ (((__u64)p->ip->saddr << 32) | p->ip->daddr));
}

/* Whether a filter half holds every bit of `bits` for the epoch `epoch` or the one
 * before. */
static __always_inline int seen_in(__u32 half, __u32 epoch, __u32 bits)
{
	__u32 e = half >> XVS_SYN_BITS;

	return (half & bits) == bits &&
	       (e == (epoch & XVS_SYN_EPOCH_MASK) || e == ((epoch - 1) & XVS_SYN_EPOCH_MASK));
}

/* A new connection's SYN while the guard is on: dropped and remembered the first time,
 * let through when it comes again within two epochs (4.3 to 8.6 s). -1 for every other
 * packet (and for a retransmission): the caller goes on. */
static __always_inline int syn_guard(struct xdp_md *ctx, const struct svc_packet *p, int v6,
				     const struct xvs_steer_config *cfg)
{
	struct tcphdr *tcp = p->l4;
	__u32 slot, bits, epoch, tag, zero = 0, *halves, *cur;
	struct xvs_syn_key *key;
	__u64 h, now;

	if (p->proto != IPPROTO_TCP || (void *)(tcp + 1) > p->end || !tcp->syn || tcp->ack)
		return -1;
	now = bpf_ktime_get_coarse_ns();
	if (!guard_on(ctx, cfg, now))
		return -1;
	key = bpf_map_lookup_elem(&xvs_syn_key, &zero);
	if (!key)
		return -1;
	h = syn_hash(p, v6, tcp, key);
	slot = (__u32)h & (XVS_SYN_SEEN_SLOTS - 1);
	/* Three bits of the half's 20: a flood SYN passes only if all three are set. */
	bits = (1U << ((__u32)(h >> 32) % XVS_SYN_BITS)) | (1U << ((__u32)(h >> 40) % XVS_SYN_BITS)) |
	       (1U << ((__u32)(h >> 48) % XVS_SYN_BITS));
	halves = bpf_map_lookup_elem(&xvs_syn_seen, &slot);
	if (!halves)
		return -1;
	epoch = (__u32)(now >> XVS_SYN_EPOCH_SHIFT);
	if (seen_in(halves[0], epoch, bits) || seen_in(halves[1], epoch, bits))
		return -1;
	cur = &halves[epoch & 1];
	tag = (epoch & XVS_SYN_EPOCH_MASK) << XVS_SYN_BITS;
	/* Another CPU's bits in the same half are kept (an atomic or, of the whole 8-byte
	 * slot: BPF has no 32-bit atomics before -mcpu=v3; the other half gets zeros); a half
	 * of an older epoch is replaced (a race there may lose a bit: that SYN is shed once
	 * more). */
	if ((*cur & ~((1U << XVS_SYN_BITS) - 1)) != tag)
		*cur = tag | bits;
	else
		__sync_fetch_and_or((__u64 *)halves, (__u64)bits << (32 * (epoch & 1)));
	return count(XVS_STAT_DROP_SYN_GUARD, XDP_DROP);
}

#endif
