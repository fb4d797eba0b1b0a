// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xvs_pass: passes everything. A veth delivers frames sent with XDP_TX or redirected into
 * it only when its peer runs an XDP program; the labs put this one on the director's
 * peer so NAT replies (sent back with XDP_TX) arrive. Real NICs need nothing of the kind. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xvs_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
