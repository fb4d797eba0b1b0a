// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_toa_in and xvs_toa_out: a FullNAT real server's tc programs, so that its
 * applications see the client, not the director. A TCP connection from one of the
 * director's local addresses (xvs_toa_trusted) whose SYN carries the client's address
 * option is recorded (the director also puts it in the handshake's ACK, for the toa
 * module; a SYN from a pair forgets what its earlier connection recorded); from then on its
 * segments in arrive from the client's address and port (ingress), and its segments out,
 * sent to the client, leave to the local address and port again (egress). getpeername(),
 * nginx's $remote_addr and the firewall see the client, with no kernel module. What is
 * not such a connection passes untouched. Checksums are updated by the kernel's helpers
 * (pseudo-header included; a partial one stays partial). */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"
#include "parse.h"

/* The IPv6 checksum fix of kernel 6.16 (and its stable backports): with it, a
 * CHECKSUM_COMPLETE packet's sum stays right when an IPv6 address changes. An older
 * kernel refuses the flag, and the call is made again without it. */
#ifndef BPF_F_IPV6
#define BPF_F_IPV6 (1ULL << 7)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xvs_toa_key);
	__type(value, __u8);
	__uint(max_entries, XVS_MAX_TOA_TRUSTED);
} xvs_toa_trusted SEC(".maps");

/* (local address, local port, own port) → the client. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xvs_toa_key);
	__type(value, struct xvs_toa_value);
	__uint(max_entries, XVS_MAX_TOA_CONNS);
} xvs_toa_conns SEC(".maps");

/* (client address, client port, own port) → the local pair. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xvs_toa_key);
	__type(value, struct xvs_toa_value);
	__uint(max_entries, XVS_MAX_TOA_CONNS);
} xvs_toa_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xvs_toa_counters);
	__uint(max_entries, 1);
} xvs_toa_counters SEC(".maps");

static __always_inline void count(enum xvs_toa_stat stat)
{
	__u32 zero = 0;
	struct xvs_toa_counters *c = bpf_map_lookup_elem(&xvs_toa_counters, &zero);

	if (c)
		c->packets[stat]++;
}

/* A TCP segment's fields the programs need, copied out of the packet. */
struct seg {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u32 l3;     /* the IP header's offset */
	__u32 l4;     /* the TCP header's offset */
	__u8 v6;
	__u8 syn;     /* a SYN without ACK: the only segment whose option is followed */
	__s32 opts;   /* the options' length */
};

/* A walk over a segment's options, copied to the stack (walking them in the packet,
 * the verifier must bound a pointer at every step of every path). */
struct walk {
	__u8 opts[64]; /* 40 bytes of options at most; the rest keeps masked reads inside */
	__u32 i;       /* the next option's offset */
	__u32 len;     /* the options' length */
	__u32 want;    /* the option's length for the family */
	__u32 found;
	struct xvs_toa_value client;
};

/* One option (bpf_loop's step): 1 ends the walk. */
static long walk_step(__u64 n, void *ctx)
{
	struct walk *w = ctx;
	__u32 at = w->i;
	__u8 kind, len;

	if (at + 2 > w->len || at > 38)
		return 1;
	kind = w->opts[at & 63];
	if (kind == 0)
		return 1;
	if (kind == 1) {
		w->i = at + 1;
		return 0;
	}
	len = w->opts[(at + 1) & 63];
	if (len < 2)
		return 1;
	if (kind == XVS_TOA_KIND && len == w->want) {
		/* Within the options (at most 40 bytes): the IPv4 one starts by byte 32. */
		if (at + len > w->len || at > 32)
			return 1;
		__builtin_memcpy(&w->client.port, &w->opts[(at & 63) + 2], 2);
		if (len == 20)
			__builtin_memcpy(w->client.addr, &w->opts[(at & 63) + 4], 16);
		else
			__builtin_memcpy(w->client.addr, &w->opts[(at & 63) + 4], 4);
		w->found = 1;
		return 1;
	}
	w->i = at + len;
	return 0;
}

/* The option's client, if the segment's options (`len` bytes at `off`) carry one of the
 * family's length. */
