/* The fast path: an established DR, TUN or NAT flow's requests forwarded by the steering
 * program itself, with the decision its worker wrote into xvs_fast_flows; -1 sends the
 * packet on to the worker (no entry, a stale or idle one, SYN/FIN/RST, too big for the
 * tunnel). */
#ifndef XVS_FAST_H
#define XVS_FAST_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xvs_abi.h"
#include "csum.h"
#include "maps.h"
#include "nat_clients.h"

#define XVS_NSEC_PER_SEC 1000000000ULL
#ifndef IP_DF
#define IP_DF 0x4000
#endif

/* The fast path's "to the worker" after bpf_xdp_adjust_head was called: the verifier
 * holds every packet pointer invalid from then on, so the caller must not read the frame
 * again (plain -1: it may). */
#define FAST_MOVED -2

/* The IPv4 header checksum of a 20-byte header whose check field is zero. */
static __always_inline __u16 ipv4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The worker's TUN rewrite (dataplane/src/rewrite/tun.rs), in XDP: 20 bytes of headroom
 * become the outer header, TOS and DF copied from the inner one, TTL 64. */
static __always_inline int fast_encapsulate(struct xdp_md *ctx, const struct xvs_fast_value *v,
					    const __u8 *src_mac)
{
	struct ethhdr *eth;
	struct iphdr *outer, *inner;
	void *data, *end;

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return FAST_MOVED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	outer = data + sizeof(*eth);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > end) {
		/* Cannot happen (the packet was parsed): give the worker its frame back. */
		bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr));
		return FAST_MOVED;
	}
	__builtin_memcpy(eth->h_dest, v->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = inner->tos;
	outer->tot_len = bpf_htons(bpf_ntohs(inner->tot_len) + sizeof(*outer));
	/* Without DF the outer packet may be fragmented on the way: give it an ID. */
	outer->id = (inner->frag_off & bpf_htons(IP_DF)) ? 0 : (__be16)bpf_get_prandom_u32();
	outer->frag_off = inner->frag_off & bpf_htons(IP_DF);
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = v->tun_saddr;
	outer->daddr = v->daddr;
	outer->check = ipv4_csum(outer);
	return XDP_TX;
}

/* The worker's NAT rewrite (dataplane/src/rewrite/nat.rs), in XDP: the destination
 * becomes the real server's address and port, checksums updated incrementally (a UDP
 * datagram without one stays so). It leaves by XDP_TX, or on a two-arm director by a
 * redirect to the internal interface, from that interface's MAC. */
static __always_inline int fast_dnat(struct ethhdr *eth, struct iphdr *ip, void *l4, void *end,
				     int proto, const struct xvs_fast_value *v,
				     const struct xvs_local_mac *local,
				     const struct xvs_steer_config *cfg)
{
	__u32 out = cfg ? cfg->internal_ifindex : 0;
	__be16 *dport = (__be16 *)l4 + 1;
	__sum16 *l4sum;

	if (out) {
		local = bpf_map_lookup_elem(&xvs_local_macs, &out);
		if (!local)
			return -1;
	}
	if (proto == IPPROTO_TCP)
		l4sum = &((struct tcphdr *)l4)->check;
	else
		l4sum = &((struct udphdr *)l4)->check;
	if ((void *)(l4sum + 1) > end)
		return -1;
	if (proto == IPPROTO_TCP || *l4sum) {
		*l4sum = csum_update16(csum_update32(*l4sum, ip->daddr, v->daddr), *dport,
				       v->nat_port);
		if (proto == IPPROTO_UDP && !*l4sum)
			*l4sum = 0xffff;
	}
	ip->check = csum_update32(ip->check, ip->daddr, v->daddr);
	ip->daddr = v->daddr;
	*dport = v->nat_port;
	__builtin_memcpy(eth->h_dest, v->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, local->mac, ETH_ALEN);
	return out ? bpf_redirect(out, 0) : XDP_TX;
}

/* Whether a packet may take the fast path at all: SYN, FIN and RST are the worker's. */
static __always_inline int fast_eligible(void *l4, void *end, int proto, __u32 generation,
					 const struct xvs_local_mac *local)
{
	__be16 *ports = l4;

	if (!generation || !local)
		return 0;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		return (void *)(tcp + 1) <= end && !tcp->syn && !tcp->fin && !tcp->rst;
	}
	return (void *)(ports + 2) <= end;
}

/* How long an entry of the current generation was idle (ns), or -1: stale, or idle
 * past its timeout. Its last-seen time is refreshed to the second (one write per
 * flow and second, not per packet). */
static __always_inline __s64 fast_idle(struct xvs_fast_value *v, __u32 generation, __u64 now)
{
	__u64 idle;

	if (v->generation != generation)
		return -1;
	idle = now - v->last_seen;
	if (idle > (__u64)v->timeout * XVS_NSEC_PER_SEC)
		return -1;
	if (idle >= XVS_NSEC_PER_SEC)
		v->last_seen = now;
	return (__s64)idle;
}

