/* NAT replies in XDP: a real server's reply to a connection a worker knows
 * (xvs_nat_conns) has its source (and, for an ICMP error, the quoted destination) turned
 * back into VIP:vport and leaves towards its client: by XDP_TX, a redirect to the
 * external interface, or the queue's worker (XVS_CFG_NAT_RELAY). Also the fragment rule
 * for NAT real servers. */
#ifndef XVS_NAT_H
#define XVS_NAT_H

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
#include "parse.h"
#include "stats.h"

/* Counts a frame the program sends out for the NAT real server of id `slot`. */
static __always_inline void count_out(struct xdp_md *ctx, __u32 slot)
{
	struct xvs_nat_out *o = bpf_map_lookup_elem(&xvs_nat_out, &slot);

	if (o) {
		o->packets++;
		o->bytes += ctx->data_end - ctx->data;
	}
}

/* Whether a translated NAT packet going back out of the interface it came in on is
 * handed to the queue's worker to send (XVS_CFG_NAT_RELAY): one-arm NAT only, where that
 * interface is the one whose sockets the XSK map holds. */
static __always_inline int nat_relay(void)
{
	__u32 zero = 0;
	struct xvs_steer_config *cfg = bpf_map_lookup_elem(&xvs_steer_config, &zero);

	return cfg && (cfg->flags & XVS_CFG_NAT_RELAY) && !cfg->external_ifindex;
}

/* Whether partial transport checksums are moved as such (XVS_CFG_PARTIAL_CSUM). */
static __always_inline int partial_csums(void)
{
	__u32 zero = 0;
	struct xvs_steer_config *cfg = bpf_map_lookup_elem(&xvs_steer_config, &zero);

	return cfg && (cfg->flags & XVS_CFG_PARTIAL_CSUM);
}

/* Counts a translated NAT packet for its real server and sends it out of `out` (0: the
 * interface it came in on, by the worker's socket when relaying). */
static __always_inline int nat_deliver(struct xdp_md *ctx, __u32 slot, __u32 out, int stat)
{
	count_out(ctx, slot);
	if (!out && nat_relay())
		return count(stat, bpf_redirect_map(&xvs_xsks, ctx->rx_queue_index, XDP_DROP));
	if (!out)
		return count(stat, XDP_TX);
	return count(stat, bpf_redirect(out, 0));
}

/* The client's next hop from the kernel's FIB (`fib` holds the family's fields), for a
 * NAT packet whose client's MAC was not learned; none: dropped, counted. */
