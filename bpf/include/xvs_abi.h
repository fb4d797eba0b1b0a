/* Layouts and constants shared by the BPF programs and Rust: the single source of truth.
 * build.rs compiles abi_probe.c against this header and the Rust side asserts its own
 * structs against the sizes and offsets it prints, so a change here that Rust does not
 * follow fails the build. */
#ifndef XVS_ABI_H
#define XVS_ABI_H

#include <linux/types.h>

#define XVS_MAX_SERVICES 4096
#define XVS_MAX_QUEUES 256

/* A virtual service as the steering program matches it: destination address, port and
 * IP protocol of the packet. port 0 stands for every port of that address. */
struct xvs_svc_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad; /* always 0: hash maps compare keys byte for byte */
};

/* An IPv6 virtual service: the same, in the map of IPv6 services. */
struct xvs_svc6_key {
	__u8 addr[16]; /* network byte order */
	__be16 port;
	__u8 proto;
	__u8 pad; /* always 0 */
};

/* Extension headers the steering program walks before it gives an IPv6 packet to the
 * kernel (the pipeline's bound too: dataplane/src/wire/ipv6.rs MAX_EXT_HEADERS). */
#define XVS_MAX_EXT_HEADERS 4

#define XVS_SVC_F_NAT 1 /* NAT service: learn each client's MAC for the replies */
#define XVS_SVC_F_FAST 2 /* DR/TUN/NAT service whose established flows may take the fast path */

struct xvs_svc_value {
	__u32 flags; /* XVS_SVC_F_* */
};

/* Program-wide settings, one entry. */
struct xvs_steer_config {
	/* Services are steered only on this interface (0: any). Two-arm NAT attaches the
	 * program to the internal interface too, for the replies, and the sockets in the
	 * XSK map belong to the external one. */
	__u32 external_ifindex;
	/* The snapshot generation fast-path entries must carry to be used (0: fast path
	 * off). Control moves it on with every snapshot, so a reload or a health change
	 * sends every flow to a worker once, which writes its entry anew. */
	__u32 fast_generation;
	/* XVS_CFG_*: how frames the program sends leave. */
	__u32 flags;
	/* Two-arm NAT: the internal interface, where the fast path sends NAT requests (0:
	 * one arm, they leave by XDP_TX). */
	__u32 internal_ifindex;
	/* Who wrote the maps: a fingerprint of xvs's build and configuration, never read
	 * here. A restarted xvs that finds its own on the program it replaces (a killed
	 * one's stays attached) takes the connection state in its maps over. */
	__u64 owner;
};

/* NAT replies (and ICMP errors for NAT clients) arriving on the external interface are
 * translated here and handed to the worker's socket to send, not sent with XDP_TX: on
 * a link where XDP_TX is not delivered (a veth whose peer runs no XDP), or with the
 * fast path off. */
#define XVS_CFG_NAT_RELAY 1
/* With XVS_CFG_NAT_RELAY, on a veth: a reply whose transport checksum holds only the
 * pseudo-header's sum (left partial by the real server's stack) has that sum moved with
 * the address, for the worker to complete; the worker recomputes any field it finds so,
 * so a whole checksum that merely looks partial is made right too. */
#define XVS_CFG_PARTIAL_CSUM 2
/* `syn_guard: on`: every queue's SYN guard is on (syn_guard.h). */
#define XVS_CFG_SYN_GUARD 4
/* `syn_guard: auto`: a queue's guard is on while its worker says it is overloaded by new
 * flows (xvs_syn_guard). Neither flag: off, whatever the queues' entries say. */
#define XVS_CFG_SYN_GUARD_AUTO 8

/* The SYN guard of one RX queue: on until `until` (bpf_ktime_get_coarse_ns), written by
 * the queue's worker when new flows overload it. */
struct xvs_syn_guard {
	__u64 until;
};
/* The SYNs the guard shed (xvs_syn_seen): a Bloom filter of three bits a SYN, by a keyed
 * hash of its addresses, ports and sequence number (xvs_syn_key, random per load), kept
 * for two epochs of 2^32 ns (4.3 s). A slot is two halves, one per epoch parity, each the
 * epoch's low 12 bits and 20 bits of the filter: a half of an older epoch is cleared when
 * its parity's epoch writes it, so the filter empties itself. */
#define XVS_SYN_SEEN_SLOTS (1 << 22)
#define XVS_SYN_EPOCH_SHIFT 32
#define XVS_SYN_BITS 20
#define XVS_SYN_EPOCH_MASK 0xfff
/* The hash's key: written once when the program is loaded. */
struct xvs_syn_key {
	__u64 k[2];
};

