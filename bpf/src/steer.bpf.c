// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_steer: the director's XDP program. TCP and UDP to a configured service go to the
 * AF_XDP socket of the packet's RX queue; everything else (ARP, VRRP, ICMP, SSH to the
 * director, ...) goes on to the kernel. It never drops: what it cannot read, the kernel
 * gets. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"
#include "maps.h"
#include "parse.h"

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

SEC("xdp")
int xvs_steer(struct xdp_md *ctx)
{
	struct hdr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct xvs_svc_key key = {};
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
	if (!bpf_map_lookup_elem(&xvs_services, &key)) {
		key.port = 0;
		if (!bpf_map_lookup_elem(&xvs_services, &key))
			return count(XVS_STAT_PASS_NOT_SERVICE, XDP_PASS);
	}

	/* The flags argument is the action when no socket is bound to this queue: during
	 * start-up the kernel keeps the packet rather than losing it. */
	ret = bpf_redirect_map(&xvs_xsks, ctx->rx_queue_index, XDP_PASS);
	return count(ret == XDP_REDIRECT ? XVS_STAT_STEERED : XVS_STAT_PASS_NO_SOCKET, ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
