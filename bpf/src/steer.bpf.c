// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_steer: the director's XDP program. TCP and UDP to a configured service go to the
 * AF_XDP socket of the packet's RX queue; replies of NAT real servers are translated back
 * here (stateless: the real server's address and port say which service they answer for)
 * and sent on; everything else (ARP, VRRP, ICMP, SSH to the director, ...) goes on to the
 * kernel. Apart from a NAT reply it cannot deliver, it never drops: what it cannot read,
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

#ifndef AF_INET
#define AF_INET 2
#endif

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

static __always_inline int count(enum xvs_xdp_stat stat, int action)
{
	__u32 zero = 0;
	struct xvs_xdp_counters *c = bpf_map_lookup_elem(&xvs_counters, &zero);

	if (c)
		c->packets[stat]++;
	return action;
}

static __always_inline int parse_error(int err)
{
	return count(err == XVS_PARSE_BAD_HEADER ? XVS_STAT_PASS_BAD_HEADER : XVS_STAT_PASS_TRUNCATED,
		     XDP_PASS);
}

/* A NAT reply: source becomes VIP:vport (checksums updated in place), then out towards
 * the client's next hop: the MAC its requests came from, else the kernel's FIB. */
static __always_inline int nat_reply(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip, void *l4,
				     int proto, void *end)
{
	struct xvs_nat_key key = { .addr = ip->saddr, .proto = proto };
	struct bpf_fib_lookup fib = {};
	struct xvs_nat_value *nat;
	struct xvs_nat_client *client;
	__be16 *sport = l4;
	__sum16 *l4sum;
	__u32 out;
	int stat = XVS_STAT_NAT_REPLY;

	key.port = *sport;
	nat = bpf_map_lookup_elem(&xvs_nat_backends, &key);
	if (!nat)
		return -1;

	out = nat->out_ifindex;
	client = bpf_map_lookup_elem(&xvs_nat_clients, &ip->daddr);
	if (client) {
		__builtin_memcpy(eth->h_dest, client->mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, nat->src_mac, ETH_ALEN);
	} else {
		fib.family = AF_INET;
		fib.l4_protocol = proto;
		fib.tot_len = bpf_ntohs(ip->tot_len);
		fib.ipv4_src = nat->vip;
		fib.ipv4_dst = ip->daddr;
		fib.ifindex = out ? out : ctx->ingress_ifindex;
		if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
			return count(XVS_STAT_DROP_NAT_NO_NEIGH, XDP_DROP);
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		out = fib.ifindex == ctx->ingress_ifindex ? 0 : fib.ifindex;
		stat = XVS_STAT_NAT_REPLY_FIB;
	}

	if (proto == IPPROTO_TCP) {
		l4sum = &((struct tcphdr *)l4)->check;
	} else {
		l4sum = &((struct udphdr *)l4)->check;
	}
	if ((void *)(l4sum + 1) > end)
		return count(XVS_STAT_PASS_TRUNCATED, XDP_PASS);
	/* UDP over IPv4 may carry no checksum (0): it stays without one. */
	if (proto == IPPROTO_TCP || *l4sum) {
		*l4sum = csum_update32(*l4sum, ip->saddr, nat->vip);
		*l4sum = csum_update16(*l4sum, *sport, nat->vport);
		if (proto == IPPROTO_UDP && !*l4sum)
			*l4sum = 0xffff;
	}
	ip->check = csum_update32(ip->check, ip->saddr, nat->vip);
	ip->saddr = nat->vip;
	*sport = nat->vport;

	if (!out)
		return count(stat, XDP_TX);
	return count(stat, bpf_redirect(out, 0));
}

/* A request to a NAT service: remember the MAC its client is reached through. */
static __always_inline void learn_client(struct ethhdr *eth, struct iphdr *ip)
{
	struct xvs_nat_client *known = bpf_map_lookup_elem(&xvs_nat_clients, &ip->saddr);
	struct xvs_nat_client fresh = {};

	/* Byte by byte: clang emits a libc call for memcmp, which BPF cannot link. */
	if (known && known->mac[0] == eth->h_source[0] && known->mac[1] == eth->h_source[1] &&
	    known->mac[2] == eth->h_source[2] && known->mac[3] == eth->h_source[3] &&
	    known->mac[4] == eth->h_source[4] && known->mac[5] == eth->h_source[5])
		return;
	__builtin_memcpy(fresh.mac, eth->h_source, ETH_ALEN);
	bpf_map_update_elem(&xvs_nat_clients, &ip->saddr, &fresh, BPF_ANY);
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
	struct ethhdr *eth;
	struct iphdr *ip;
	__be16 dport;
	int proto, ret;

	proto = parse_ethhdr(&c, &eth);
	if (proto < 0)
		return parse_error(proto);
	if (proto != bpf_htons(ETH_P_IP))
		return count(XVS_STAT_PASS_NOT_IPV4, XDP_PASS);

	proto = parse_iphdr(&c, &ip);
	if (proto < 0)
		return parse_error(proto);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return count(XVS_STAT_PASS_OTHER_PROTO, XDP_PASS);
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return count(XVS_STAT_PASS_FRAGMENT, XDP_PASS);

	ret = parse_l4_ports(&c, proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr),
			     &dport);
	if (ret < 0)
		return parse_error(ret);

	key.addr = ip->daddr;
	key.port = dport;
	key.proto = proto;
	svc = bpf_map_lookup_elem(&xvs_services, &key);
	if (!svc) {
		key.port = 0;
		svc = bpf_map_lookup_elem(&xvs_services, &key);
	}
	if (!svc) {
		ret = nat_reply(ctx, eth, ip, c.pos, proto, c.end);
		if (ret >= 0)
			return ret;
		return count(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
	}
	if (svc->flags & XVS_SVC_F_NAT)
		learn_client(eth, ip);

	/* The flags argument is the action when no socket is bound to this queue: during
	 * start-up the kernel keeps the packet rather than losing it. */
	ret = bpf_redirect_map(&xvs_xsks, ctx->rx_queue_index, XDP_PASS);
	return count(ret == XDP_REDIRECT ? XVS_STAT_STEERED : XVS_STAT_PASS_NO_SOCKET, ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
