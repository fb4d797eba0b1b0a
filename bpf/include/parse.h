/* Bounds-checked header parsing: one helper per header, each returns the next protocol,
 * or a negative XVS_PARSE_* error. */
#ifndef XVS_PARSE_H
#define XVS_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>

/* ICMP, declared here: linux/icmp.h pulls in libc headers that BPF builds lack. */
struct xvs_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

#define XVS_PARSE_TRUNCATED -1
#define XVS_PARSE_BAD_HEADER -2

struct hdr_cursor {
	void *pos;
	void *end;
};

static __always_inline int parse_ethhdr(struct hdr_cursor *c, struct ethhdr **eth)
{
	struct ethhdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return XVS_PARSE_TRUNCATED;
	c->pos = h + 1;
	*eth = h;
	return h->h_proto; /* network byte order */
}

static __always_inline int parse_iphdr(struct hdr_cursor *c, struct iphdr **ip)
{
	struct iphdr *h = c->pos;
	int len;

	if ((void *)(h + 1) > c->end)
		return XVS_PARSE_TRUNCATED;
	len = h->ihl * 4;
	if (h->version != 4 || len < (int)sizeof(*h))
		return XVS_PARSE_BAD_HEADER;
	/* Options are skipped, not read: the verifier only needs the end checked. */
	if (c->pos + len > c->end)
		return XVS_PARSE_TRUNCATED;
	c->pos += len;
	*ip = h;
	return h->protocol;
}

/* TCP and UDP both start with the source and destination ports; the full minimal
 * header is required so a worker never sees a half header. */
static __always_inline int parse_l4_ports(struct hdr_cursor *c, int min_len, __be16 *dport)
{
	__be16 *ports = c->pos;

	if (c->pos + min_len > c->end)
		return XVS_PARSE_TRUNCATED;
	*dport = ports[1];
	return 0;
}

#endif