static __always_inline int nat_fib_send(struct xdp_md *ctx, struct ethhdr *eth,
					struct bpf_fib_lookup *fib, __u32 out, __u32 slot, int stat)
{
	fib->ifindex = out ? out : ingress_ifindex(ctx);
	if (bpf_fib_lookup(ctx, fib, sizeof(*fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return count(XVS_STAT_DROP_NAT_NO_NEIGH, XDP_DROP);
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	out = fib->ifindex == ingress_ifindex(ctx) ? 0 : fib->ifindex;
	if (stat == XVS_STAT_NAT_REPLY)
		stat = XVS_STAT_NAT_REPLY_FIB;
	return nat_deliver(ctx, slot, out, stat);
}

/* Sends a translated NAT packet on towards its client (the IPv4 destination): to the MAC
 * its requests came from, else the kernel FIB's next hop, else nowhere (counted). */
static __always_inline int nat_send(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip,
				    struct xvs_nat_value *nat, int stat)
{
	struct xvs_nat_client *client = bpf_map_lookup_elem(&xvs_nat_clients, &ip->daddr);
	struct bpf_fib_lookup fib = {};
	__u32 out = nat->out_ifindex;

	if (client) {
		__builtin_memcpy(eth->h_dest, client->mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, nat->src_mac, ETH_ALEN);
	} else {
		fib.family = AF_INET;
		fib.l4_protocol = ip->protocol;
		fib.tot_len = bpf_ntohs(ip->tot_len);
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = ip->daddr;
		return nat_fib_send(ctx, eth, &fib, out, nat->stats_slot, stat);
	}
	return nat_deliver(ctx, nat->stats_slot, out, stat);
}

/* nat_send for IPv6: to the MAC the client's requests came from, else the FIB's next
 * hop, else nowhere (counted). */
static __always_inline int nat_send6(struct xdp_md *ctx, struct ethhdr *eth, struct ipv6hdr *ip6,
				     struct xvs_nat6_value *nat, int stat)
{
	struct xvs_nat_client *client = bpf_map_lookup_elem(&xvs_nat_clients6, &ip6->daddr);
	struct bpf_fib_lookup fib = {};
	__u32 out = nat->out_ifindex;

	if (client) {
		__builtin_memcpy(eth->h_dest, client->mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, nat->src_mac, ETH_ALEN);
	} else {
		fib.family = AF_INET6;
		fib.l4_protocol = ip6->nexthdr;
		fib.tot_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, sizeof(fib.ipv6_dst));
		return nat_fib_send(ctx, eth, &fib, out, nat->stats_slot, stat);
	}
	return nat_deliver(ctx, nat->stats_slot, out, stat);
}

/* Whether a worker knows the NAT connection whose replies go from raddr:rport to
 * caddr:cport (xvs_nat_conns): only those are translated, as IPVS translates only
 * packets of connections it has. */
static __always_inline int nat_known(__be32 raddr, __be16 rport, __be32 caddr, __be16 cport,
				     __u8 proto)
{
	struct xvs_fast_key k = {
		.saddr = raddr, .daddr = caddr, .sport = rport, .dport = cport, .proto = proto,
	};

	return bpf_map_lookup_elem(&xvs_nat_conns, &k) != NULL;
}

/* nat_known for IPv6 connections. */
static __always_inline int nat_known6(const struct in6_addr *raddr, __be16 rport,
				      const struct in6_addr *caddr, __be16 cport, __u8 proto)
{
	struct xvs_fast6_key k = { .sport = rport, .dport = cport, .proto = proto };

	__builtin_memcpy(k.saddr, raddr, sizeof(k.saddr));
	__builtin_memcpy(k.daddr, caddr, sizeof(k.daddr));
	return bpf_map_lookup_elem(&xvs_nat_conns6, &k) != NULL;
}

/* Two IPv6 addresses are equal (word by word: no memcmp in BPF). */
static __always_inline int addr6_eq(const struct in6_addr *a, const struct in6_addr *b)
{
	return a->in6_u.u6_addr32[0] == b->in6_u.u6_addr32[0] &&
	       a->in6_u.u6_addr32[1] == b->in6_u.u6_addr32[1] &&
	       a->in6_u.u6_addr32[2] == b->in6_u.u6_addr32[2] &&
	       a->in6_u.u6_addr32[3] == b->in6_u.u6_addr32[3];
}

/* Replies are translated only as they come from the real servers' side: with a second
 * interface (two-arm NAT), never from the clients' one. */
static __always_inline int nat_side(struct xdp_md *ctx, struct xvs_steer_config *cfg)
{
	return !cfg || !cfg->external_ifindex || cfg->external_ifindex != ingress_ifindex(ctx);
}

/* A NAT66 reply: source [RIP]:rport becomes [VIP]:vport; the transport checksum covers
 * the address through the pseudo-header (IPv6 has no header checksum). */
static __always_inline int nat_reply6(struct xdp_md *ctx, struct ethhdr *eth, struct ipv6hdr *ip6,
				      void *l4, int proto, void *end)
{
	struct xvs_nat6_key key = { .proto = proto };
	struct xvs_nat6_value *nat;
	__be16 *sport = l4;
	__sum16 *l4sum;

	if ((void *)(sport + 2) > end)
		return -1;
	__builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
	key.port = *sport;
	nat = bpf_map_lookup_elem(&xvs_nat_backends6, &key);
	if (!nat || bpf_map_lookup_elem(&xvs_local_addrs6, &ip6->daddr))
		return -1;
	if (!nat_known6(&ip6->saddr, sport[0], &ip6->daddr, sport[1], proto))
		return count(XVS_STAT_PASS_NAT_UNKNOWN, XDP_PASS);
	if (proto == IPPROTO_TCP)
		l4sum = &((struct tcphdr *)l4)->check;
	else
		l4sum = &((struct udphdr *)l4)->check;
	if ((void *)(l4sum + 1) > end)
		return count(XVS_STAT_PASS_TRUNCATED, XDP_PASS);
	if (partial_csums() &&
	    *l4sum == csum_pseudo6((__be32 *)&ip6->saddr, (__be32 *)&ip6->daddr, proto,
				   bpf_ntohs(ip6->payload_len))) {
		/* Left partial by a veth: moved with the address; the worker relaying it
		 * completes it (rewrite/partial.rs). */
		*l4sum = csum_partial_update128(*l4sum, (__be32 *)&ip6->saddr, (__be32 *)nat->vip);
	} else {
		*l4sum = csum_update128(*l4sum, (__be32 *)&ip6->saddr, (__be32 *)nat->vip);
		*l4sum = csum_update16(*l4sum, *sport, nat->vport);
		/* Over IPv6 a UDP checksum is mandatory: 0 is sent as all ones. */
		if (proto == IPPROTO_UDP && !*l4sum)
			*l4sum = 0xffff;
	}
	__builtin_memcpy(&ip6->saddr, nat->vip, sizeof(nat->vip));
	*sport = nat->vport;
	return nat_send6(ctx, eth, ip6, nat, XVS_STAT_NAT_REPLY);
}

/* An ICMPv6 error (destination unreachable, packet too big, time exceeded, parameter
 * problem) on its way to a NAT66 client, quoting its packet to [RIP]:rport: as over
 * IPv4, the quoted destination becomes [VIP]:vport again and the outer source the VIP;
 * the ICMPv6 checksum (which covers the outer addresses too) and the quoted transport
 * checksum, when quoted, are updated. */
static __always_inline int nat_icmp6(struct xdp_md *ctx, struct ethhdr *eth, struct ipv6hdr *ip6,
				     void *l4, void *end)
{
	struct xvs_icmphdr *icmp = l4;
	struct xvs_nat6_key key = {};
	struct xvs_nat6_value *nat;
	struct ipv6hdr *in;
	__be16 *ports, old16, new16;
	__sum16 *l4sum;

	if ((void *)(icmp + 1) > end || icmp->type < 1 || icmp->type > 4)
		return -1;
	in = (void *)(icmp + 1);
	if ((void *)(in + 1) > end)
		return -1;
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return -1;
	ports = (void *)(in + 1);
	if ((void *)(ports + 2) > end)
		return -1;
	__builtin_memcpy(key.addr, &in->daddr, sizeof(key.addr));
	key.port = ports[1];
	key.proto = in->nexthdr;
	nat = bpf_map_lookup_elem(&xvs_nat_backends6, &key);
	if (!nat || bpf_map_lookup_elem(&xvs_local_addrs6, &ip6->daddr))
		return -1;
	/* The quoted packet is the client's request: the reply's key reversed; and the
	 * error goes to that client, or it would carry anything anywhere as the VIP's. */
	if (!nat_known6(&in->daddr, ports[1], &in->saddr, ports[0], in->nexthdr) ||
	    !addr6_eq(&ip6->daddr, &in->saddr))
		return count(XVS_STAT_PASS_NAT_UNKNOWN, XDP_PASS);

	l4sum = in->nexthdr == IPPROTO_TCP ? (void *)ports + 16 : (void *)ports + 6;
	if ((void *)(l4sum + 1) <= end && (in->nexthdr == IPPROTO_TCP || *l4sum)) {
		old16 = *l4sum;
		new16 = csum_update16(csum_update128(old16, (__be32 *)&in->daddr, (__be32 *)nat->vip),
				      ports[1], nat->vport);
		*l4sum = new16;
		icmp->checksum = csum_update16(icmp->checksum, old16, new16);
	}
	icmp->checksum = csum_update16(icmp->checksum, ports[1], nat->vport);
	ports[1] = nat->vport;
	icmp->checksum = csum_update128(icmp->checksum, (__be32 *)&in->daddr, (__be32 *)nat->vip);
	__builtin_memcpy(&in->daddr, nat->vip, sizeof(nat->vip));
	/* The outer source, in the pseudo-header. */
	icmp->checksum = csum_update128(icmp->checksum, (__be32 *)&ip6->saddr, (__be32 *)nat->vip);
	__builtin_memcpy(&ip6->saddr, nat->vip, sizeof(nat->vip));
	return nat_send6(ctx, eth, ip6, nat, XVS_STAT_NAT_ICMP);
}

/* A NAT reply: source RIP:rport becomes VIP:vport, checksums updated in place. */
static __always_inline int nat_reply(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip, void *l4,
				     int proto, void *end)
{
	struct xvs_nat_key key = { .addr = ip->saddr, .proto = proto };
	struct xvs_nat_value *nat;
	__be16 *sport = l4;
	__sum16 *l4sum;

	if ((void *)(sport + 2) > end)
		return -1;
	key.port = *sport;
	nat = bpf_map_lookup_elem(&xvs_nat_backends, &key);
	if (!nat || bpf_map_lookup_elem(&xvs_local_addrs, &ip->daddr))
		return -1;
	if (!nat_known(ip->saddr, sport[0], ip->daddr, sport[1], proto))
		return count(XVS_STAT_PASS_NAT_UNKNOWN, XDP_PASS);
	if (proto == IPPROTO_TCP)
		l4sum = &((struct tcphdr *)l4)->check;
	else
		l4sum = &((struct udphdr *)l4)->check;
	if ((void *)(l4sum + 1) > end)
		return count(XVS_STAT_PASS_TRUNCATED, XDP_PASS);
	/* UDP over IPv4 may carry no checksum (0): it stays without one. */
	if ((proto == IPPROTO_TCP || *l4sum) && partial_csums() &&
	    *l4sum == csum_pseudo4(ip->saddr, ip->daddr, proto,
				   bpf_ntohs(ip->tot_len) - ip->ihl * 4)) {
		/* Left partial by a veth: moved with the address; the worker relaying it
		 * completes it (rewrite/partial.rs). */
		*l4sum = csum_partial_update32(*l4sum, ip->saddr, nat->vip);
	} else if (proto == IPPROTO_TCP || *l4sum) {
		*l4sum = csum_update32(*l4sum, ip->saddr, nat->vip);
		*l4sum = csum_update16(*l4sum, *sport, nat->vport);
		if (proto == IPPROTO_UDP && !*l4sum)
			*l4sum = 0xffff;
	}
	ip->check = csum_update32(ip->check, ip->saddr, nat->vip);
	ip->saddr = nat->vip;
	*sport = nat->vport;
	return nat_send(ctx, eth, ip, nat, XVS_STAT_NAT_REPLY);
}

/* An ICMP error on its way to a NAT client, quoting the client's packet to RIP:rport
 * (a real server's fragmentation-needed, say): as IPVS does, the quoted destination
 * becomes VIP:vport again and the outer source the VIP. Every checksum is updated:
 * outer IP, ICMP, and the quoted IP and TCP/UDP headers when quoted whole. */
static __always_inline int nat_icmp(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip, void *l4,
				    void *end)
{
	struct xvs_icmphdr *icmp = l4;
	struct xvs_nat_key key = {};
	struct xvs_nat_value *nat;
	struct iphdr *in;
	__be16 *ports, old16, new16;
	__sum16 *l4sum;
	__be32 old_daddr;

	if ((void *)(icmp + 1) > end)
		return -1;
	if (icmp->type != ICMP_DEST_UNREACH && icmp->type != ICMP_TIME_EXCEEDED &&
	    icmp->type != ICMP_PARAMETERPROB && icmp->type != ICMP_SOURCE_QUENCH)
		return -1;
	in = (void *)(icmp + 1);
	if ((void *)(in + 1) > end || in->ihl != 5)
		return -1;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return -1;
	ports = (void *)(in + 1);
	if ((void *)(ports + 2) > end)
		return -1;
	key.addr = in->daddr;
	key.port = ports[1];
	key.proto = in->protocol;
	nat = bpf_map_lookup_elem(&xvs_nat_backends, &key);
	if (!nat || bpf_map_lookup_elem(&xvs_local_addrs, &ip->daddr))
		return -1;
	/* The quoted packet is the client's request: the reply's key reversed; and the
	 * error goes to that client, or it would carry anything anywhere as the VIP's. */
	if (!nat_known(in->daddr, ports[1], in->saddr, ports[0], in->protocol) ||
	    ip->daddr != in->saddr)
		return count(XVS_STAT_PASS_NAT_UNKNOWN, XDP_PASS);

	old_daddr = in->daddr;
	/* The quoted transport checksum, if quoted: it covers the address and the port. */
	l4sum = in->protocol == IPPROTO_TCP ? (void *)ports + 16 : (void *)ports + 6;
	if ((void *)(l4sum + 1) <= end && (in->protocol == IPPROTO_TCP || *l4sum)) {
		old16 = *l4sum;
		new16 = csum_update16(csum_update32(old16, old_daddr, nat->vip), ports[1], nat->vport);
		*l4sum = new16;
		icmp->checksum = csum_update16(icmp->checksum, old16, new16);
	}
	icmp->checksum = csum_update16(icmp->checksum, ports[1], nat->vport);
	ports[1] = nat->vport;
	old16 = in->check;
	new16 = csum_update32(old16, old_daddr, nat->vip);
	in->check = new16;
	icmp->checksum = csum_update16(icmp->checksum, old16, new16);
	icmp->checksum = csum_update32(icmp->checksum, old_daddr, nat->vip);
	in->daddr = nat->vip;

	ip->check = csum_update32(ip->check, ip->saddr, nat->vip);
	ip->saddr = nat->vip;
	return nat_send(ctx, eth, ip, nat, XVS_STAT_NAT_ICMP);
}

/* A fragment from a NAT real server to anywhere but the director: its ports (in the
 * first fragment only) cannot be looked up, and passed on it would leave with the real
 * server's address (ip_forward is on in NAT). Dropped, counted. */
static __always_inline int nat_fragment(__be32 saddr, __be32 daddr)
{
	return bpf_map_lookup_elem(&xvs_nat_addrs, &saddr) &&
	       !bpf_map_lookup_elem(&xvs_local_addrs, &daddr);
}

static __always_inline int nat_fragment6(struct ipv6hdr *ip6)
{
	return bpf_map_lookup_elem(&xvs_nat_addrs6, &ip6->saddr) &&
	       !bpf_map_lookup_elem(&xvs_local_addrs6, &ip6->daddr);
}

#endif
