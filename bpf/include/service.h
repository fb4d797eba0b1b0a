/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A packet to a service, of either family: the service lookup (exact port, then the
 * all-ports service) and the steering tail written once for IPv4 and IPv6: the input
 * checks, learning a NAT client's MAC, the fast path, and the workers' socket. Each
 * caller passes a constant family, so the compiler keeps only that family's calls. */
#ifndef XVS_SERVICE_H
#define XVS_SERVICE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"
#include "maps.h"
#include "fast.h"
#include "screen.h"
#include "stats.h"
#include "nat_clients.h"

/* The headers a service's packet is read by. */
struct svc_packet {
	struct ethhdr *eth;
	struct iphdr *ip;    /* IPv4 */
	struct ipv6hdr *ip6; /* IPv6 */
	void *l4;
	void *end;
	int proto;
	int routed; /* IPv6: a routing header with segments left was walked */
};

#include "syn_guard.h"

/* Services live on the external interface only, when one is set (two-arm NAT). */
static __always_inline int serves_here(struct xdp_md *ctx, const struct xvs_steer_config *cfg)
{
	return !(cfg && cfg->external_ifindex && cfg->external_ifindex != ingress_ifindex(ctx));
}

static __always_inline struct xvs_svc_value *lookup_service(struct xvs_svc_key *key)
{
	struct xvs_svc_value *svc = bpf_map_lookup_elem(&xvs_services, key);

	if (svc)
		return svc;
	key->port = 0;
	return bpf_map_lookup_elem(&xvs_services, key);
}

static __always_inline struct xvs_svc_value *lookup_service6(struct xvs_svc6_key *key)
{
	struct xvs_svc_value *svc = bpf_map_lookup_elem(&xvs_services6, key);

	if (svc)
		return svc;
	key->port = 0;
	return bpf_map_lookup_elem(&xvs_services6, key);
}

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

/* A packet to service `svc`: dropped if the kernel's input checks would or if it is a
 * new SYN the guard sheds, else carried by the fast path when the flow has an entry
 * there, else handed to the workers (a NAT client's MAC learned on the way). */
static __always_inline int to_service(struct xdp_md *ctx, const struct svc_packet *p, int v6,
				      const struct xvs_svc_value *svc,
				      const struct xvs_steer_config *cfg,
				      const struct xvs_local_mac *local)
{
	__u32 generation = cfg ? cfg->fast_generation : 0;
	int ret;

	ret = v6 ? screen6(p->eth, p->ip6, p->l4, p->proto, p->end, p->routed) :
		   screen(ctx, p->eth, p->ip, p->l4, p->proto, p->end);
	if (ret >= 0)
		return count(ret, XDP_DROP);
	/* Before anything is learned from it; a SYN never takes the fast path. */
	ret = syn_guard(ctx, p, v6, cfg);
	if (ret >= 0)
		return ret;
	if (svc->flags & XVS_SVC_F_FAST) {
		ret = v6 ? fast_path6(ctx, p->eth, p->ip6, p->l4, p->end, p->proto, generation, local) :
			   fast_path(ctx, p->eth, p->ip, p->l4, p->end, p->proto, cfg, local);
		if (ret >= 0)
			return count(XVS_STAT_FAST_PATH, ret);
		if (ret == FAST_MOVED)
			return to_worker(ctx);
	}
	/* Only from what goes to a worker: an established NAT flow's datagram on the fast
	 * path would cost a lookup, and with more clients than the map holds a FIB lookup
	 * and a write, for a MAC learned at the flow's first packets. */
	if (svc->flags & XVS_SVC_F_NAT) {
		if (v6)
			learn_client6(ctx, p->eth, p->ip6, p->l4, p->proto, p->end);
		else
			learn_client(ctx, p->eth, p->ip, p->l4, p->proto, p->end);
	}
	return to_worker(ctx);
}

#endif
