/* FullNAT replies in XDP: a real server's packet to one of the director's local
 * addresses (xvs_fnat_lips) that answers a connection a worker knows (xvs_fnat_conns,
 * keyed as the reply arrives) becomes one from VIP:vport to the client, and leaves
 * towards the client as a NAT reply does (nat.h's nat_send). One to a local address of
 * no known connection is the kernel's, untranslated and counted. An ICMP error about a
 * FullNAT request goes on to its client too (`fnat_icmp`). */
#ifndef XVS_FULLNAT_H
#define XVS_FULLNAT_H

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
#include "nat.h"
#include "stats.h"

/* Where a translated reply leaves: with two arms (it came in on the internal
 * interface: the caller saw to that, nat_side), out of the external one, from its MAC
 * there; else back where it came in, from the MAC it was sent to. */
static __always_inline void fnat_out(struct ethhdr *eth, struct xvs_nat_value *out)
{
	__u32 zero = 0;
	struct xvs_steer_config *cfg = bpf_map_lookup_elem(&xvs_steer_config, &zero);
	struct xvs_local_mac *m = NULL;

	if (cfg && cfg->external_ifindex) {
		out->out_ifindex = cfg->external_ifindex;
		m = bpf_map_lookup_elem(&xvs_local_macs, &out->out_ifindex);
	}
	__builtin_memcpy(out->src_mac, m ? m->mac : eth->h_dest, ETH_ALEN);
}

/* The transport checksum's place, or NULL past the end. */
static __always_inline __sum16 *l4_csum(void *l4, int proto, void *end)
{
	__sum16 *sum = proto == IPPROTO_TCP ? &((struct tcphdr *)l4)->check :
					       &((struct udphdr *)l4)->check;

	return (void *)(sum + 1) > end ? NULL : sum;
}

/* An IPv4 FullNAT reply: RIP:rport → LIP:lport becomes VIP:vport → CIP:cport. Returns
 * -1 when the packet is not to a local address (the caller goes on). */
static __always_inline int fnat_reply(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip,
				      void *l4, int proto, void *end)
{
	struct xvs_fast_key k = { .saddr = ip->saddr, .daddr = ip->daddr, .proto = proto };
	struct xvs_nat_value out = {};
	struct xvs_fnat_value *v;
	__be16 *ports = l4;
	__be32 caddr, vip;
	__sum16 *sum;

	if ((void *)(ports + 2) > end || !bpf_map_lookup_elem(&xvs_fnat_lips, &ip->daddr))
		return -1;
	k.sport = ports[0];
	k.dport = ports[1];
	v = bpf_map_lookup_elem(&xvs_fnat_conns, &k);
	if (!v)
		return count(XVS_STAT_PASS_FNAT_UNKNOWN, XDP_PASS);
	sum = l4_csum(l4, proto, end);
	if (!sum)
		return count(XVS_STAT_PASS_TRUNCATED, XDP_PASS);
	__builtin_memcpy(&caddr, v->caddr, 4);
	__builtin_memcpy(&vip, v->vip, 4);
	/* UDP over IPv4 may carry no checksum (0): it stays without one. */
	if ((proto == IPPROTO_TCP || *sum) && partial_csums() &&
	    *sum == csum_pseudo4(ip->saddr, ip->daddr, proto, bpf_ntohs(ip->tot_len) - ip->ihl * 4)) {
		/* Left partial by a veth: the pseudo-header's sum moves with the addresses;
		 * the worker relaying it completes it (rewrite/partial.rs). */
		*sum = csum_partial_update32(*sum, ip->saddr, vip);
		*sum = csum_partial_update32(*sum, ip->daddr, caddr);
	} else if (proto == IPPROTO_TCP || *sum) {
		*sum = csum_update32(*sum, ip->saddr, vip);
		*sum = csum_update32(*sum, ip->daddr, caddr);
		*sum = csum_update16(*sum, ports[0], v->vport);
		*sum = csum_update16(*sum, ports[1], v->cport);
		if (proto == IPPROTO_UDP && !*sum)
			*sum = 0xffff;
	}
	ip->check = csum_update32(ip->check, ip->saddr, vip);
	ip->check = csum_update32(ip->check, ip->daddr, caddr);
	ip->saddr = vip;
	ip->daddr = caddr;
	ports[0] = v->vport;
	ports[1] = v->cport;
	out.stats_slot = v->stats_slot;
	fnat_out(eth, &out);
	return nat_send(ctx, eth, ip, &out, XVS_STAT_FNAT_REPLY);
}

/* fnat_reply for IPv6: the transport checksum covers the addresses through the
 * pseudo-header (IPv6 has no header checksum). */
