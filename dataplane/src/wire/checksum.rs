//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

/// One's-complement sum of `data` as big-endian 16-bit words, added to `acc`, not folded.
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// Folds a 32-bit accumulator into 16 bits.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum of `data` (complement of the folded sum).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// The sum of the IPv4 pseudo-header used by TCP and UDP.
pub fn pseudo_header(src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: u16) -> u32 {
    let mut acc = sum(0, &src);
    acc = sum(acc, &dst);
    acc + u32::from(proto) + u32::from(l4_len)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 8.1) used by TCP, UDP and ICMPv6:
/// addresses, upper-layer length as 32 bits, next header.
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, l4_len: u32) -> u32 {
    let mut acc = sum(0, &src);
    acc = sum(acc, &dst);
    acc + (l4_len >> 16) + (l4_len & 0xffff) + u32::from(next_header)
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word changes from `old` to `new`.
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!check) + u32::from(!old) + u32::from(new))
}

/// As [`update16`], for a 32-bit field (an address) that changed.
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let c = update16(check, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// As [`update16`], for a 128-bit field (an IPv6 address) that changed.
pub fn update128(check: u16, old: u128, new: u128) -> u16 {
    let c = update32(check, (old >> 96) as u32, (new >> 96) as u32);
    let c = update32(c, (old >> 64) as u32, (new >> 64) as u32);
    let c = update32(c, (old >> 32) as u32, (new >> 32) as u32);
    update32(c, old as u32, new as u32)
}

/// Whether an IPv4 header (a multiple of 4 bytes) sums to 0xffff, its checksum included.
/// Per packet on the hot path, so four bytes at a time in native order: the one's
/// complement sum is the same in either byte order up to a swap, and 0xffff swapped is
/// 0xffff.
#[inline(always)]
pub fn header_ok(h: &[u8]) -> bool {
    let mut acc: u64 = 0;
    for c in h.chunks_exact(4) {
        acc += u64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]]));
    }
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // The example words of RFC 1071 section 3: sum 0xddf2 before complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(0, &[0xab]), 0xab00);
    }

    proptest! {
        /// A UDP checksum over IPv6 from the pseudo-header sum, as etherparse computes it.
        #[test]
        fn ipv6_pseudo_header_agrees_with_etherparse(
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
            sport in any::<u16>(), dport in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let udp = etherparse::UdpHeader::without_ipv4_checksum(sport, dport, data.len()).unwrap();
            let ip = etherparse::Ipv6Header {
                source: src,
                destination: dst,
                next_header: etherparse::IpNumber::UDP,
                payload_length: (8 + data.len()) as u16,
                ..Default::default()
            };
            let theirs = udp.calc_checksum_ipv6(&ip, &data).unwrap();
            let mut seg = udp.to_bytes().to_vec();
            seg[6] = 0;
            seg[7] = 0;
            seg.extend_from_slice(&data);
            let acc = pseudo_header_v6(src, dst, 17, seg.len() as u32);
            let mut ours = !fold(sum(acc, &seg));
            // UDP sends 0 as 0xffff (0 means no checksum).
            if ours == 0 {
                ours = 0xffff;
            }
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn incremental_matches_recompute(mut data in proptest::collection::vec(any::<u8>(), 4..64),
                                         at in 0usize..30, new in any::<u16>()) {
            let at = (at % (data.len() / 2)) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let after = checksum(&data);
            // 0x0000 and 0xffff are the same value in one's complement.
            let inc = update16(before, old, new);
            prop_assert!(inc == after || (inc == 0xffff && after == 0) || (inc == 0 && after == 0xffff));
        }
    }
}
