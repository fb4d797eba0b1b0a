//! IPv6 headers (RFC 8200) and the walk over their extension headers to the upper layer.

use std::net::Ipv6Addr;

use super::{be16, be32, set_be16, set_be32, Field, Result, WireError};

mod field {
    use super::Field;
    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
}

pub const HEADER_LEN: usize = 40;

/// Next-header values of the extension headers the walk knows.
pub const NH_HOP_BY_HOP: u8 = 0;
pub const NH_ROUTING: u8 = 43;
pub const NH_FRAGMENT: u8 = 44;
pub const NH_AUTH: u8 = 51;
pub const NH_DEST_OPTS: u8 = 60;
/// IPv6-in-IPv6 (TUN's encapsulation), and ICMPv6.
pub const NH_IPV6: u8 = 41;
pub const NH_ICMPV6: u8 = 58;

/// Extension headers a packet may carry before its upper layer. A longer chain is not
/// walked (a packet of a real client has one or two at most); it is left to the kernel.
pub const MAX_EXT_HEADERS: usize = 4;

/// A view of an IPv6 packet.
///
/// After `new_checked`: the buffer holds the 40-byte header and `payload_len` bytes, so
/// `payload()` is exactly the bytes after the header (Ethernet padding excluded).
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let p = Ipv6Packet { buffer };
        if p.version() != 6 {
            return Err(WireError::Malformed);
        }
        if p.buffer.as_ref().len() < HEADER_LEN + usize::from(p.payload_len()) {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn word0(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        (self.word0() >> 28) as u8
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src_raw(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        a
    }

    #[inline]
    pub fn dst_raw(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        a
    }

    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src_raw())
    }

    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst_raw())
    }

    /// The bytes after the fixed header, to `payload_len`: extension headers and the
    /// upper layer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Where the upper layer starts, walking at most `MAX_EXT_HEADERS` extension headers.
    #[inline]
    pub fn upper_layer(&self) -> Upper {
        walk(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    #[inline]
    pub fn set_version_class_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        set_be32(self.buffer.as_mut(), field::VER_TC_FLOW, w);
    }

    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    #[inline]
    pub fn set_src_raw(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a);
    }

    #[inline]
    pub fn set_dst_raw(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// Where the walk over the extension headers ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upper {
    /// The upper layer: its protocol (TCP, UDP, ICMPv6, or anything else) and its offset
    /// in the payload.
    Found { protocol: u8, offset: usize },
    /// A fragment (its offset or more-fragments flag set): the ports may be elsewhere.
    Fragment,
    /// More than `MAX_EXT_HEADERS` extension headers.
    TooLong,
    /// An extension header runs past the payload.
    Truncated,
    /// Hop-by-hop options anywhere but first (RFC 8200 4.1).
    Malformed,
    /// A routing header with segments left: the packet is not at its final destination
    /// (the upper layer was found behind it).
    SourceRouted,
}

/// The length of the extension header `nh` at the start of `rest`, and its next header;
/// None when `nh` is no extension header the walk knows.
#[inline]
fn ext_header(nh: u8, rest: &[u8]) -> Option<core::result::Result<(usize, u8), Upper>> {
    let len = match nh {
        NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS => rest.get(1).map(|&l| (usize::from(l) + 1) * 8),
        NH_FRAGMENT => Some(8),
        // RFC 4302: the length is in 4-byte words, minus 2.
        NH_AUTH => rest.get(1).map(|&l| (usize::from(l) + 2) * 4),
        _ => return None,
    };
    Some(match len {
        Some(len) if rest.len() >= len => Ok((len, rest[0])),
        _ => Err(Upper::Truncated),
    })
}

/// Walks `payload` from next header `nh` to the upper layer.
pub fn walk(mut nh: u8, payload: &[u8]) -> Upper {
    let mut offset = 0;
    let mut routed = false;
    for i in 0..=MAX_EXT_HEADERS {
        let rest = &payload[offset..];
        let (len, next) = match ext_header(nh, rest) {
            None if routed => return Upper::SourceRouted,
            None => {
                return Upper::Found {
                    protocol: nh,
                    offset,
                }
            }
            Some(Err(e)) => return e,
            Some(Ok(h)) => h,
        };
        if i == MAX_EXT_HEADERS {
            return Upper::TooLong;
        }
        if nh == NH_HOP_BY_HOP && i != 0 {
            return Upper::Malformed;
        }
        // Offset (13 bits) and M: an atomic fragment (both 0, RFC 6946) is no fragment.
        if nh == NH_FRAGMENT && be16(rest, 2..4) & 0xfff9 != 0 {
            return Upper::Fragment;
        }
        // Segments left (the header's fourth byte; it is at least 8 long).
        routed |= nh == NH_ROUTING && rest[3] != 0;
        offset += len;
        nh = next;
    }
    Upper::TooLong
}

