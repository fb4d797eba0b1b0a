/* The maps of the steering program: services, the AF_XDP sockets per RX queue, counters. */
#ifndef XVS_MAPS_H
#define XVS_MAPS_H

#include <linux/bpf.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>
#include "xvs_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xvs_svc_key);
	__type(value, struct xvs_svc_value);
	__uint(max_entries, XVS_MAX_SERVICES);
} xvs_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xvs_svc6_key);
	__type(value, struct xvs_svc_value);
	__uint(max_entries, XVS_MAX_SERVICES);
} xvs_services6 SEC(".maps");

/* Indexed by RX queue: XDP can only redirect to the socket bound to the packet's queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, XVS_MAX_QUEUES);
} xvs_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xvs_xdp_counters);
	__uint(max_entries, 1);
} xvs_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xvs_nat_key);
	__type(value, struct xvs_nat_value);
	__uint(max_entries, XVS_MAX_NAT_BACKENDS);
} xvs_nat_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xvs_nat6_key);
	__type(value, struct xvs_nat6_value);
	__uint(max_entries, XVS_MAX_NAT_BACKENDS);
} xvs_nat_backends6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xvs_nat_out);
	__uint(max_entries, XVS_MAX_NAT_OUT_SLOTS);
} xvs_nat_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __be32);
	__type(value, struct xvs_nat_client);
	__uint(max_entries, XVS_MAX_NAT_CLIENTS);
} xvs_nat_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct in6_addr);
	__type(value, struct xvs_nat_client);
	__uint(max_entries, XVS_MAX_NAT_CLIENTS);
} xvs_nat_clients6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xvs_fast_key);
	__type(value, __u32);
	__uint(max_entries, XVS_MAX_NAT_CONNS);
} xvs_nat_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xvs_fast6_key);
	__type(value, __u32);
	__uint(max_entries, XVS_MAX_NAT_CONNS);
} xvs_nat_conns6 SEC(".maps");

/* The NAT real servers' addresses: a fragment from one is dropped, never passed on
 * untranslated (its ports, in the first fragment only, cannot be looked up). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, __u8);
	__uint(max_entries, XVS_MAX_NAT_BACKENDS);
} xvs_nat_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct in6_addr);
	__type(value, __u8);
	__uint(max_entries, XVS_MAX_NAT_BACKENDS);
} xvs_nat_addrs6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xvs_steer_config);
	__uint(max_entries, 1);
} xvs_steer_config SEC(".maps");

/* ifindex → the director's MAC there; an interface absent from it is not checked. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct xvs_local_mac);
	__uint(max_entries, XVS_MAX_LOCAL_MACS);
} xvs_local_macs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, __u8);
	__uint(max_entries, XVS_MAX_LOCAL_ADDRS);
} xvs_local_addrs SEC(".maps");

/* The director's IPv6 addresses and VIPs: martian as a source. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct in6_addr);
	__type(value, __u8);
	__uint(max_entries, XVS_MAX_LOCAL_ADDRS);
} xvs_local_addrs6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xvs_fast_key);
	__type(value, struct xvs_fast_value);
	__uint(max_entries, XVS_MAX_FAST_FLOWS);
} xvs_fast_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xvs_fast6_key);
	__type(value, struct xvs_fast_value);
	__uint(max_entries, XVS_MAX_FAST_FLOWS);
} xvs_fast_flows6 SEC(".maps");

/* FullNAT's local addresses, and its connections keyed as their replies arrive. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, __u8);
	__uint(max_entries, XVS_MAX_FNAT_LOCALS);
} xvs_fnat_lips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct in6_addr);
	__type(value, __u8);
	__uint(max_entries, XVS_MAX_FNAT_LOCALS);
} xvs_fnat_lips6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xvs_fast_key);
	__type(value, struct xvs_fnat_value);
	__uint(max_entries, XVS_MAX_FNAT_CONNS);
} xvs_fnat_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xvs_fast6_key);
	__type(value, struct xvs_fnat_value);
	__uint(max_entries, XVS_MAX_FNAT_CONNS);
} xvs_fnat_conns6 SEC(".maps");

/* Per real-server id: packets and bytes the fast path forwarded (added to the workers'
 * counts at read time). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xvs_nat_out);
	__uint(max_entries, XVS_MAX_NAT_OUT_SLOTS);
} xvs_fast_stats SEC(".maps");

/* The SYN guard (syn_guard.h): per RX queue, until when it is on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xvs_syn_guard);
	__uint(max_entries, XVS_MAX_QUEUES);
} xvs_syn_guard SEC(".maps");

/* The SYN hash's key (one entry). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xvs_syn_key);
	__uint(max_entries, 1);
} xvs_syn_key SEC(".maps");

/* The SYNs the guard shed (XVS_SYN_SEEN_SLOTS): a retransmission finds its bits. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32[2]);
	__uint(max_entries, XVS_SYN_SEEN_SLOTS);
} xvs_syn_seen SEC(".maps");

#endif
