//! NAT requests: the client's packet to VIP:vport becomes one to RIP:rport (IPVS's
//! masquerading). Checksums are updated incrementally (RFC 1624), never recomputed. The
//! replies are translated back by the steering program (see docs/design.md).

use std::net::Ipv4Addr;

use crate::wire::checksum::{update16, update32};
use crate::wire::ethernet::{Mac, HEADER_LEN as ETH_LEN};
use crate::wire::ipv4::{Ipv4Packet, PROTO_TCP, PROTO_UDP};
use crate::wire::tcp::TcpPacket;
use crate::wire::udp::UdpPacket;

/// Rewrites a frame already checked to hold Ethernet + IPv4 + TCP/UDP.
pub fn dnat(frame: &mut [u8], dest_mac: Mac, local_mac: Mac, rip: Ipv4Addr, rport: u16) {
    crate::rewrite::dr::rewrite(frame, dest_mac, local_mac);
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[ETH_LEN..]);
    let old = ip.dst_raw();
    let new = u32::from(rip);
    ip.set_dst_raw(new);
    let c = update32(ip.checksum(), old, new);
    ip.set_checksum(c);
    let proto = ip.protocol();
    let l4 = ip.payload_mut();
    match proto {
        PROTO_TCP => {
            let mut tcp = TcpPacket::new_unchecked(l4);
            let old_port = tcp.dst_port();
            tcp.set_dst_port(rport);
            let c = update16(update32(tcp.checksum(), old, new), old_port, rport);
            tcp.set_checksum(c);
        }
        PROTO_UDP => {
            let mut udp = UdpPacket::new_unchecked(l4);
            let old_port = udp.dst_port();
            udp.set_dst_port(rport);
            // 0: the sender computed no checksum, and there still is none.
            if udp.checksum() != 0 {
                let c = match update16(update32(udp.checksum(), old, new), old_port, rport) {
                    0 => 0xffff,
                    c => c,
                };
                udp.set_checksum(c);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{tcp_frame, udp_frame, CLIENT, VIP};
    use crate::wire::checksum;
    use proptest::prelude::*;

    const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);

    /// The L4 checksum recomputed from scratch over the pseudo-header and segment.
    fn l4_ok(frame: &[u8]) -> bool {
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        let seg = ip.payload();
        let acc = checksum::pseudo_header(
            ip.src().octets(),
            ip.dst().octets(),
            ip.protocol(),
            seg.len() as u16,
        );
        checksum::fold(checksum::sum(acc, seg)) == 0xffff
    }

    proptest! {
        #[test]
        fn checksums_match_a_full_recomputation(sport in any::<u16>(), vport in 1u16.., rport in 1u16..,
                                                 payload in proptest::collection::vec(any::<u8>(), 0..64),
                                                 rip in any::<u32>()) {
            let rip = Ipv4Addr::from(rip);
            for mut f in [tcp_frame(CLIENT, sport, VIP, vport, 0x18, &payload), udp_frame(CLIENT, sport, VIP, vport, &payload)] {
                dnat(&mut f, [1; 6], [2; 6], rip, rport);
                let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
                prop_assert_eq!(ip.dst(), rip);
                prop_assert!(ip.verify_checksum());
                prop_assert_eq!(checksum::checksum(&f[14..34]), 0);
                prop_assert!(l4_ok(&f));
            }
        }
    }

    #[test]
    fn ports_and_addresses() {
        let mut f = tcp_frame(CLIENT, 40000, VIP, 8080, 0x02, b"");
        dnat(&mut f, [1; 6], [2; 6], RIP, 80);
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (ip.src(), ip.dst(), tcp.src_port(), tcp.dst_port()),
            (CLIENT, RIP, 40000, 80)
        );
        assert_eq!(&f[..12], &[1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
        let mut u = udp_frame(CLIENT, 5, VIP, 53, b"q");
        u[40] = 0;
        u[41] = 0;
        dnat(&mut u, [1; 6], [2; 6], RIP, 5353);
        assert_eq!(&u[40..42], &[0, 0], "no checksum stays no checksum");
    }
}
