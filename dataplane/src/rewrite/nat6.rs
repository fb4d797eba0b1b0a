//! NAT66 requests: the client's packet to [VIP]:vport becomes one to [RIP]:rport (IPVS's
//! masquerading for `-6` services). IPv6 has no header checksum; the TCP and UDP ones
//! cover the addresses through the pseudo-header and are updated incrementally (RFC
//! 1624). The replies are translated back by the steering program.

use std::net::Ipv6Addr;

use crate::wire::checksum::{update128, update16};
use crate::wire::ethernet::{Mac, HEADER_LEN as ETH_LEN};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::ipv6::{self, Ipv6Packet, Upper};
use crate::wire::tcp::TcpPacket;
use crate::wire::udp::UdpPacket;

/// Rewrites a frame already checked to hold Ethernet + IPv6 (extension headers walked)
/// + TCP/UDP.
pub fn dnat(frame: &mut [u8], dest_mac: Mac, local_mac: Mac, rip: Ipv6Addr, rport: u16) {
    let Upper::Found { protocol, offset } =
        Ipv6Packet::new_unchecked(&frame[ETH_LEN..]).upper_layer()
    else {
        // The screen let only a walkable chain through.
        return;
    };
    let l4 = ETH_LEN + ipv6::HEADER_LEN + offset;
    crate::rewrite::dr::rewrite(frame, dest_mac, local_mac);
    let mut ip = Ipv6Packet::new_unchecked(&mut frame[ETH_LEN..]);
    let old = u128::from_be_bytes(ip.dst_raw());
    let new = u128::from(rip);
    ip.set_dst_raw(rip.octets());
    let seg = &mut frame[l4..];
    match protocol {
        PROTO_TCP => {
            let mut tcp = TcpPacket::new_unchecked(seg);
            let old_port = tcp.dst_port();
            tcp.set_dst_port(rport);
            let c = update16(update128(tcp.checksum(), old, new), old_port, rport);
            tcp.set_checksum(c);
        }
        PROTO_UDP => {
            let mut udp = UdpPacket::new_unchecked(seg);
            let old_port = udp.dst_port();
            udp.set_dst_port(rport);
            // Over IPv6 a UDP checksum is mandatory; 0 is sent as all ones.
            let c = match update16(update128(udp.checksum(), old, new), old_port, rport) {
                0 => 0xffff,
                c => c,
            };
            udp.set_checksum(c);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{tcp6_frame, udp6_frame, CLIENT6, VIP6};
    use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
    use proptest::prelude::*;

    const RIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11);

    /// The transport checksum as etherparse computes it from scratch.
    fn checksums_ok(frame: &[u8]) -> bool {
        let p = PacketHeaders::from_ethernet_slice(frame).unwrap();
        let Some(NetHeaders::Ipv6(ip, _)) = &p.net else {
            return false;
        };
        let payload = p.payload.slice();
        match &p.transport {
            Some(TransportHeader::Tcp(t)) => {
                t.checksum == t.calc_checksum_ipv6(ip, payload).unwrap()
            }
            Some(TransportHeader::Udp(u)) => {
                u.checksum == u.calc_checksum_ipv6(ip, payload).unwrap()
            }
            _ => false,
        }
    }

    proptest! {
        /// Any client, ports and payload: the destination and port are the real
        /// server's, and the checksum is what a full recomputation gives.
        #[test]
        fn dnat_keeps_checksums_valid(
            client in any::<u128>(), sport in 1u16.., rport in 1u16..,
            payload in prop::collection::vec(any::<u8>(), 0..200), udp in any::<bool>(),
        ) {
            let c = Ipv6Addr::from(client);
            let mut f = if udp {
                udp6_frame(c, sport, VIP6, 53, &payload)
            } else {
                tcp6_frame(c, sport, VIP6, 80, 0x18, &payload)
            };
            dnat(&mut f, [2; 6], [3; 6], RIP6, rport);
            prop_assert!(checksums_ok(&f));
            let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
            prop_assert_eq!(ip.dst(), RIP6);
            prop_assert_eq!(u16::from_be_bytes([f[56], f[57]]), rport);
            prop_assert_eq!(&f[..6], &[2; 6]);
        }
    }

    #[test]
    fn the_client_is_kept() {
        let mut f = tcp6_frame(CLIENT6, 40000, VIP6, 80, 0x02, b"");
        dnat(&mut f, [2; 6], [3; 6], RIP6, 8080);
        let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (CLIENT6, RIP6));
        assert!(checksums_ok(&f));
    }
}