/* A UDP NAT client's learned MAC is confirmed by its flow's traffic at most once per
 * 2^XVS_NAT_CONFIRM_SHIFT ns (17 s), well within nat_clients.h's half freshness. */
#define XVS_NAT_CONFIRM_SHIFT 34

/* What a NAT flow's worker does at its packets, kept up here (the worker sees only its
 * SYN, FIN and RST): after idling half its timeout, its reply key is told again (the
 * LRU map may have lost it, and its replies would leave untranslated); and a UDP
 * client's learned MAC is confirmed (a spoofer must wait for the client's silence). */
static __always_inline void fast_nat_keep(struct ethhdr *eth, struct iphdr *ip, __be16 *ports,
					  int proto, const struct xvs_fast_value *v, __u64 idle,
					  __u64 now)
{
	if (idle >= (__u64)v->timeout * XVS_NSEC_PER_SEC / 2) {
		struct xvs_fast_key k = {
			.saddr = v->daddr, .daddr = ip->saddr, .sport = v->nat_port,
			.dport = ports[0], .proto = proto,
		};
		__u32 zero = 0;

		bpf_map_update_elem(&xvs_nat_conns, &k, &zero, BPF_NOEXIST);
	}
	if (proto == IPPROTO_UDP &&
	    (now >> XVS_NAT_CONFIRM_SHIFT) != ((now - idle) >> XVS_NAT_CONFIRM_SHIFT))
		refreshed(bpf_map_lookup_elem(&xvs_nat_clients, &ip->saddr), eth);
}

static __always_inline void fast_count(struct xvs_fast_value *v, __u64 len)
{
	struct xvs_nat_out *n = bpf_map_lookup_elem(&xvs_fast_stats, &v->stats_slot);

	if (n) {
		n->packets++;
		n->bytes += len;
	}
}

/* DR over IPv6: the MACs rewritten, as over IPv4 (no tunnel or NAT66 here yet). */
static __always_inline int fast_path6(struct xdp_md *ctx, struct ethhdr *eth, struct ipv6hdr *ip6,
				      void *l4, void *end, int proto, __u32 generation,
				      const struct xvs_local_mac *local)
{
	struct xvs_fast6_key k = {};
	struct xvs_fast_value *v;
	__be16 *ports = l4;

	if (!fast_eligible(l4, end, proto, generation, local))
		return -1;
	__builtin_memcpy(k.saddr, &ip6->saddr, sizeof(k.saddr));
	__builtin_memcpy(k.daddr, &ip6->daddr, sizeof(k.daddr));
	k.sport = ports[0];
	k.dport = ports[1];
	k.proto = proto;
	v = bpf_map_lookup_elem(&xvs_fast_flows6, &k);
	if (!v || fast_idle(v, generation, bpf_ktime_get_coarse_ns()) < 0 || v->tun || v->nat)
		return -1;
	__builtin_memcpy(eth->h_dest, v->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, local->mac, ETH_ALEN);
	fast_count(v, ctx->data_end - ctx->data);
	return XDP_TX;
}

static __always_inline int fast_path(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip,
				     void *l4, void *end, int proto,
				     const struct xvs_steer_config *cfg,
				     const struct xvs_local_mac *local)
{
	__u32 generation = cfg ? cfg->fast_generation : 0;
	struct xvs_fast_key k = {};
	struct xvs_fast_value *v;
	__be16 *ports = l4;
	__u64 len, now;
	__s64 idle;
	int ret;

	if (!fast_eligible(l4, end, proto, generation, local))
		return -1;
	k.saddr = ip->saddr;
	k.daddr = ip->daddr;
	k.sport = ports[0];
	k.dport = ports[1];
	k.proto = proto;
	v = bpf_map_lookup_elem(&xvs_fast_flows, &k);
	/* The clock only for a hit: a packet on its way to a worker does not pay for it. */
	if (!v)
		return -1;
	now = bpf_ktime_get_coarse_ns();
	idle = fast_idle(v, generation, now);
	if (idle < 0)
		return -1;
	len = ctx->data_end - ctx->data;
	if (v->nat) {
		fast_nat_keep(eth, ip, ports, proto, v, idle, now);
		ret = fast_dnat(eth, ip, l4, end, proto, v, local, cfg);
		if (ret < 0)
			return ret;
	} else if (v->tun) {
		if (bpf_ntohs(ip->tot_len) + sizeof(struct iphdr) > v->mtu)
			return -1;
		ret = fast_encapsulate(ctx, v, local->mac);
		if (ret < 0)
			return ret;
	} else {
		__builtin_memcpy(eth->h_dest, v->dst_mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, local->mac, ETH_ALEN);
		ret = XDP_TX;
	}
	fast_count(v, len);
	return ret;
}

#endif
