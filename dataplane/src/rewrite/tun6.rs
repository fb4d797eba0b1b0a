//! IPv6-in-IPv6 tunnelling (RFC 2473), IPVS's TUN method for IPv6 real servers: the
//! client's packet, untouched, inside an outer IPv6 header (next header 41) from the
//! director to the real server, written into the frame's headroom; and the Packet Too
//! Big the director answers with when the tunnelled packet would exceed the path MTU
//! (IPv6 routers never fragment, so the client must send smaller).

use std::net::Ipv6Addr;

use crate::packet::Packet;
use crate::wire::ethernet::{
    EthernetFrame, EthernetRepr, Mac, ETHERTYPE_IPV6, HEADER_LEN as ETH_LEN,
};
use crate::wire::icmpv6;
use crate::wire::ipv6::{self, Ipv6Packet, Ipv6Repr, NH_ICMPV6, NH_IPV6};

/// Bytes the tunnel adds.
pub const OVERHEAD: usize = ipv6::HEADER_LEN;
/// Hop limit of the outer header (the inner one is the client's and stays as it is).
const OUTER_HOP_LIMIT: u8 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tun6Error {
    /// The frame's buffer has no room in front for the outer header.
    NoHeadroom,
    /// Inner packet plus outer header exceed the path MTU: the client gets Packet Too
    /// Big with this MTU.
    TooBig { mtu: u32 },
}

/// Wraps a frame already checked to hold Ethernet + IPv6 in an outer IPv6 header to
/// `dst`; traffic class and flow label are the inner packet's (RFC 2473 6.5, 6.6).
/// Ethernet padding after the inner packet is dropped.
pub fn encapsulate(
    pkt: &mut Packet<'_>,
    next_hop: Mac,
    local_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    mtu: u16,
) -> Result<(), Tun6Error> {
    let inner = Ipv6Packet::new_unchecked(&pkt.data()[ETH_LEN..]);
    let inner_len = ipv6::HEADER_LEN + usize::from(inner.payload_len());
    let (class, flow) = (inner.traffic_class(), inner.flow_label());
    if inner_len + OVERHEAD > usize::from(mtu) {
        // What fits inside the tunnel, never below IPv6's minimum (RFC 8200 5).
        let inside = usize::from(mtu)
            .saturating_sub(OVERHEAD)
            .max(icmpv6::MIN_MTU);
        return Err(Tun6Error::TooBig { mtu: inside as u32 });
    }
    if !pkt.push_head(OVERHEAD) {
        return Err(Tun6Error::NoHeadroom);
    }
    pkt.set_len(ETH_LEN + OVERHEAD + inner_len);
    let d = pkt.data_mut();
    EthernetRepr {
        src: local_mac,
        dst: next_hop,
        ethertype: ETHERTYPE_IPV6,
    }
    .emit(&mut d[..ETH_LEN]);
    Ipv6Repr {
        src,
        dst,
        next_header: NH_IPV6,
        payload_len: inner_len,
        hop_limit: OUTER_HOP_LIMIT,
        traffic_class: class,
        flow_label: flow,
    }
    .emit(&mut d[ETH_LEN..ETH_LEN + OVERHEAD]);
    Ok(())
}