static __always_inline int find_toa(struct __sk_buff *skb, __u32 off, __u32 len, int v6,
				    struct xvs_toa_value *out)
{
	struct walk w = { .len = len, .want = v6 ? 20 : 8 };

	if (len == 0 || len > 40 || bpf_skb_load_bytes(skb, off, w.opts, len))
		return 0;
	bpf_loop(40, walk_step, &w, 0);
	if (!w.found)
		return 0;
	*out = w.client;
	return 1;
}

/* Reads a TCP segment over IPv4, or over IPv6 without extension headers; 0 otherwise. */
static __always_inline int read_seg(struct __sk_buff *skb, struct seg *s)
{
	struct hdr_cursor c = {
		.pos = (void *)(long)skb->data,
		.end = (void *)(long)skb->data_end,
	};
	struct ethhdr *eth;
	struct tcphdr *tcp;
	int proto = parse_ethhdr(&c, &eth);

	s->l3 = sizeof(*eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip;

		if (parse_iphdr(&c, &ip) != IPPROTO_TCP || (ip->frag_off & bpf_htons(0x1fff)))
			return 0;
		__builtin_memcpy(s->saddr, &ip->saddr, 4);
		__builtin_memcpy(s->daddr, &ip->daddr, 4);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = c.pos;

		if ((void *)(ip6 + 1) > c.end || ip6->nexthdr != IPPROTO_TCP)
			return 0;
		__builtin_memcpy(s->saddr, &ip6->saddr, 16);
		__builtin_memcpy(s->daddr, &ip6->daddr, 16);
		c.pos = ip6 + 1;
		s->v6 = 1;
	} else {
		return 0;
	}
	tcp = c.pos;
	if ((void *)(tcp + 1) > c.end)
		return 0;
	s->l4 = (__u32)(c.pos - (void *)(long)skb->data);
	s->sport = tcp->source;
	s->dport = tcp->dest;
	s->syn = tcp->syn && !tcp->ack;
	s->opts = tcp->doff * 4 - (int)sizeof(*tcp);
	return 1;
}

/* Rewrites the address at `off` from `from` to `to` (4 or 16 bytes), with the TCP
 * checksum at `s->l4 + 16` and, over IPv4, the header's. */
static __always_inline void set_addr(struct __sk_buff *skb, const struct seg *s, __u32 off,
				     __u8 *from, __u8 *to)
{
	__u32 csum = s->l4 + 16;

	if (!s->v6) {
		__be32 f, t;

		__builtin_memcpy(&f, from, 4);
		__builtin_memcpy(&t, to, 4);
		bpf_l4_csum_replace(skb, csum, f, t, BPF_F_PSEUDO_HDR | 4);
		bpf_l3_csum_replace(skb, s->l3 + 10, f, t, 4);
		bpf_skb_store_bytes(skb, off, &t, 4, 0);
	} else {
		__s64 diff = bpf_csum_diff((__be32 *)from, 16, (__be32 *)to, 16, 0);

		if (bpf_l4_csum_replace(skb, csum, 0, diff, BPF_F_PSEUDO_HDR | BPF_F_IPV6) < 0)
			bpf_l4_csum_replace(skb, csum, 0, diff, BPF_F_PSEUDO_HDR);
		bpf_skb_store_bytes(skb, off, to, 16, 0);
	}
}

/* Rewrites the TCP port at `off` from `from` to `to`. */
static __always_inline void set_port(struct __sk_buff *skb, const struct seg *s, __u32 off,
				     __be16 from, __be16 to)
{
	bpf_l4_csum_replace(skb, s->l4 + 16, from, to, 2);
	bpf_skb_store_bytes(skb, off, &to, 2, 0);
}

static __always_inline int same(const struct xvs_toa_value *a, const struct xvs_toa_value *b)
{
	__u8 diff = 0;
	int i;

	/* Byte by byte: BPF has no memcmp. */
#pragma unroll
	for (i = 0; i < 16; i++)
		diff |= a->addr[i] ^ b->addr[i];
	return a->port == b->port && !diff;
}

