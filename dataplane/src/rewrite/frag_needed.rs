//! The reply to a packet too big for the tunnel: ICMP "fragmentation needed" (RFC 1191)
//! back to the client with the MTU it must use, so its TCP lowers its segment size. As
//! IPVS does for TUN, with next-hop MTU = path MTU − 20.

use std::net::Ipv4Addr;

use crate::packet::Packet;
use crate::wire::ethernet::{
    EthernetFrame, EthernetRepr, Mac, ETHERTYPE_IPV4, HEADER_LEN as ETH_LEN,
};
use crate::wire::icmp;
use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr, MIN_HEADER_LEN, PROTO_ICMP};

/// Bytes of the offending datagram quoted: its IP header and 8 bytes of its payload
/// (RFC 792), enough for the client to find its connection.
const QUOTE_PAYLOAD: usize = 8;

/// Turns the frame in `pkt` (Ethernet + IPv4, checked) into the ICMP error for it,
/// addressed to its sender through the MAC it came from, from `local_addr`.
pub fn reply(pkt: &mut Packet<'_>, local_mac: Mac, local_addr: Ipv4Addr, next_hop_mtu: u16) {
    let d = pkt.data();
    let peer_mac = EthernetFrame::new_unchecked(d).src();
    let ip = Ipv4Packet::new_unchecked(&d[ETH_LEN..]);
    let client = ip.src();
    let quote_len = (ip.header_len() + QUOTE_PAYLOAD).min(usize::from(ip.total_len()));
    let mut quote = [0u8; 60 + QUOTE_PAYLOAD];
    quote[..quote_len].copy_from_slice(&d[ETH_LEN..ETH_LEN + quote_len]);

    let icmp_len = icmp::HEADER_LEN + quote_len;
    pkt.set_len(ETH_LEN + MIN_HEADER_LEN + icmp_len);
    let d = pkt.data_mut();
    EthernetRepr {
        src: local_mac,
        dst: peer_mac,
        ethertype: ETHERTYPE_IPV4,
    }
    .emit(&mut d[..ETH_LEN]);
    Ipv4Repr {
        src: local_addr,
        dst: client,
        protocol: PROTO_ICMP,
        payload_len: icmp_len,
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: true,
    }
    .emit(&mut d[ETH_LEN..ETH_LEN + MIN_HEADER_LEN]);
    icmp::emit_frag_needed(
        &mut d[ETH_LEN + MIN_HEADER_LEN..],
        next_hop_mtu,
        &quote[..quote_len],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{tcp_frame, CLIENT, CLIENT_MAC, VIP};
    use crate::wire::icmp::IcmpPacket;

    #[test]
    fn quotes_the_packet_back_to_its_sender() {
        let frame = tcp_frame(CLIENT, 40000, VIP, 80, 0x10, &[1u8; 1460]);
        let mut buf = frame.clone();
        let mut pkt = Packet::whole(&mut buf);
        let me = Ipv4Addr::new(10, 0, 0, 2);
        reply(&mut pkt, [8; 6], me, 1480);
        let d = pkt.data();
        assert_eq!(d.len(), 14 + 20 + 8 + 28);
        assert_eq!(&d[..6], &CLIENT_MAC);
        let ip = Ipv4Packet::new_checked(&d[14..]).unwrap();
        assert_eq!(
            (ip.src(), ip.dst(), ip.protocol()),
            (me, CLIENT, PROTO_ICMP)
        );
        assert!(ip.verify_checksum());
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (icmp.msg_type(), icmp.code(), icmp.next_hop_mtu()),
            (3, 4, 1480)
        );
        assert!(icmp.verify_checksum());
        assert_eq!(
            icmp.payload(),
            &frame[14..14 + 28],
            "the client's IP header and ports"
        );
    }
}