/* The director's MAC on each interface the program is attached to: frames addressed to
 * another host (a switch flooding, a promiscuous NIC) are the kernel's to discard, not
 * ours to forward. */
#define XVS_MAX_LOCAL_MACS 16
struct xvs_local_mac {
	__u8 mac[6];
	__u16 pad;
};

/* The director's own IPv4 addresses: a real server's answer to the director itself (a
 * health check's) is no NAT reply, and goes to the kernel untouched. */
#define XVS_MAX_LOCAL_ADDRS 16384

/* NAT: a real server's address, port and protocol (the source of its replies)... */
#define XVS_MAX_NAT_BACKENDS 16384
struct xvs_nat_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad; /* always 0 */
};

/* ...and what its replies become: from VIP:vport, out of the interface given (0: the one
 * they arrived on), with the director's MAC there as source. */
struct xvs_nat_value {
	__be32 vip;
	__be16 vport;
	__u8 src_mac[6];
	__u32 out_ifindex;
	/* This real server's slot in xvs_nat_out (the control plane's id for it); a slot
	 * out of range counts nothing. */
	__u32 stats_slot;
};

/* NAT66: the same for IPv6 real servers (xvs_nat_backends6): the key has
 * xvs_svc6_key's layout, the value says what the replies become. */
struct xvs_nat6_key {
	__u8 addr[16];
	__be16 port;
	__u8 proto;
	__u8 pad; /* always 0 */
};

struct xvs_nat6_value {
	__u8 vip[16];
	__be16 vport;
	__u8 src_mac[6];
	__u32 out_ifindex;
	__u32 stats_slot;
};

/* Packets and bytes (whole frames) the program sent out for one NAT or FullNAT real
 * server: its translated replies and ICMP errors. Per CPU, summed at scrape time. DR and
 * TUN replies never cross the director, so only NAT and FullNAT have an outbound
 * direction to count. */
#define XVS_MAX_NAT_OUT_SLOTS 65536
struct xvs_nat_out {
	__u64 packets;
	__u64 bytes;
};

/* NAT clients' next-hop MACs, learned from the packets that may open a flow (a TCP SYN,
 * a UDP datagram) when the FIB has no neighbour to check them against or agrees; an
 * entry younger than XVS_NAT_CLIENT_FRESH_NS is never replaced (LRU: bounded). */
#define XVS_MAX_NAT_CLIENTS 65536
#define XVS_NAT_CLIENT_FRESH_NS (60ULL * 1000000000ULL)
struct xvs_nat_client {
	__u8 mac[6];
	__u16 pad;
	__u64 learned; /* bpf_ktime_get_coarse_ns() */
};

/* The NAT connections the workers know, keyed as their replies arrive (the real server's
 * address and port as source, the client's as destination: an xvs_fast_key or
 * xvs_fast6_key). A worker writes one when it creates or installs a NAT flow; only a
 * reply (or an ICMP error quoting a request) of one is translated, anything else from a
 * NAT real server goes to the kernel untouched (pass_nat_unknown). LRU: an ended
 * connection's entry ages out; a reply refreshes its own. Sized at load. */
#define XVS_MAX_NAT_CONNS 1048576

/* FullNAT: the director's local addresses, the sources FullNAT requests leave with
 * (xvs_fnat_lips, xvs_fnat_lips6): a real server's packet to one of them is looked
 * up as a reply. */
#define XVS_MAX_FNAT_LOCALS 256
/* FullNAT connections the workers know (xvs_fnat_conns, xvs_fnat_conns6), keyed as their
 * replies arrive (an xvs_fast_key or xvs_fast6_key: the real server's address and port as
 * source, the local address and port as destination), and what a reply becomes: from
 * VIP:vport to the client. A worker writes one when a connection takes its local pair
 * and removes it when the connection gives the pair back; LRU besides. An IPv4
 * connection's addresses fill the first 4 bytes. Sized at load. */
#define XVS_MAX_FNAT_CONNS 1048576
struct xvs_fnat_value {
	__u8 caddr[16];
	__u8 vip[16];
	__be16 cport;
	__be16 vport;
	__u32 stats_slot; /* the real server's id: its slot in xvs_nat_out */
};
/* The XDP fast path: established DR, TUN and NAT flows that a worker handed over, forwarded
 * by the steering program itself. The worker stays the source of truth: it writes an
 * entry when a flow is established (and again whenever one of the flow's packets reaches
 * it without SYN, FIN or RST: the entry was missing or stale), removes it at FIN, RST or
 * a reused port; SYN, FIN and RST always go to the worker. */
