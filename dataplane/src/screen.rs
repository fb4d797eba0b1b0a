//! The input checks a frame passes before it may reach a real server: what the kernel's
//! IPv4 input (`ip_rcv`, `ip_route_input`) and TCP rules reject in front of IPVS. The
//! steering program runs the same checks (`bpf/include/screen.h`) on every packet to a
//! service, so a worker sees a rejected frame only in tests; both count each rejection
//! under the same reason label.

use crate::verdict::DropReason;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet, Upper};
use crate::wire::tcp::{self, TcpPacket};
use crate::wire::udp::{self, UdpPacket};

/// TCP flag combinations a stack sends (Netfilter conntrack's table), as a bit set
/// indexed by the flags FIN, SYN, RST, ACK and URG (`flags & 0x37`: PSH, ECE and CWR do
/// not matter). SYN+FIN, SYN+RST, no flag at all, FIN or URG without ACK: never.
pub const TCP_VALID_FLAGS: u64 = 1 << 0x02 // SYN
    | 1 << 0x22 // SYN URG
    | 1 << 0x12 // SYN ACK
    | 1 << 0x04 // RST
    | 1 << 0x14 // RST ACK
    | 1 << 0x11 // FIN ACK
    | 1 << 0x31 // FIN ACK URG
    | 1 << 0x10 // ACK
    | 1 << 0x30; // ACK URG

/// The flags that decide validity; the rest (PSH, ECE, CWR) go with any combination.
pub const TCP_FLAGS_MASK: u8 = 0x37;

#[inline(always)]
pub fn tcp_flags_valid(flags: u8) -> bool {
    TCP_VALID_FLAGS >> (flags & TCP_FLAGS_MASK) & 1 != 0
}

/// A source no host may send from (the kernel's martian sources): 0.0.0.0/8,
/// 127.0.0.0/8, multicast and the limited broadcast. The director's own addresses and
/// its VIPs are checked against the snapshot.
#[inline(always)]
pub fn martian_source(saddr: u32) -> bool {
    let first = saddr >> 24;
    first == 0 || first == 127 || (first & 0xf0) == 0xe0 || saddr == u32::MAX
}

/// An IPv6 packet's header, its upper-layer protocol, and the upper layer's bytes.
pub type Ipv6Upper<'a> = (Ipv6Packet<&'a [u8]>, u8, &'a [u8]);

/// An IPv6 source no host may send from, as the kernel's `ip6_rcv_core` and RFC 4291
/// see it: the unspecified address, loopback, multicast and IPv4-mapped addresses. The
/// director's own addresses and its VIPs are checked against the snapshot.
#[inline(always)]
pub fn martian_source6(saddr: u128) -> bool {
    saddr <= 1 || saddr >> 120 == 0xff || saddr >> 32 == 0xffff
}

/// The IPv6 header of `b` (an Ethernet payload), its payload length checked against the
/// frame, and the upper layer after at most `ipv6::MAX_EXT_HEADERS` extension headers:
/// the header, the upper protocol and its bytes. A fragment has no ports to schedule
/// on; a chain the walk cannot follow (too long, truncated, hop-by-hop not first) is
/// `ExtHeaders` (the steering program hands both to the kernel).
#[inline(always)]
pub fn ipv6(b: &[u8]) -> Result<Ipv6Upper<'_>, DropReason> {
    if b.len() < ipv6::HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let ip = Ipv6Packet::new_unchecked(b);
    if ip.version() != 6 {
        return Err(DropReason::BadIpVersion);
    }
    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    if end > b.len() {
        return Err(DropReason::BadIpLength);
    }
    match ip.upper_layer() {
        // The walk stays inside the payload, so `offset` is at most its length.
        Upper::Found { protocol, offset } => {
            Ok((ip, protocol, &b[(ipv6::HEADER_LEN + offset).min(end)..end]))
        }
        Upper::Fragment => Err(DropReason::Fragment),
        Upper::SourceRouted => Err(DropReason::SourceRoute),
        Upper::TooLong | Upper::Truncated | Upper::Malformed => Err(DropReason::ExtHeaders),
    }
}

/// The IPv4 header of `b` (an Ethernet payload), checked as `ip_rcv` does: version,
/// header length, total length against the frame, header checksum.
#[inline(always)]
pub fn ipv4(b: &[u8]) -> Result<Ipv4Packet<&[u8]>, DropReason> {
    if b.len() < ipv4::MIN_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let ip = Ipv4Packet::new_unchecked(b);
    if ip.version() != 4 {
        return Err(DropReason::BadIpVersion);
    }
    let hl = ip.header_len();
    if hl < ipv4::MIN_HEADER_LEN {
        return Err(DropReason::BadIpHeaderLen);
    }
    let tl = usize::from(ip.total_len());
    if tl < hl || tl > b.len() {
        return Err(DropReason::BadIpLength);
    }
    if !ip.verify_checksum() {
        return Err(DropReason::BadIpChecksum);
    }
    if hl > ipv4::MIN_HEADER_LEN && source_routed(&b[ipv4::MIN_HEADER_LEN..hl]) {
        return Err(DropReason::SourceRoute);
    }
    Ok(ip)
}

/// An IPv4 loose or strict source route option (LSRR 131, SSRR 137) among `options`:
/// `ip_rcv_options` drops such a packet unless `accept_source_route` is on (a host's
/// default is off). The walk stops at the list's end, or at a length it cannot follow
/// (the steering program's `source_routed` reads them the same way).
pub fn source_routed(options: &[u8]) -> bool {
    const EOL: u8 = 0;
    const NOP: u8 = 1;
    const LSRR: u8 = 131;
    const SSRR: u8 = 137;
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            EOL => return false,
            NOP => i += 1,
            LSRR | SSRR => return true,
            _ => match options.get(i + 1) {
                Some(&len) if len >= 2 => i += usize::from(len),
                _ => return false,
            },
        }
    }
    false
}