/* The key of `addr`:`port` seen from this host's `own` port. */
static __always_inline void key_of(struct xvs_toa_key *k, const __u8 *addr, __be16 port,
				   __be16 own, __u8 v6)
{
	__builtin_memcpy(k->addr, addr, 16);
	k->port = port;
	k->own_port = own;
	k->v6 = v6;
}

/* A SYN from local pair `pair` starts a new connection on it: whatever the pair's
 * earlier one recorded goes, both ways, whether or not this one names a client. */
static __always_inline void forget(struct xvs_toa_key *pair)
{
	struct xvs_toa_value *old = bpf_map_lookup_elem(&xvs_toa_conns, pair);
	struct xvs_toa_key other = {};

	if (!old)
		return;
	key_of(&other, old->addr, old->port, pair->own_port, pair->v6);
	bpf_map_delete_elem(&xvs_toa_peers, &other);
	bpf_map_delete_elem(&xvs_toa_conns, pair);
}

/* A SYN from local pair `pair` names its client: recorded both ways, unless another
 * local pair's live connection holds that client's port here (then the connection
 * goes on as the local pair's, untouched). */
static __always_inline void record(struct xvs_toa_key *pair, const struct xvs_toa_value *client)
{
	struct xvs_toa_value local = { .port = pair->port };
	struct xvs_toa_key peer = {}, other = {};
	struct xvs_toa_value *held, *old;

	__builtin_memcpy(local.addr, pair->addr, 16);
	key_of(&peer, client->addr, client->port, pair->own_port, pair->v6);
	held = bpf_map_lookup_elem(&xvs_toa_peers, &peer);
	if (held && !same(held, &local)) {
		key_of(&other, held->addr, held->port, pair->own_port, pair->v6);
		old = bpf_map_lookup_elem(&xvs_toa_conns, &other);
		if (old && same(old, client)) {
			count(XVS_TOA_COLLISION);
			return;
		}
	}
	bpf_map_update_elem(&xvs_toa_conns, pair, client, BPF_ANY);
	bpf_map_update_elem(&xvs_toa_peers, &peer, &local, BPF_ANY);
	count(XVS_TOA_OPTION);
}

SEC("tc")
int xvs_toa_in(struct __sk_buff *skb)
{
	struct xvs_toa_key pair = {}, trusted = {};
	struct xvs_toa_value to, *client, named = {};
	struct seg s = {};

	if (!read_seg(skb, &s))
		return TC_ACT_OK;
	key_of(&pair, s.saddr, s.sport, s.dport, s.v6);
	key_of(&trusted, s.saddr, 0, 0, s.v6);
	if (s.syn && bpf_map_lookup_elem(&xvs_toa_trusted, &trusted)) {
		forget(&pair);
		if (s.opts > 0 && find_toa(skb, s.l4 + 20, s.opts, s.v6, &named))
			record(&pair, &named);
	} else if (s.syn && s.opts > 0 && find_toa(skb, s.l4 + 20, s.opts, s.v6, &named)) {
		count(XVS_TOA_UNTRUSTED);
	}
	client = bpf_map_lookup_elem(&xvs_toa_conns, &pair);
	if (!client)
		return TC_ACT_OK;
	to = *client;
	set_addr(skb, &s, s.l3 + (s.v6 ? 8 : 12), s.saddr, to.addr);
	set_port(skb, &s, s.l4, s.sport, to.port);
	count(XVS_TOA_RESTORED);
	return TC_ACT_OK;
}

SEC("tc")
int xvs_toa_out(struct __sk_buff *skb)
{
	struct xvs_toa_value to, *local;
	struct xvs_toa_key peer = {};
	struct seg s = {};

	if (!read_seg(skb, &s))
		return TC_ACT_OK;
	key_of(&peer, s.daddr, s.dport, s.sport, s.v6);
	local = bpf_map_lookup_elem(&xvs_toa_peers, &peer);
	if (!local)
		return TC_ACT_OK;
	to = *local;
	set_addr(skb, &s, s.l3 + (s.v6 ? 24 : 16), s.daddr, to.addr);
	set_port(skb, &s, s.l4 + 2, s.dport, to.port);
	count(XVS_TOA_REVERSED);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