/// An IPv6 header without extension headers, for building packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
}

impl Ipv6Repr {
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Self {
        Ipv6Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        }
    }

    /// Writes the header into the first 40 bytes of `buf`.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let mut p = Ipv6Packet::new_unchecked(buf);
        p.set_version_class_flow(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_raw(self.src.octets());
        p.set_dst_raw(self.dst.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv6ExtensionsSlice, Ipv6FlowLabel, Ipv6Header};
    use proptest::prelude::*;

    const TCP: u8 = 6;

    /// A packet: the fixed header with `nh`, then `payload`.
    fn packet(nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0; HEADER_LEN];
        Ipv6Repr {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::100".parse().unwrap(),
            next_header: nh,
            payload_len: payload.len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&mut b);
        b.extend_from_slice(payload);
        b
    }

    /// An 8-byte options or routing header leading to `next`.
    fn ext8(next: u8) -> [u8; 8] {
        [next, 0, 1, 4, 0, 0, 0, 0]
    }

    #[test]
    fn a_header_round_trips_through_etherparse() {
        let b = packet(TCP, &[0; 20]);
        let (h, rest) = Ipv6Header::from_slice(&b).unwrap();
        assert_eq!(
            h.source,
            "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!((h.payload_length, h.hop_limit), (20, 64));
        assert_eq!(rest.len(), 20);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            p.upper_layer(),
            Upper::Found {
                protocol: TCP,
                offset: 0
            }
        );
    }

    #[test]
    fn rejects_short_wrong_version_and_short_payload() {
        let b = packet(TCP, &[0; 20]);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Ipv6Packet::new_checked(&b[..59]).unwrap_err(),
            WireError::Truncated
        );
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&v4[..]).unwrap_err(),
            WireError::Malformed
        );
        // Padding after the payload is not payload.
        let mut padded = b;
        padded.extend_from_slice(&[0xaa; 6]);
        assert_eq!(
            Ipv6Packet::new_checked(&padded[..])
                .unwrap()
                .payload()
                .len(),
            20
        );
    }

    #[test]
    fn the_walk_crosses_known_headers_to_the_upper_layer() {
        // Hop-by-hop, destination options, routing (no segments left), then TCP: 24
        // bytes of headers.
        let mut payload = Vec::new();
        payload.extend_from_slice(&ext8(NH_DEST_OPTS));
        payload.extend_from_slice(&ext8(NH_ROUTING));
        payload.extend_from_slice(&[TCP, 0, 0, 0, 0, 0, 0, 0]);
        payload.extend_from_slice(&[0; 20]);
        // With segments left, the packet is not at its final destination.
        let mut routed = payload.clone();
        routed[16 + 3] = 1;
        assert_eq!(walk(NH_HOP_BY_HOP, &routed), Upper::SourceRouted);
        let b = packet(NH_HOP_BY_HOP, &payload);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            p.upper_layer(),
            Upper::Found {
                protocol: TCP,
                offset: 24
            }
        );
        // An atomic fragment (offset 0, M 0) is walked across; a real one is not.
        let atomic = [TCP, 0, 0, 0, 0, 0, 0, 1];
        let b = packet(NH_FRAGMENT, &[&atomic[..], &[0; 20]].concat());
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Upper::Found {
                protocol: TCP,
                offset: 8
            }
        );
        for frag in [[TCP, 0, 0, 1, 0, 0, 0, 1], [TCP, 0, 0, 8, 0, 0, 0, 1]] {
            let b = packet(NH_FRAGMENT, &[&frag[..], &[0; 20]].concat());
            assert_eq!(
                Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
                Upper::Fragment
            );
        }
    }

    #[test]
    fn long_truncated_and_misplaced_chains_end_the_walk() {
        let five: Vec<u8> = (0..5).flat_map(|_| ext8(NH_DEST_OPTS)).collect();
        let b = packet(NH_DEST_OPTS, &five);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Upper::TooLong
        );
        let four: Vec<u8> = (0..3)
            .flat_map(|_| ext8(NH_DEST_OPTS))
            .chain(ext8(TCP))
            .collect();
        let b = packet(NH_DEST_OPTS, &four);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Upper::Found {
                protocol: TCP,
                offset: 32
            },
            "four is the most"
        );
        // A header claiming 16 bytes in 8; a header with no length byte.
        let b = packet(NH_ROUTING, &[TCP, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Upper::Truncated
        );
        let b = packet(NH_DEST_OPTS, &[TCP]);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Upper::Truncated
        );
        let b = packet(NH_DEST_OPTS, &ext8(NH_HOP_BY_HOP));
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Upper::Truncated
        );
        let mut late_hbh = ext8(NH_HOP_BY_HOP).to_vec();
        late_hbh.extend_from_slice(&ext8(TCP));
        let b = packet(NH_DEST_OPTS, &late_hbh);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Upper::Malformed
        );
    }

    proptest! {
        #[test]
        fn header_fields_agree_with_etherparse(
            tc in any::<u8>(), flow in 0u32..0x10_0000, hop in any::<u8>(), nh in any::<u8>(),
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), len in 0usize..64,
        ) {
            let mut b = vec![0; HEADER_LEN + len];
            Ipv6Repr {
                src: src.into(), dst: dst.into(), next_header: nh, payload_len: len,
                hop_limit: hop, traffic_class: tc, flow_label: flow,
            }
            .emit(&mut b);
            let (h, _) = Ipv6Header::from_slice(&b).unwrap();
            prop_assert_eq!(h.traffic_class, tc);
            prop_assert_eq!(h.flow_label, Ipv6FlowLabel::try_new(flow).unwrap());
            prop_assert_eq!((h.hop_limit, h.next_header, h.payload_length), (hop, IpNumber(nh), len as u16));
            prop_assert_eq!((h.source, h.destination), (src, dst));
            // And etherparse's header, written, reads back the same through the view.
            let mut e = Vec::new();
            h.write(&mut e).unwrap();
            e.resize(HEADER_LEN + len, 0);
            let p = Ipv6Packet::new_checked(&e[..]).unwrap();
            prop_assert_eq!(Ipv6Repr::parse(&p).src.octets(), src);
            prop_assert_eq!(p.flow_label(), flow);
        }

        /// Random chains of known and unknown headers: where the walk finds the upper
        /// layer, etherparse's walk over the same bytes agrees.
        #[test]
        fn the_walk_agrees_with_etherparse(
            chain in prop::collection::vec(
                prop_oneof![Just(NH_HOP_BY_HOP), Just(NH_DEST_OPTS), Just(NH_ROUTING), Just(NH_FRAGMENT), Just(NH_AUTH)],
                0..6,
            ),
            lens in prop::collection::vec(0u8..3, 6),
            upper in prop_oneof![Just(6u8), Just(17), Just(58), Just(59)],
            frag_bits in prop_oneof![Just(0u16), Just(1), Just(8)],
        ) {
            let mut payload = Vec::new();
            for (i, &h) in chain.iter().enumerate() {
                let next = chain.get(i + 1).copied().unwrap_or(upper);
                let body = match h {
                    NH_FRAGMENT => {
                        let mut f = vec![next, 0];
                        f.extend_from_slice(&frag_bits.to_be_bytes());
                        f.extend_from_slice(&[0, 0, 0, 1]);
                        f
                    }
                    NH_AUTH => {
                        // 12 bytes of ICV-less header plus 4 × lens[i] more, as RFC 4302 counts.
                        let words = 1 + lens[i];
                        let mut a = vec![next, words];
                        a.resize((usize::from(words) + 2) * 4, 0);
                        a
                    }
                    _ => {
                        let mut o = vec![next, lens[i]];
                        o.resize((usize::from(lens[i]) + 1) * 8, 0);
                        o
                    }
                };
                payload.extend_from_slice(&body);
            }
            payload.extend_from_slice(&[0; 20]);
            let first = chain.first().copied().unwrap_or(upper);
            let ours = walk(first, &payload);
            let theirs = Ipv6ExtensionsSlice::from_slice(IpNumber(first), &payload);
            match ours {
                Upper::Found { protocol, offset } => {
                    let (exts, nh, rest) = theirs.expect("etherparse walks it too");
                    prop_assert_eq!(IpNumber(protocol), nh);
                    prop_assert_eq!(offset, payload.len() - rest.len());
                    prop_assert!(!exts.is_fragmenting_payload());
                    prop_assert!(chain.len() <= MAX_EXT_HEADERS);
                }
                Upper::Fragment => prop_assert!(frag_bits != 0 && chain.contains(&NH_FRAGMENT)),
                Upper::TooLong => prop_assert!(chain.len() > MAX_EXT_HEADERS),
                Upper::Malformed => prop_assert!(theirs.is_err()),
                Upper::Truncated => prop_assert!(false, "every header here fits"),
                Upper::SourceRouted => prop_assert!(false, "no segments left here"),
            }
        }
    }
}