static __always_inline int fnat_reply6(struct xdp_md *ctx, struct ethhdr *eth, struct ipv6hdr *ip6,
				       void *l4, int proto, void *end)
{
	struct xvs_fast6_key k = { .proto = proto };
	struct xvs_nat6_value out6 = {};
	struct xvs_nat_value out = {};
	struct xvs_fnat_value *v;
	__be16 *ports = l4;
	__sum16 *sum;

	if ((void *)(ports + 2) > end || !bpf_map_lookup_elem(&xvs_fnat_lips6, &ip6->daddr))
		return -1;
	__builtin_memcpy(k.saddr, &ip6->saddr, sizeof(k.saddr));
	__builtin_memcpy(k.daddr, &ip6->daddr, sizeof(k.daddr));
	k.sport = ports[0];
	k.dport = ports[1];
	v = bpf_map_lookup_elem(&xvs_fnat_conns6, &k);
	if (!v)
		return count(XVS_STAT_PASS_FNAT_UNKNOWN, XDP_PASS);
	sum = l4_csum(l4, proto, end);
	if (!sum)
		return count(XVS_STAT_PASS_TRUNCATED, XDP_PASS);
	if (partial_csums() &&
	    *sum == csum_pseudo6((__be32 *)&ip6->saddr, (__be32 *)&ip6->daddr, proto,
				 bpf_ntohs(ip6->payload_len))) {
		*sum = csum_partial_update128(*sum, (__be32 *)&ip6->saddr, (__be32 *)v->vip);
		*sum = csum_partial_update128(*sum, (__be32 *)&ip6->daddr, (__be32 *)v->caddr);
	} else {
		*sum = csum_update128(*sum, (__be32 *)&ip6->saddr, (__be32 *)v->vip);
		*sum = csum_update128(*sum, (__be32 *)&ip6->daddr, (__be32 *)v->caddr);
		*sum = csum_update16(*sum, ports[0], v->vport);
		*sum = csum_update16(*sum, ports[1], v->cport);
		/* Over IPv6 a UDP checksum is mandatory: 0 is sent as all ones. */
		if (proto == IPPROTO_UDP && !*sum)
			*sum = 0xffff;
	}
	__builtin_memcpy(&ip6->saddr, v->vip, sizeof(v->vip));
	__builtin_memcpy(&ip6->daddr, v->caddr, sizeof(v->caddr));
	ports[0] = v->vport;
	ports[1] = v->cport;
	fnat_out(eth, &out);
	out6.out_ifindex = out.out_ifindex;
	out6.stats_slot = v->stats_slot;
	__builtin_memcpy(out6.src_mac, out.src_mac, ETH_ALEN);
	return nat_send6(ctx, eth, ip6, &out6, XVS_STAT_FNAT_REPLY);
}


/* An ICMP error on its way to a local address, quoting a FullNAT request (LIP:lport →
 * RIP:rport: a fragmentation-needed from the real server's path, say): it goes on to
 * the connection's client as if about the client's own packet, as NAT's do. The quoted
 * packet becomes CIP:cport → VIP:vport, the outer source the VIP and the destination
 * the client; every checksum is updated (outer IP, ICMP, and the quoted IP and
 * transport checksums when quoted whole). Returns -1 when it is none of that. */
static __always_inline int fnat_icmp(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip,
				     void *l4, void *end)
{
	struct xvs_fast_key k = {};
	struct xvs_nat_value out = {};
	struct xvs_icmphdr *icmp = l4;
	struct xvs_fnat_value *v;
	struct iphdr *in;
	__be16 *ports, old16, new16;
	__be32 caddr, vip, old_saddr, old_daddr;
	__sum16 *l4sum;

	if ((void *)(icmp + 1) > end)
		return -1;
	if (icmp->type != ICMP_DEST_UNREACH && icmp->type != ICMP_TIME_EXCEEDED &&
	    icmp->type != ICMP_PARAMETERPROB && icmp->type != ICMP_SOURCE_QUENCH)
		return -1;
	if (!bpf_map_lookup_elem(&xvs_fnat_lips, &ip->daddr))
		return -1;
	in = (void *)(icmp + 1);
	if ((void *)(in + 1) > end || in->ihl != 5 || in->saddr != ip->daddr)
		return -1;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return -1;
	ports = (void *)(in + 1);
	if ((void *)(ports + 2) > end)
		return -1;
	/* The quoted request, as its replies are keyed. */
	k.saddr = in->daddr;
	k.daddr = in->saddr;
	k.sport = ports[1];
	k.dport = ports[0];
	k.proto = in->protocol;
	v = bpf_map_lookup_elem(&xvs_fnat_conns, &k);
	if (!v)
		return count(XVS_STAT_PASS_FNAT_UNKNOWN, XDP_PASS);
	__builtin_memcpy(&caddr, v->caddr, 4);
	__builtin_memcpy(&vip, v->vip, 4);
	old_saddr = in->saddr;
	old_daddr = in->daddr;

	/* The quoted transport checksum, if quoted: addresses and ports. */
	l4sum = in->protocol == IPPROTO_TCP ? (void *)ports + 16 : (void *)ports + 6;
	if ((void *)(l4sum + 1) <= end && (in->protocol == IPPROTO_TCP || *l4sum)) {
		old16 = *l4sum;
		new16 = csum_update32(csum_update32(old16, old_saddr, caddr), old_daddr, vip);
		new16 = csum_update16(csum_update16(new16, ports[0], v->cport), ports[1], v->vport);
		*l4sum = new16;
		icmp->checksum = csum_update16(icmp->checksum, old16, new16);
	}
	icmp->checksum = csum_update16(icmp->checksum, ports[0], v->cport);
	icmp->checksum = csum_update16(icmp->checksum, ports[1], v->vport);
	ports[0] = v->cport;
	ports[1] = v->vport;
	old16 = in->check;
	new16 = csum_update32(csum_update32(old16, old_saddr, caddr), old_daddr, vip);
	in->check = new16;
	icmp->checksum = csum_update16(icmp->checksum, old16, new16);
	icmp->checksum = csum_update32(icmp->checksum, old_saddr, caddr);
	icmp->checksum = csum_update32(icmp->checksum, old_daddr, vip);
	in->saddr = caddr;
	in->daddr = vip;

	ip->check = csum_update32(ip->check, ip->saddr, vip);
	ip->check = csum_update32(ip->check, ip->daddr, caddr);
	ip->saddr = vip;
	ip->daddr = caddr;
	out.stats_slot = v->stats_slot;
	fnat_out(eth, &out);
	return nat_send(ctx, eth, ip, &out, XVS_STAT_FNAT_ICMP);
}


