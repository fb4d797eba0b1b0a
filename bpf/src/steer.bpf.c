// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_steer: the director's XDP program. TCP and UDP to a configured service go to the
 * AF_XDP socket of the packet's RX queue; replies of NAT connections the workers know
 * (xvs_nat_conns) are translated back here (the real server's address and port say which
 * service they answer for) and sent on, as are replies of FullNAT connections to the
 * director's local addresses (xvs_fnat_conns, fullnat.h); everything else (ARP, VRRP, ICMP, SSH to the
 * director, a NAT real server's own traffic, ...) goes on to the kernel untranslated. It
 * drops a packet to a service that fails the kernel's input checks (screen.h), a NAT
 * reply it cannot deliver and a fragment from a NAT real server; what it cannot read,
 * the kernel gets. The tail for a service's packet is service.h's, for both families. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"
#include "maps.h"
#include "parse.h"
#include "stats.h"
#include "nat.h"
#include "fullnat.h"
#include "service.h"

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* The TCP or UDP header's destination port, the cursor past it. */
static __always_inline int read_ports(struct hdr_cursor *c, int proto, __be16 *dport)
{
	return parse_l4_ports(c, proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr),
			      dport);
}

/* IPv6: TCP and UDP to an IPv6 service go to the workers, established DR flows by the
 * fast path as over IPv4, NAT66 replies (and ICMPv6 errors quoting a NAT66 flow) are
 * translated here; neighbour discovery, router and multicast traffic (ICMPv6),
 * fragments and what the walk cannot read are the kernel's. */
static __always_inline int steer6(struct xdp_md *ctx, struct hdr_cursor *c,
				  struct svc_packet *p, struct xvs_steer_config *cfg,
				  const struct xvs_local_mac *local)
{
	struct xvs_svc6_key key = {};
	struct xvs_svc_value *svc;
	__be16 dport;
	int ret;

	p->proto = parse_ipv6hdr(c, &p->ip6, &p->routed);
	/* A chain the walk cannot follow may hide a fragment header past it. */
	if (p->proto == XVS_PARSE_FRAGMENT || p->proto == XVS_PARSE_EXT) {
		if (nat_fragment6(p->ip6))
			return count(XVS_STAT_DROP_NAT_FRAGMENT, XDP_DROP);
		return count(p->proto == XVS_PARSE_FRAGMENT ? XVS_STAT_PASS_FRAGMENT :
							      XVS_STAT_PASS_IPV6_EXT,
			     XDP_PASS);
	}
	if (p->proto < 0)
		return parse_error(p->proto);
	if (p->proto == IPPROTO_ICMPV6 && nat_side(ctx, cfg)) {
		ret = fnat_icmp6(ctx, p->eth, p->ip6, c->pos, c->end);
		if (ret < 0)
			ret = nat_icmp6(ctx, p->eth, p->ip6, c->pos, c->end);
		if (ret >= 0)
			return ret;
	}
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return count(XVS_STAT_PASS_OTHER_PROTO, XDP_PASS);
	p->l4 = c->pos;
	ret = read_ports(c, p->proto, &dport);
	if (ret < 0)
		return parse_error(ret);
	__builtin_memcpy(key.addr, &p->ip6->daddr, sizeof(key.addr));
	key.port = dport;
	key.proto = p->proto;
	svc = serves_here(ctx, cfg) ? lookup_service6(&key) : NULL;
	if (svc)
		return to_service(ctx, p, 1, svc, cfg, local);
	if (!nat_side(ctx, cfg))
		return count(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
	ret = fnat_reply6(ctx, p->eth, p->ip6, p->l4, p->proto, c->end);
	if (ret < 0)
		ret = nat_reply6(ctx, p->eth, p->ip6, p->l4, p->proto, c->end);
	return ret >= 0 ? ret : count(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
}

/* IPv4: the same, and a fragment from a NAT real server is dropped (its first part
 * may be a reply the workers' translation never sees). */
static __always_inline int steer4(struct xdp_md *ctx, struct hdr_cursor *c,
				  struct svc_packet *p, struct xvs_steer_config *cfg,
				  const struct xvs_local_mac *local)
{
	struct xvs_svc_key key = {};
	struct xvs_svc_value *svc;
	__be16 dport;
	int ret;

	p->proto = parse_iphdr(c, &p->ip);
	if (p->proto < 0)
		return parse_error(p->proto);
	if (p->ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		if (nat_fragment(p->ip->saddr, p->ip->daddr))
			return count(XVS_STAT_DROP_NAT_FRAGMENT, XDP_DROP);
		if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
			return count(XVS_STAT_PASS_OTHER_PROTO, XDP_PASS);
		return count(XVS_STAT_PASS_FRAGMENT, XDP_PASS);
	}
	if (p->proto == IPPROTO_ICMP && nat_side(ctx, cfg)) {
		ret = fnat_icmp(ctx, p->eth, p->ip, c->pos, c->end);
		if (ret < 0)
			ret = nat_icmp(ctx, p->eth, p->ip, c->pos, c->end);
		if (ret >= 0)
			return ret;
	}
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return count(XVS_STAT_PASS_OTHER_PROTO, XDP_PASS);
	p->l4 = c->pos;
	ret = read_ports(c, p->proto, &dport);
	if (ret < 0)
		return parse_error(ret);
	key.addr = p->ip->daddr;
	key.port = dport;
	key.proto = p->proto;
	svc = serves_here(ctx, cfg) ? lookup_service(&key) : NULL;
	if (svc)
		return to_service(ctx, p, 0, svc, cfg, local);
	if (!nat_side(ctx, cfg))
		return count(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
	ret = fnat_reply(ctx, p->eth, p->ip, p->l4, p->proto, c->end);
	if (ret < 0)
		ret = nat_reply(ctx, p->eth, p->ip, p->l4, p->proto, c->end);
	return ret >= 0 ? ret : count(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
}

SEC("xdp")
int xvs_steer(struct xdp_md *ctx)
{
	struct hdr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct svc_packet p = {};
	struct xvs_steer_config *cfg;
	struct xvs_local_mac *local;
	__u32 zero = 0, ifindex;
	int proto;

	proto = parse_ethhdr(&c, &p.eth);
	if (proto < 0)
		return parse_error(proto);
	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return count(XVS_STAT_PASS_NOT_IP, XDP_PASS);
	/* Unicast for another host (group bit clear, not our MAC): not ours to handle. A
	 * VRRP backup, for one, must not forward what a switch floods to it. */
	ifindex = ingress_ifindex(ctx);
	local = bpf_map_lookup_elem(&xvs_local_macs, &ifindex);
	if (local && !(p.eth->h_dest[0] & 1) && !mac_eq(local->mac, p.eth->h_dest))
		return count(XVS_STAT_PASS_NOT_OURS, XDP_PASS);
	cfg = bpf_map_lookup_elem(&xvs_steer_config, &zero);
	p.end = c.end;
	if (proto == bpf_htons(ETH_P_IPV6))
		return steer6(ctx, &c, &p, cfg, local);
	return steer4(ctx, &c, &p, cfg, local);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
