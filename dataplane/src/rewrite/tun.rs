//! IP-in-IP tunnelling (RFC 2003), as IPVS's TUN method: the client's packet, untouched,
//! inside an outer IPv4 header from the director to the real server. The outer header and
//! the new Ethernet header go into the frame's headroom, so nothing is copied.

use std::net::Ipv4Addr;

use crate::packet::Packet;
use crate::wire::ethernet::{EthernetRepr, Mac, ETHERTYPE_IPV4, HEADER_LEN as ETH_LEN};
use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr, MIN_HEADER_LEN, PROTO_IPIP};

/// Bytes the tunnel adds.
pub const OVERHEAD: usize = MIN_HEADER_LEN;
/// TTL of the outer header (the inner one is the client's and stays as it is).
const OUTER_TTL: u8 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunError {
    /// The frame's buffer has no room in front for the outer header.
    NoHeadroom,
    /// Inner packet plus outer header exceed the path MTU; `dont_frag` is the inner DF.
    TooBig { dont_frag: bool },
}

/// Wraps a frame already checked to hold Ethernet + IPv4 in an outer IPv4 header to `dst`.
/// Ethernet padding after the inner packet is dropped.
pub fn encapsulate(
    pkt: &mut Packet<'_>,
    next_hop: Mac,
    local_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    mtu: u16,
    ident: u16,
) -> Result<(), TunError> {
    let inner = Ipv4Packet::new_unchecked(&pkt.data()[ETH_LEN..]);
    let inner_len = usize::from(inner.total_len());
    let (tos, dont_frag) = (inner.tos(), inner.dont_frag());
    if inner_len + OVERHEAD > usize::from(mtu) {
        return Err(TunError::TooBig { dont_frag });
    }
    if !pkt.push_head(OVERHEAD) {
        return Err(TunError::NoHeadroom);
    }
    pkt.set_len(ETH_LEN + OVERHEAD + inner_len);
    let d = pkt.data_mut();
    EthernetRepr {
        src: local_mac,
        dst: next_hop,
        ethertype: ETHERTYPE_IPV4,
    }
    .emit(&mut d[..ETH_LEN]);
    Ipv4Repr {
        src,
        dst,
        protocol: PROTO_IPIP,
        payload_len: inner_len,
        ttl: OUTER_TTL,
        tos,
        ident,
        dont_frag,
    }
    .emit(&mut d[ETH_LEN..ETH_LEN + OVERHEAD]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{tcp_frame, CLIENT, VIP};
    use crate::wire::checksum;

    fn with_headroom(frame: &[u8], headroom: usize) -> Vec<u8> {
        let mut b = vec![0u8; headroom];
        b.extend_from_slice(frame);
        b.extend_from_slice(&[0u8; 64]);
        b
    }

    #[test]
    fn outer_header_in_the_headroom() {
        let frame = tcp_frame(CLIENT, 1234, VIP, 80, 0x02, b"hello");
        let mut buf = with_headroom(&frame, 256);
        let mut pkt = Packet::new(&mut buf, 256, frame.len()).unwrap();
        let rip = Ipv4Addr::new(10, 0, 1, 11);
        let me = Ipv4Addr::new(10, 0, 0, 2);
        encapsulate(&mut pkt, [9; 6], [8; 6], me, rip, 1500, 77).unwrap();
        assert_eq!((pkt.head(), pkt.len()), (236, frame.len() + 20));
        let d = pkt.data();
        assert_eq!(&d[..12], &[9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8]);
        let outer = Ipv4Packet::new_checked(&d[14..]).unwrap();
        assert_eq!(
            (outer.src(), outer.dst(), outer.protocol(), outer.ttl()),
            (me, rip, PROTO_IPIP, 64)
        );
        assert!(outer.dont_frag(), "DF copied from the inner header");
        assert_eq!(outer.ident(), 77);
        assert!(outer.verify_checksum());
        // Checked again from scratch, not with the view's own helper.
        assert_eq!(checksum::checksum(&d[14..34]), 0);
        // The inner packet is byte for byte the client's.
        assert_eq!(outer.payload(), &frame[14..]);
    }

    #[test]
    fn too_big_and_no_headroom() {
        let frame = tcp_frame(CLIENT, 1234, VIP, 80, 0x10, &[7u8; 1460]);
        let mut buf = with_headroom(&frame, 256);
        let mut pkt = Packet::new(&mut buf, 256, frame.len()).unwrap();
        assert_eq!(
            encapsulate(&mut pkt, [9; 6], [8; 6], VIP, VIP, 1500, 0),
            Err(TunError::TooBig { dont_frag: true })
        );
        assert_eq!((pkt.head(), pkt.len()), (256, frame.len()), "untouched");
        let mut buf = with_headroom(&frame, 10);
        let mut pkt = Packet::new(&mut buf, 10, frame.len()).unwrap();
        assert_eq!(
            encapsulate(&mut pkt, [9; 6], [8; 6], VIP, VIP, 9000, 0),
            Err(TunError::NoHeadroom)
        );
    }
}