/// Turns the frame in `pkt` (Ethernet + IPv6, checked) into the Packet Too Big for it,
/// addressed to its sender through the MAC it came from, from `local_addr`, quoting as
/// much of it as keeps the error within 1280 bytes.
pub fn packet_too_big(pkt: &mut Packet<'_>, local_mac: Mac, local_addr: Ipv6Addr, mtu: u32) {
    let d = pkt.data();
    let peer_mac = EthernetFrame::new_unchecked(d).src();
    let ip = Ipv6Packet::new_unchecked(&d[ETH_LEN..]);
    let client = ip.src();
    let offending = (ipv6::HEADER_LEN + usize::from(ip.payload_len())).min(d.len() - ETH_LEN);
    let at = ETH_LEN + ipv6::HEADER_LEN + icmpv6::HEADER_LEN;
    // As much as fits in 1280 bytes, and in the buffer (the error's headers are 48 bytes
    // more than the quote's place in the frame: a frame has its tailroom).
    let quote_len = offending
        .min(icmpv6::MIN_MTU - ipv6::HEADER_LEN - icmpv6::HEADER_LEN)
        .min((pkt.len() + pkt.tailroom()).saturating_sub(at));
    let icmp_len = icmpv6::HEADER_LEN + quote_len;
    pkt.set_len(at + quote_len);
    // The quote moves forward over itself: the error's headers go in front of it.
    let d = pkt.data_mut();
    d.copy_within(ETH_LEN..ETH_LEN + quote_len, at);
    EthernetRepr {
        src: local_mac,
        dst: peer_mac,
        ethertype: ETHERTYPE_IPV6,
    }
    .emit(&mut d[..ETH_LEN]);
    Ipv6Repr {
        src: local_addr,
        dst: client,
        next_header: NH_ICMPV6,
        payload_len: icmp_len,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut d[ETH_LEN..ETH_LEN + ipv6::HEADER_LEN]);
    let (head, body) = d.split_at_mut(at);
    let icmp = &mut head[ETH_LEN + ipv6::HEADER_LEN..];
    icmpv6::emit_packet_too_big_header(
        icmp,
        mtu,
        &body[..quote_len],
        local_addr.octets(),
        client.octets(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{tcp6_frame, CLIENT6, CLIENT_MAC, DIRECTOR6, VIP6};
    use etherparse::{Icmpv6Type, NetHeaders, PacketHeaders, TransportHeader};
    use proptest::prelude::*;

    const RS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);
    const RS_MAC: Mac = [2, 0, 0, 0, 6, 0x11];
    const OWN_MAC: Mac = [2, 0, 0, 0, 6, 2];

    fn with_headroom(frame: &[u8], headroom: usize) -> Vec<u8> {
        let mut b = vec![0u8; headroom];
        b.extend_from_slice(frame);
        b.extend_from_slice(&[0u8; 64]);
        b
    }

    #[test]
    fn the_outer_header_goes_into_the_headroom() {
        let frame = tcp6_frame(CLIENT6, 40000, VIP6, 80, 0x02, b"hello");
        let mut buf = with_headroom(&frame, 64);
        let mut pkt = Packet::new(&mut buf, 64, frame.len()).unwrap();
        encapsulate(&mut pkt, RS_MAC, OWN_MAC, DIRECTOR6, RS6, 1500).unwrap();
        assert_eq!(pkt.len(), frame.len() + OVERHEAD);
        let out = pkt.data();
        // etherparse reads the outer header and the client's packet inside it.
        let p = PacketHeaders::from_ethernet_slice(out).unwrap();
        let Some(NetHeaders::Ipv6(outer, _)) = &p.net else {
            panic!("not IPv6")
        };
        assert_eq!(Ipv6Addr::from(outer.source), DIRECTOR6);
        assert_eq!(Ipv6Addr::from(outer.destination), RS6);
        assert_eq!(outer.next_header.0, 41);
        assert_eq!(outer.hop_limit, 64);
        assert_eq!(usize::from(outer.payload_length), frame.len() - ETH_LEN);
        assert_eq!(outer.flow_label.value(), 0x12345, "the inner flow label");
        assert_eq!(&out[..6], &RS_MAC);
        assert_eq!(&out[6..12], &OWN_MAC);
        assert_eq!(
            &out[ETH_LEN + OVERHEAD..],
            &frame[ETH_LEN..],
            "inner untouched"
        );
    }

    #[test]
    fn too_big_or_no_room_is_refused_untouched() {
        let frame = tcp6_frame(CLIENT6, 40000, VIP6, 80, 0x10, &[7u8; 1440]);
        let mut buf = with_headroom(&frame, 64);
        let mut pkt = Packet::new(&mut buf, 64, frame.len()).unwrap();
        assert_eq!(
            encapsulate(&mut pkt, RS_MAC, OWN_MAC, DIRECTOR6, RS6, 1500),
            Err(Tun6Error::TooBig { mtu: 1460 })
        );
        assert_eq!(pkt.data(), &frame[..]);
        // A tunnel MTU so small that the inner MTU would be below 1280: 1280 it is.
        assert_eq!(
            encapsulate(&mut pkt, RS_MAC, OWN_MAC, DIRECTOR6, RS6, 1300),
            Err(Tun6Error::TooBig { mtu: 1280 })
        );
        let small = tcp6_frame(CLIENT6, 40000, VIP6, 80, 0x02, b"");
        let mut buf = small.clone();
        let mut pkt = Packet::whole(&mut buf);
        assert_eq!(
            encapsulate(&mut pkt, RS_MAC, OWN_MAC, DIRECTOR6, RS6, 1500),
            Err(Tun6Error::NoHeadroom)
        );
    }

    #[test]
    fn packet_too_big_goes_back_to_the_client_quoting_its_packet() {
        let frame = tcp6_frame(CLIENT6, 40000, VIP6, 80, 0x10, &[7u8; 1440]);
        let mut buf = frame.clone();
        let mut pkt = Packet::whole(&mut buf);
        packet_too_big(&mut pkt, OWN_MAC, DIRECTOR6, 1460);
        let out = pkt.data();
        assert_eq!(
            out.len(),
            ETH_LEN + icmpv6::MIN_MTU,
            "within the minimum MTU"
        );
        assert_eq!(&out[..6], &CLIENT_MAC);
        let p = PacketHeaders::from_ethernet_slice(out).unwrap();
        let Some(NetHeaders::Ipv6(ip, _)) = &p.net else {
            panic!("not IPv6")
        };
        assert_eq!(Ipv6Addr::from(ip.source), DIRECTOR6);
        assert_eq!(Ipv6Addr::from(ip.destination), CLIENT6);
        let Some(TransportHeader::Icmpv6(h)) = &p.transport else {
            panic!("not ICMPv6: {:?}", p.transport)
        };
        assert_eq!(h.icmp_type, Icmpv6Type::PacketTooBig { mtu: 1460 });
        let quoted = p.payload.slice();
        assert_eq!(quoted, &frame[ETH_LEN..ETH_LEN + quoted.len()]);
        assert_eq!(
            h.checksum,
            h.icmp_type
                .calc_checksum(ip.source, ip.destination, quoted)
                .unwrap()
        );
    }

    proptest! {
        /// Any payload size: the error is valid (etherparse's checksum) and quotes the
        /// packet's first bytes.
        #[test]
        fn packet_too_big_is_valid_for_any_size(n in 0usize..1500) {
            let frame = tcp6_frame(CLIENT6, 40000, VIP6, 80, 0x10, &vec![9u8; n]);
            // A UMEM frame has room behind the packet, as this buffer.
            let mut buf = frame.clone();
            buf.extend_from_slice(&[0u8; 64]);
            let mut pkt = Packet::new(&mut buf, 0, frame.len()).unwrap();
            packet_too_big(&mut pkt, OWN_MAC, DIRECTOR6, 1280);
            let p = PacketHeaders::from_ethernet_slice(pkt.data()).unwrap();
            let (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Icmpv6(h))) = (&p.net, &p.transport) else {
                panic!("not ICMPv6")
            };
            let quoted = p.payload.slice();
            prop_assert_eq!(quoted.len(), (frame.len() - ETH_LEN).min(1232));
            prop_assert_eq!(quoted, &frame[ETH_LEN..ETH_LEN + quoted.len()]);
            prop_assert_eq!(h.checksum, h.icmp_type.calc_checksum(ip.source, ip.destination, quoted).unwrap());
        }
    }
}