#define XVS_MAX_FAST_FLOWS 1048576
struct xvs_fast_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* The same for IPv6 flows (xvs_fast_flows6), DR only: an entry's tun is always 0. */
struct xvs_fast6_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct xvs_fast_value {
	__u8 dst_mac[6]; /* the real server's (DR, NAT) or the next hop's (TUN) */
	__u8 tun;        /* 1: encapsulate in IPIP from tun_saddr to daddr */
	__u8 nat;        /* 1: the destination becomes daddr:nat_port (NAT, IPv4) */
	__be32 tun_saddr;
	__be32 daddr;     /* TUN: the outer destination; NAT: the real server's address */
	__u16 mtu;        /* TUN: a packet that would not fit goes to the worker (ICMP) */
	__be16 nat_port;  /* NAT: the real server's port */
	__u32 stats_slot; /* the real server's id: its slot in xvs_fast_stats */
	__u32 generation; /* xvs_steer_config.fast_generation when written */
	__u32 timeout;    /* seconds idle after which the worker decides again */
	__u64 last_seen;  /* bpf_ktime_get_coarse_ns() of the last packet, to the second */
};

/* The steering program's counters, one slot each, in a per-CPU array. X(NAME, label):
 * label is the Prometheus label value. Every packet increments exactly one of them. */
#define XVS_XDP_STATS(X)                                                                 \
	X(STEERED, "steered")               /* redirected to the queue's AF_XDP socket */  \
	X(DROP_NO_SOCKET, "drop_no_socket") /* a service packet, no worker socket bound */ \
	X(PASS_NOT_IP, "pass_not_ip")       /* ARP, VLAN... : neither IPv4 nor IPv6 */      \
	X(PASS_OTHER_PROTO, "pass_other_proto") /* ICMP, VRRP, ... */                      \
	X(PASS_NOT_SERVICE, "pass_not_service") /* TCP/UDP to no configured service */     \
	X(PASS_FRAGMENT, "pass_fragment")   /* IPv4 and IPv6 fragments carry no usable ports */ \
	X(PASS_IPV6_EXT, "pass_ipv6_ext")   /* an IPv6 extension chain too long, truncated, or bad */ \
	X(PASS_TRUNCATED, "pass_truncated") /* frame shorter than its headers */            \
	X(PASS_BAD_HEADER, "pass_bad_header") /* IPv4 header below 20 bytes, wrong IP version */ \
	X(NAT_REPLY, "nat_reply")           /* NAT reply translated, to the learned MAC */ \
	X(NAT_REPLY_FIB, "nat_reply_fib")   /* NAT reply translated, next hop from the FIB */ \
	X(NAT_ICMP, "nat_icmp")             /* ICMP error quoting a NAT flow, translated */  \
	X(DROP_NAT_NO_NEIGH, "drop_nat_no_neigh") /* NAT reply with no way to the client */ \
	X(PASS_NOT_OURS, "pass_not_ours")   /* unicast to another host's MAC */               \
	X(FAST_PATH, "fast_path")           /* an established DR/TUN/NAT flow forwarded in XDP */ \
	X(DROP_L2_MULTICAST, "drop_l2_multicast") /* to a service, in an L2 group frame */  \
	X(DROP_BAD_IP_LENGTH, "drop_bad_ip_length") /* total length < IHL or > frame; IPv6 payload > frame */ \
	X(DROP_BAD_IP_CHECKSUM, "drop_bad_ip_checksum")                                    \
	X(DROP_MARTIAN_SOURCE, "drop_martian_source") /* 0/8, 127/8, 224/4, 255.255.255.255, ::, ::1, ff00::/8, ::ffff:0:0/96, own */ \
	X(DROP_PORT_ZERO, "drop_port_zero")                                                \
	X(DROP_BAD_TCP_OFFSET, "drop_bad_tcp_offset") /* data offset < 5 or past the end */ \
	X(DROP_BAD_TCP_FLAGS, "drop_bad_tcp_flags") /* SYN+FIN, SYN+RST, none, ... */      \
	X(DROP_BAD_UDP_LENGTH, "drop_bad_udp_length") /* < 8 or past the IP payload */ \
	X(DROP_SOURCE_ROUTE, "drop_source_route") /* IPv4 LSRR/SSRR, IPv6 routing header with segments left */ \
	X(PASS_NAT_UNKNOWN, "pass_nat_unknown") /* from a NAT real server's port, of no connection the workers know: untranslated */ \
	X(DROP_NAT_FRAGMENT, "drop_nat_fragment") /* a fragment from a NAT real server: never leaves untranslated */ \
	X(FNAT_REPLY, "fnat_reply")         /* FullNAT reply translated (to VIP:vport → client) */ \
	X(PASS_FNAT_UNKNOWN, "pass_fnat_unknown") /* to a FullNAT local address, of no connection the workers know */ \
	X(FNAT_ICMP, "fnat_icmp")           /* ICMP error quoting a FullNAT request, translated for its client */ \
	X(DROP_SYN_GUARD, "drop_syn_guard") /* a SYN shed by the guard: not a retransmission, while its queue is overloaded */