/// Ports and flags of a TCP segment (`seg`: the IP payload), its header checked.
#[inline(always)]
pub fn tcp(seg: &[u8]) -> Result<(u16, u16, u8), DropReason> {
    if seg.len() < tcp::MIN_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let t = TcpPacket::new_unchecked(seg);
    let hl = t.header_len();
    if hl < tcp::MIN_HEADER_LEN || hl > seg.len() {
        return Err(DropReason::BadTcpOffset);
    }
    if !tcp_flags_valid(t.flags()) {
        return Err(DropReason::BadTcpFlags);
    }
    Ok((t.src_port(), t.dst_port(), t.flags()))
}

/// Ports of a UDP datagram (`dgram`: the IP payload), its length checked.
#[inline(always)]
pub fn udp(dgram: &[u8]) -> Result<(u16, u16), DropReason> {
    if dgram.len() < udp::HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let u = UdpPacket::new_unchecked(dgram);
    let len = usize::from(u.len());
    if len < udp::HEADER_LEN || len > dgram.len() {
        return Err(DropReason::BadUdpLength);
    }
    Ok((u.src_port(), u.dst_port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_PSH, FLAG_RST, FLAG_SYN};

    const URG: u8 = 0x20;
    const ECE: u8 = 0x40;
    const CWR: u8 = 0x80;

    #[test]
    fn source_route_options_are_found_among_others() {
        let lsrr = [131, 7, 4, 10, 0, 0, 9];
        assert!(source_routed(&lsrr));
        assert!(source_routed(&[1, 1, 137, 3, 4]), "after NOPs");
        // Record route (7) first, then a strict source route.
        assert!(source_routed(&[7, 3, 4, 137, 3, 4, 0, 0]));
        assert!(!source_routed(&[1, 1, 1, 0]), "NOPs and the end");
        assert!(!source_routed(&[0, 131, 3, 4]), "after the end of the list");
        assert!(
            !source_routed(&[7, 0, 131]),
            "a length the walk cannot follow"
        );
        assert!(!source_routed(&[68, 4, 5, 0]), "a timestamp");
        assert!(!source_routed(&[]));
    }

    #[test]
    fn flags_a_stack_sends_pass() {
        for f in [
            FLAG_SYN,
            FLAG_SYN | ECE | CWR,
            FLAG_SYN | FLAG_ACK,
            FLAG_ACK,
            FLAG_ACK | FLAG_PSH,
            FLAG_FIN | FLAG_ACK,
            FLAG_FIN | FLAG_ACK | FLAG_PSH,
            FLAG_RST,
            FLAG_RST | FLAG_ACK,
            FLAG_ACK | URG,
        ] {
            assert!(tcp_flags_valid(f), "{f:#04x}");
        }
    }

    #[test]
    fn flags_no_stack_sends_fail() {
        for f in [
            0,
            FLAG_PSH,
            FLAG_SYN | FLAG_FIN,
            FLAG_SYN | FLAG_RST,
            FLAG_SYN | FLAG_FIN | FLAG_ACK,
            FLAG_FIN,
            FLAG_FIN | FLAG_PSH | URG,
            URG,
            FLAG_RST | FLAG_FIN,
            0x3f,
            0xff,
        ] {
            assert!(!tcp_flags_valid(f), "{f:#04x}");
        }
    }

    /// The bit set against the rule it encodes, over all 256 flag bytes.
    #[test]
    fn flag_table_matches_its_rule() {
        for f in 0..=255u8 {
            let (syn, fin, rst, ack) = (
                f & FLAG_SYN != 0,
                f & FLAG_FIN != 0,
                f & FLAG_RST != 0,
                f & FLAG_ACK != 0,
            );
            let urg = f & URG != 0;
            let rule = match (syn, fin, rst) {
                (true, false, false) => !(ack && urg),
                (false, false, true) => !urg,
                (false, true, false) => ack,
                (false, false, false) => ack,
                _ => false,
            };
            assert_eq!(tcp_flags_valid(f), rule, "{f:#04x}");
        }
    }

    /// The word-at-a-time sum against the byte-pair one, on headers with every
    /// checksum value.
    #[test]
    fn the_fast_header_sum_agrees_with_the_plain_one() {
        let mut h = [
            0x45u8, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 100, 1, 1,
            1, 0,
        ];
        for c in 0..=u16::MAX {
            h[10..12].copy_from_slice(&c.to_be_bytes());
            for len in [20, 24] {
                h[0] = 0x40 | (len / 4) as u8;
                let plain =
                    crate::wire::checksum::fold(crate::wire::checksum::sum(0, &h[..len])) == 0xffff;
                assert_eq!(
                    crate::wire::checksum::header_ok(&h[..len]),
                    plain,
                    "{c:#06x} {len}"
                );
            }
            h[0] = 0x45;
        }
    }

    #[test]
    fn martians() {
        for a in [
            0u32,
            0x00ff_ffff,
            0x7f00_0001,
            0xe000_0001,
            0xefff_ffff,
            u32::MAX,
        ] {
            assert!(martian_source(a), "{a:#x}");
        }
        for a in [
            0x0a00_0001u32,
            0xc0a8_0101,
            0xf000_0001,
            0x0100_0000,
            0xdfff_ffff,
        ] {
            assert!(!martian_source(a), "{a:#x}");
        }
    }
}