/* fnat_icmp for IPv6: an ICMPv6 error (destination unreachable, packet too big, time
 * exceeded, parameter problem) to a local address, quoting a FullNAT request. The
 * ICMPv6 checksum covers the outer addresses too (the pseudo-header). */
static __always_inline int fnat_icmp6(struct xdp_md *ctx, struct ethhdr *eth,
				      struct ipv6hdr *ip6, void *l4, void *end)
{
	struct xvs_fast6_key k = {};
	struct xvs_nat6_value out6 = {};
	struct xvs_nat_value out = {};
	struct xvs_icmphdr *icmp = l4;
	struct xvs_fnat_value *v;
	struct ipv6hdr *in;
	__be16 *ports, old16, new16;
	__sum16 *l4sum;

	if ((void *)(icmp + 1) > end || icmp->type < 1 || icmp->type > 4)
		return -1;
	if (!bpf_map_lookup_elem(&xvs_fnat_lips6, &ip6->daddr))
		return -1;
	in = (void *)(icmp + 1);
	if ((void *)(in + 1) > end || !addr6_eq(&in->saddr, &ip6->daddr))
		return -1;
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return -1;
	ports = (void *)(in + 1);
	if ((void *)(ports + 2) > end)
		return -1;
	__builtin_memcpy(k.saddr, &in->daddr, sizeof(k.saddr));
	__builtin_memcpy(k.daddr, &in->saddr, sizeof(k.daddr));
	k.sport = ports[1];
	k.dport = ports[0];
	k.proto = in->nexthdr;
	v = bpf_map_lookup_elem(&xvs_fnat_conns6, &k);
	if (!v)
		return count(XVS_STAT_PASS_FNAT_UNKNOWN, XDP_PASS);

	/* The quoted transport checksum, if quoted: addresses and ports. */
	l4sum = in->nexthdr == IPPROTO_TCP ? (void *)ports + 16 : (void *)ports + 6;
	if ((void *)(l4sum + 1) <= end && (in->nexthdr == IPPROTO_TCP || *l4sum)) {
		old16 = *l4sum;
		new16 = csum_update128(old16, (__be32 *)&in->saddr, (__be32 *)v->caddr);
		new16 = csum_update128(new16, (__be32 *)&in->daddr, (__be32 *)v->vip);
		new16 = csum_update16(csum_update16(new16, ports[0], v->cport), ports[1], v->vport);
		*l4sum = new16;
		icmp->checksum = csum_update16(icmp->checksum, old16, new16);
	}
	icmp->checksum = csum_update16(icmp->checksum, ports[0], v->cport);
	icmp->checksum = csum_update16(icmp->checksum, ports[1], v->vport);
	ports[0] = v->cport;
	ports[1] = v->vport;
	icmp->checksum = csum_update128(icmp->checksum, (__be32 *)&in->saddr, (__be32 *)v->caddr);
	icmp->checksum = csum_update128(icmp->checksum, (__be32 *)&in->daddr, (__be32 *)v->vip);
	__builtin_memcpy(&in->saddr, v->caddr, sizeof(v->caddr));
	__builtin_memcpy(&in->daddr, v->vip, sizeof(v->vip));
	/* The outer addresses, in the pseudo-header. */
	icmp->checksum = csum_update128(icmp->checksum, (__be32 *)&ip6->saddr, (__be32 *)v->vip);
	icmp->checksum = csum_update128(icmp->checksum, (__be32 *)&ip6->daddr, (__be32 *)v->caddr);
	__builtin_memcpy(&ip6->saddr, v->vip, sizeof(v->vip));
	__builtin_memcpy(&ip6->daddr, v->caddr, sizeof(v->caddr));
	fnat_out(eth, &out);
	out6.out_ifindex = out.out_ifindex;
	out6.stats_slot = v->stats_slot;
	__builtin_memcpy(out6.src_mac, out.src_mac, ETH_ALEN);
	return nat_send6(ctx, eth, ip6, &out6, XVS_STAT_FNAT_ICMP);
}

#endif
