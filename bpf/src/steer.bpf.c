// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_steer: the director's XDP program. TCP and UDP to a configured service go to the
 * AF_XDP socket of the packet's RX queue; replies of NAT connections the workers know
 * (xvs_nat_conns) are translated back here (the real server's address and port say which
 * service they answer for) and sent on; everything else (ARP, VRRP, ICMP, SSH to the
 * director, a NAT real server's own traffic, ...) goes on to the kernel untranslated. It
 * drops a packet to a service that fails the kernel's input checks (screen.h), a NAT
 * reply it cannot deliver and a fragment from a NAT real server; what it cannot read,
 * the kernel gets. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"
#include "csum.h"
#include "maps.h"
#include "parse.h"
#include "fast.h"
#include "screen.h"
#include "stats.h"
#include "nat.h"
#include "nat_clients.h"

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Sends a packet to a service to its queue's AF_XDP socket. */
static __always_inline int to_worker(struct xdp_md *ctx)
{
	/* The flags argument is the action when no socket is bound to this queue (start-up,
	 * or a crashed xvs whose program stays attached): dropped, as a busy director would,
	 * so TCP retransmits. Passed, it would reach a kernel that holds the VIP with no
	 * listener behind it, which resets the connection. */
	int ret = bpf_redirect_map(&xvs_xsks, ctx->rx_queue_index, XDP_DROP);

	return count(ret == XDP_REDIRECT ? XVS_STAT_STEERED : XVS_STAT_DROP_NO_SOCKET, ret);
}

/* IPv6: TCP and UDP to an IPv6 service go to the workers, established DR flows by the
 * fast path as over IPv4, NAT66 replies (and ICMPv6 errors quoting a NAT66 flow) are
 * translated here; neighbour discovery, router and multicast traffic (ICMPv6),
 * fragments and what the walk cannot read are the kernel's. */
static __always_inline int steer6(struct xdp_md *ctx, struct hdr_cursor *c, struct ethhdr *eth,
				  struct xvs_steer_config *cfg, const struct xvs_local_mac *local)
{
	struct xvs_svc6_key key = {};
	struct xvs_svc_value *svc;
	struct ipv6hdr *ip6;
	__be16 dport;
	void *l4;
	int proto, ret, routed = 0;

	proto = parse_ipv6hdr(c, &ip6, &routed);
	if (proto == XVS_PARSE_FRAGMENT) {
		if (nat_fragment6(ip6))
			return count(XVS_STAT_DROP_NAT_FRAGMENT, XDP_DROP);
		return count(XVS_STAT_PASS_FRAGMENT, XDP_PASS);
	}
	if (proto == XVS_PARSE_EXT) {
		/* A chain the walk cannot follow may hide a fragment header past it. */
		if (nat_fragment6(ip6))
			return count(XVS_STAT_DROP_NAT_FRAGMENT, XDP_DROP);
		return count(XVS_STAT_PASS_IPV6_EXT, XDP_PASS);
	}
	if (proto < 0)
		return parse_error(proto);
	if (proto == IPPROTO_ICMPV6 && nat_side(ctx, cfg)) {
		ret = nat_icmp6(ctx, eth, ip6, c->pos, c->end);
		if (ret >= 0)
			return ret;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return count(XVS_STAT_PASS_OTHER_PROTO, XDP_PASS);
	l4 = c->pos;
	ret = parse_l4_ports(c, proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr),
			     &dport);
	if (ret < 0)
		return parse_error(ret);
	__builtin_memcpy(key.addr, &ip6->daddr, sizeof(key.addr));
	key.port = dport;
	key.proto = proto;
	if (cfg && cfg->external_ifindex && cfg->external_ifindex != ctx->ingress_ifindex) {
		svc = NULL;
	} else {
		svc = bpf_map_lookup_elem(&xvs_services6, &key);
		if (!svc) {
			key.port = 0;
			svc = bpf_map_lookup_elem(&xvs_services6, &key);
		}
	}
	if (!svc) {
		ret = nat_side(ctx, cfg) ? nat_reply6(ctx, eth, ip6, l4, proto, c->end) : -1;
		if (ret >= 0)
			return ret;
		return count(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
	}
	ret = screen6(eth, ip6, l4, proto, c->end, routed);
	if (ret >= 0)
		return count(ret, XDP_DROP);
	if (svc->flags & XVS_SVC_F_NAT)
		learn_client6(ctx, eth, ip6, l4, proto, c->end);
	if (svc->flags & XVS_SVC_F_FAST) {
		ret = fast_path6(ctx, eth, ip6, l4, c->end, proto, cfg ? cfg->fast_generation : 0,
				 local);
		if (ret >= 0)
			return count(XVS_STAT_FAST_PATH, ret);
	}
	return to_worker(ctx);
}

SEC("xdp")
int xvs_steer(struct xdp_md *ctx)
{
	struct hdr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct xvs_svc_key key = {};
	struct xvs_svc_value *svc;
	struct xvs_steer_config *cfg;
	struct xvs_local_mac *local;
	__u32 zero = 0, ifindex;
	struct ethhdr *eth;
	struct iphdr *ip;
	__be16 dport;
	void *l4;
	int proto, ret;

	proto = parse_ethhdr(&c, &eth);
	if (proto < 0)
		return parse_error(proto);
	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return count(XVS_STAT_PASS_NOT_IP, XDP_PASS);
	/* Unicast for another host (group bit clear, not our MAC): not ours to handle. A
	 * VRRP backup, for one, must not forward what a switch floods to it. */
	ifindex = ctx->ingress_ifindex;
	local = bpf_map_lookup_elem(&xvs_local_macs, &ifindex);
	if (local && !(eth->h_dest[0] & 1) && !mac_eq(local->mac, eth->h_dest))
		return count(XVS_STAT_PASS_NOT_OURS, XDP_PASS);
	cfg = bpf_map_lookup_elem(&xvs_steer_config, &zero);
	if (proto == bpf_htons(ETH_P_IPV6))
		return steer6(ctx, &c, eth, cfg, local);

	proto = parse_iphdr(&c, &ip);
	if (proto < 0)
		return parse_error(proto);
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		if (nat_fragment(ip->saddr, ip->daddr))
			return count(XVS_STAT_DROP_NAT_FRAGMENT, XDP_DROP);
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
			return count(XVS_STAT_PASS_OTHER_PROTO, XDP_PASS);
		return count(XVS_STAT_PASS_FRAGMENT, XDP_PASS);
	}
	if (proto == IPPROTO_ICMP && nat_side(ctx, cfg)) {
		ret = nat_icmp(ctx, eth, ip, c.pos, c.end);
		if (ret >= 0)
			return ret;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return count(XVS_STAT_PASS_OTHER_PROTO, XDP_PASS);

	l4 = c.pos;
	ret = parse_l4_ports(&c, proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr),
			     &dport);
	if (ret < 0)
		return parse_error(ret);

	key.addr = ip->daddr;
	key.port = dport;
	key.proto = proto;
	if (cfg && cfg->external_ifindex && cfg->external_ifindex != ctx->ingress_ifindex) {
		svc = NULL;
	} else {
		svc = bpf_map_lookup_elem(&xvs_services, &key);
		if (!svc) {
			key.port = 0;
			svc = bpf_map_lookup_elem(&xvs_services, &key);
		}
	}
	if (!svc) {
		ret = nat_side(ctx, cfg) ? nat_reply(ctx, eth, ip, c.pos, proto, c.end) : -1;
		if (ret >= 0)
			return ret;
		return count(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
	}
	ret = screen(ctx, eth, ip, l4, proto, c.end);
	if (ret >= 0)
		return count(ret, XDP_DROP);
	if (svc->flags & XVS_SVC_F_NAT)
		learn_client(ctx, eth, ip, l4, proto, c.end);
	if (svc->flags & XVS_SVC_F_FAST) {
		ret = fast_path(ctx, eth, ip, l4, c.end, proto, cfg ? cfg->fast_generation : 0,
				local);
		if (ret >= 0)
			return count(XVS_STAT_FAST_PATH, ret);
	}

	return to_worker(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