/* The TCP flag combinations a stack sends, a bit set indexed by flags & 0x37 (FIN, SYN,
 * RST, ACK, URG; PSH, ECE and CWR go with any): SYN, SYN+URG, SYN+ACK, RST, RST+ACK,
 * FIN+ACK, FIN+ACK+URG, ACK, ACK+URG (conntrack's table). The pipeline checks the same
 * set (dataplane/src/screen.rs); the ABI probe compares the two. */
#define XVS_TCP_VALID_FLAGS                                                              \
	((1ULL << 0x02) | (1ULL << 0x22) | (1ULL << 0x12) | (1ULL << 0x04) | (1ULL << 0x14) | \
	 (1ULL << 0x11) | (1ULL << 0x31) | (1ULL << 0x10) | (1ULL << 0x30))
#define XVS_TCP_FLAGS_MASK 0x37

enum xvs_xdp_stat {
#define XVS_STAT_ENUM(name, label) XVS_STAT_##name,
	XVS_XDP_STATS(XVS_STAT_ENUM)
#undef XVS_STAT_ENUM
	XVS_STAT_MAX
};

struct xvs_xdp_counters {
	__u64 packets[XVS_STAT_MAX];
};

/* The real server's IPIP decapsulation (xvs_decap). */
#define XVS_MAX_DECAP_VIPS 1024

#define XVS_DECAP_STATS(X)                                                              \
	X(DECAPPED, "decapped")         /* IPIP or IPv6-in-IPv6 to a VIP: outer header removed */ \
	X(PASS_NOT_IPIP, "pass_not_ipip") /* everything else (no tunnel): untouched */     \
	X(PASS_NOT_VIP, "pass_not_vip") /* IPIP whose inner destination is no VIP here */ \
	X(PASS_TRUNCATED, "pass_truncated")                                                \
	X(ERROR, "error")               /* the kernel refused to shrink the packet */ \
	X(PASS_FRAGMENT, "pass_fragment") /* an outer IPv4 fragment: the kernel reassembles first */

enum xvs_decap_stat {
#define XVS_DECAP_ENUM(name, label) XVS_DECAP_##name,
	XVS_DECAP_STATS(XVS_DECAP_ENUM)
#undef XVS_DECAP_ENUM
	XVS_DECAP_MAX
};

struct xvs_decap_counters {
	__u64 packets[XVS_DECAP_MAX];
};

/* The real server's FullNAT program (xvs_toa_in on tc ingress, xvs_toa_out on egress):
 * a connection from a director's local address whose SYN carries the
 * client's address option (kind XVS_TOA_KIND: the client's port and IPv4 address, 8
 * bytes, or port and IPv6 address, 20 bytes; the toa module's format) is given the
 * client as its peer: its packets in arrive from the client, its packets out leave to
 * the local address again. Only options from the trusted local addresses count
 * (xvs_toa_trusted). Keys and values hold IPv4 addresses in the first 4 bytes. */
#define XVS_TOA_KIND 254
#define XVS_MAX_TOA_TRUSTED 256
#define XVS_MAX_TOA_CONNS 262144
struct xvs_toa_key {
	__u8 addr[16];   /* the peer as the packet names it: a local address, or the client */
	__be16 port;     /* its port */
	__be16 own_port; /* this host's port (the service's) */
	__u8 v6;
	__u8 pad[3];
};
struct xvs_toa_value {
	__u8 addr[16];
	__be16 port;
	__u16 pad;
};
#define XVS_TOA_STATS(X)                                                                 \
	X(OPTION, "option")       /* a SYN from a trusted local address named its client */ \
	X(UNTRUSTED, "untrusted") /* an option from an address not trusted: ignored */   \
	X(COLLISION, "collision") /* its client's port already in use by another local pair here: not restored */ \
	X(RESTORED, "restored")   /* a segment in, given its client as source */         \
	X(REVERSED, "reversed")   /* a segment out, given the local pair as destination */
enum xvs_toa_stat {
#define XVS_TOA_ENUM(name, label) XVS_TOA_##name,
	XVS_TOA_STATS(XVS_TOA_ENUM)
#undef XVS_TOA_ENUM
	XVS_TOA_MAX
};
struct xvs_toa_counters {
	__u64 packets[XVS_TOA_MAX];
};
#endif
