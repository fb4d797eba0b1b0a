/* The benchmark programs' settings (trafgen, fwd) and the sink's count, shared with their Rust loaders in
 * bpf/src/bench.rs: build.rs's probe prints the layout, Rust asserts against it. Each is
 * the one `volatile const` of its program, so it sits at offset 0 of the .rodata the
 * loader fills before loading. */
#ifndef XVS_BENCH_ABI_H
#define XVS_BENCH_ABI_H

#include <linux/types.h>

struct xvs_trafgen_config {
	__u32 flows;      /* distinct flows to cycle through, >= 1 */
	__u32 saddr_base; /* first client address, host order: flow i uses base + (i & 0xfffff) */
};

struct xvs_fwd_config {
	__be32 vip;
	__u8 rs_mac[6];
	__u8 own_mac[6];
};

/* The sink's per-CPU count of what reached the real server. */
struct xvs_sink_count {
	__u64 packets;
	__u64 bytes;
};

/* xvs_sink_gaps's record: the longest time between two frames (from the first frame on),
 * in CLOCK_MONOTONIC nanoseconds, and when it ended. */
struct xvs_sink_gap {
	__u64 last_ns;
	__u64 max_gap_ns;
	__u64 max_at_ns;
};

#endif
