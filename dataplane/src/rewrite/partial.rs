//! Completing the TCP and UDP checksums a virtual link left partial.
//!
//! A veth hands a frame from another namespace's stack over with the checksum offloaded
//! (CHECKSUM_PARTIAL): the field holds only the folded pseudo-header sum, the receiving
//! stack is trusted to finish it. Through XDP and AF_XDP that promise is lost: forwarded
//! as it is, the frame reaches its real server with a wrong checksum and is dropped. So a
//! director on such a link completes it first (before any rewrite: an incremental update
//! of a partial sum would be wrong). A field that merely equals the pseudo-header sum of
//! a complete packet (one in 65,536) is recognised by summing the packet and left alone.

use crate::wire::checksum;
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN};

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Completes the TCP or UDP checksum of an Ethernet frame when it holds only the
/// pseudo-header sum. Returns whether it did; any frame it cannot read is left as it is.
pub fn complete(frame: &mut [u8]) -> bool {
    let Some(ethertype) = frame.get(12..14) else {
        return false;
    };
    match u16::from_be_bytes([ethertype[0], ethertype[1]]) {
        ETHERTYPE_IPV4 => complete_v4(&mut frame[HEADER_LEN..]),
        ETHERTYPE_IPV6 => complete_v6(&mut frame[HEADER_LEN..]),
        _ => false,
    }
}

fn complete_v4(ip: &mut [u8]) -> bool {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return false;
    }
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // A fragment's checksum covers the datagram, not this piece.
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    if ihl < 20 || total < ihl || total > ip.len() || fragment {
        return false;
    }
    let (proto, src, dst) = (
        ip[9],
        [ip[12], ip[13], ip[14], ip[15]],
        [ip[16], ip[17], ip[18], ip[19]],
    );
    let l4 = &mut ip[ihl..total];
    let Ok(len) = u16::try_from(l4.len()) else {
        return false;
    };
    let pseudo = checksum::pseudo_header(src, dst, proto, len);
    complete_l4(l4, proto, pseudo, false)
}

fn complete_v6(ip: &mut [u8]) -> bool {
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return false;
    }
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if 40 + payload > ip.len() {
        return false;
    }
    // Extension headers are not walked: a stack offloading checksums sends none.
    let proto = ip[6];
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    dst.copy_from_slice(&ip[24..40]);
    let l4 = &mut ip[40..40 + payload];
    let pseudo = checksum::pseudo_header_v6(src, dst, proto, l4.len() as u32);
    complete_l4(l4, proto, pseudo, true)
}

/// `l4` is a TCP segment or UDP datagram whose pseudo-header sums to `pseudo`.
fn complete_l4(l4: &mut [u8], proto: u8, pseudo: u32, v6: bool) -> bool {
    let at = match proto {
        PROTO_TCP if l4.len() >= 20 => 16,
        PROTO_UDP if l4.len() >= 8 => 6,
        _ => return false,
    };
    let field = u16::from_be_bytes([l4[at], l4[at + 1]]);
    // IPv4 UDP without a checksum (0) has nothing to complete.
    if field != checksum::fold(pseudo) || (proto == PROTO_UDP && !v6 && field == 0) {
        return false;
    }
    if checksum::fold(checksum::sum(pseudo, l4)) == 0xffff {
        return false;
    }
    l4[at..at + 2].copy_from_slice(&[0, 0]);
    let mut sum = !checksum::fold(checksum::sum(pseudo, l4));
    // UDP sends a computed 0 as all ones (0 means "none" over IPv4).
    if proto == PROTO_UDP && sum == 0 {
        sum = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    fn tcp4(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 100], 64)
            .tcp(40000, 80, 7, 64240)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    fn udp6(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6([0x20; 16], [0x30; 16], 64)
            .udp(40000, 53)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// The frame as a veth hands it over: the field holds the folded pseudo-header sum.
    fn partial(frame: &[u8], at: usize) -> Vec<u8> {
        let mut f = frame.to_vec();
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let pseudo = match p.net.unwrap() {
            etherparse::NetSlice::Ipv4(ip) => {
                let h = ip.header();
                checksum::pseudo_header(
                    h.source(),
                    h.destination(),
                    h.protocol().0,
                    h.total_len() - h.ihl() as u16 * 4,
                )
            }
            etherparse::NetSlice::Ipv6(ip) => {
                let h = ip.header();
                checksum::pseudo_header_v6(
                    h.source(),
                    h.destination(),
                    h.next_header().0,
                    u32::from(h.payload_length()),
                )
            }
            _ => panic!("not IP"),
        };
        f[at..at + 2].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        f
    }

    /// Whether etherparse finds the transport checksum right.
    fn valid(frame: &[u8]) -> bool {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        match (p.net.unwrap(), p.transport.unwrap()) {
            (etherparse::NetSlice::Ipv4(ip), TransportSlice::Tcp(t)) => {
                let h = ip.header();
                t.calc_checksum_ipv4(h.source(), h.destination()).unwrap() == t.checksum()
            }
            (etherparse::NetSlice::Ipv6(ip), TransportSlice::Udp(u)) => {
                let h = ip.header();
                u.to_header()
                    .calc_checksum_ipv6(&h.to_header(), u.payload())
                    .unwrap()
                    == u.checksum()
            }
            _ => panic!("unexpected frame"),
        }
    }

    #[test]
    fn a_partial_tcp_checksum_is_completed_as_etherparse_computes_it() {
        let whole = tcp4(b"GET / HTTP/1.1\r\n\r\n");
        let at = 14 + 20 + 16;
        let mut f = partial(&whole, at);
        assert!(!valid(&f));
        assert!(complete(&mut f));
        assert_eq!(f, whole);
        assert!(valid(&f));
    }

    #[test]
    fn a_partial_udp6_checksum_is_completed() {
        let whole = udp6(b"query");
        let mut f = partial(&whole, 14 + 40 + 6);
        assert!(complete(&mut f));
        assert_eq!(f, whole);
    }

    #[test]
    fn complete_checksums_and_unreadable_frames_are_left_alone() {
        let mut whole = tcp4(b"x");
        let copy = whole.clone();
        assert!(!complete(&mut whole));
        assert_eq!(whole, copy);
        for n in 0..copy.len() {
            let mut cut = copy[..n].to_vec();
            complete(&mut cut);
        }
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(!complete(&mut arp));
    }

    proptest! {
        /// Any payload: a partial checksum becomes etherparse's, a complete one stays.
        #[test]
        fn completes_exactly_the_partial_ones(payload in proptest::collection::vec(any::<u8>(), 0..1400)) {
            let whole = tcp4(&payload);
            let mut same = whole.clone();
            prop_assert!(!complete(&mut same));
            prop_assert_eq!(&same, &whole);
            let mut f = partial(&whole, 14 + 20 + 16);
            let changed = complete(&mut f);
            prop_assert_eq!(&f, &whole);
            // Unchanged only when the right checksum is the pseudo-header sum itself.
            prop_assert!(changed || partial(&whole, 14 + 20 + 16) == whole);
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            complete(&mut bytes);
        }
    }
}
