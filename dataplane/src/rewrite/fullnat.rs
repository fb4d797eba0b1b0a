//! FullNAT requests: the client's packet CIP:cport → VIP:vport becomes LIP:lport →
//! RIP:rport, the local pair one of the director's own (`crate::fullnat`), so the real
//! server answers the director wherever it sits. Checksums are updated incrementally
//! (RFC 1624). The replies are translated back by the steering program
//! (`bpf/include/fullnat.h`).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::checksum::{update128, update16, update32};
use crate::wire::ethernet::{Mac, HEADER_LEN as ETH_LEN};
use crate::wire::ipv4::{Ipv4Packet, PROTO_TCP, PROTO_UDP};
use crate::wire::ipv6::{self, Ipv6Packet, Upper};

/// The local pair and the real server a request goes from and to.
#[derive(Clone, Copy, Debug)]
pub struct Ends<A> {
    pub laddr: A,
    pub lport: u16,
    pub rip: A,
    pub rport: u16,
}

/// Rewrites a frame already checked to hold Ethernet + IPv4 + TCP/UDP.
pub fn rewrite4(frame: &mut [u8], dest_mac: Mac, local_mac: Mac, e: Ends<Ipv4Addr>) {
    crate::rewrite::dr::rewrite(frame, dest_mac, local_mac);
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[ETH_LEN..]);
    let (old_src, old_dst) = (ip.src_raw(), ip.dst_raw());
    let (new_src, new_dst) = (u32::from(e.laddr), u32::from(e.rip));
    ip.set_src_raw(new_src);
    ip.set_dst_raw(new_dst);
    let c = update32(update32(ip.checksum(), old_src, new_src), old_dst, new_dst);
    ip.set_checksum(c);
    let proto = ip.protocol();
    let l4 = ip.payload_mut();
    ports(proto, l4, e.lport, e.rport, false, |c| {
        update32(update32(c, old_src, new_src), old_dst, new_dst)
    });
}

/// Rewrites a frame already checked to hold Ethernet + IPv6 (extension headers walked)
/// + TCP/UDP.
pub fn rewrite6(frame: &mut [u8], dest_mac: Mac, local_mac: Mac, e: Ends<Ipv6Addr>) {
    let Upper::Found { protocol, offset } =
        Ipv6Packet::new_unchecked(&frame[ETH_LEN..]).upper_layer()
    else {
        // The screen let only a walkable chain through.
        return;
    };
    crate::rewrite::dr::rewrite(frame, dest_mac, local_mac);
    let mut ip = Ipv6Packet::new_unchecked(&mut frame[ETH_LEN..]);
    let old_src = u128::from_be_bytes(ip.src_raw());
    let old_dst = u128::from_be_bytes(ip.dst_raw());
    let (new_src, new_dst) = (u128::from(e.laddr), u128::from(e.rip));
    ip.set_src_raw(e.laddr.octets());
    ip.set_dst_raw(e.rip.octets());
    let l4 = &mut frame[ETH_LEN + ipv6::HEADER_LEN + offset..];
    ports(protocol, l4, e.lport, e.rport, true, |c| {
        update128(update128(c, old_src, new_src), old_dst, new_dst)
    });
}

/// Both ports of a TCP or UDP header, and its checksum: `addrs` updates it for the
/// addresses (the pseudo-header). A UDP checksum of 0 over IPv4 means none, and stays
/// so; over IPv6 (`v6`) a computed 0 is sent as all ones, as over IPv4.
fn ports(proto: u8, l4: &mut [u8], sport: u16, dport: u16, v6: bool, addrs: impl Fn(u16) -> u16) {
    let at = match proto {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        _ => return,
    };
    let old_s = u16::from_be_bytes([l4[0], l4[1]]);
    let old_d = u16::from_be_bytes([l4[2], l4[3]]);
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    let old = u16::from_be_bytes([l4[at], l4[at + 1]]);
    if proto == PROTO_UDP && old == 0 && !v6 {
        return;
    }
    let c = update16(update16(addrs(old), old_s, sport), old_d, dport);
    let c = if proto == PROTO_UDP && c == 0 {
        0xffff
    } else {
        c
    };
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{
        tcp6_frame, tcp_frame, udp6_frame, udp_frame, CLIENT, CLIENT6, VIP, VIP6,
    };
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 11);

    /// Addresses, ports and both checksums as etherparse reads and computes them.
    fn check(
        frame: &[u8],
        src: std::net::IpAddr,
        sport: u16,
        dst: std::net::IpAddr,
        dport: u16,
    ) -> Result<(), TestCaseError> {
        let p = SlicedPacket::from_ethernet(frame).expect("parses");
        match p.net.expect("ip") {
            NetSlice::Ipv4(ip) => {
                let h = ip.header();
                prop_assert_eq!(std::net::IpAddr::from(h.source_addr()), src);
                prop_assert_eq!(std::net::IpAddr::from(h.destination_addr()), dst);
                prop_assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                match p.transport.expect("l4") {
                    TransportSlice::Tcp(t) => {
                        prop_assert_eq!((t.source_port(), t.destination_port()), (sport, dport));
                        let want = t
                            .to_header()
                            .calc_checksum_ipv4(&h.to_header(), t.payload())
                            .unwrap();
                        prop_assert_eq!(t.checksum(), want);
                    }
                    TransportSlice::Udp(u) => {
                        prop_assert_eq!((u.source_port(), u.destination_port()), (sport, dport));
                        let want = u
                            .to_header()
                            .calc_checksum_ipv4(&h.to_header(), u.payload())
                            .unwrap();
                        prop_assert_eq!(u.checksum(), want);
                    }
                    _ => prop_assert!(false, "transport"),
                }
            }
            NetSlice::Ipv6(ip) => {
                let h = ip.header();
                prop_assert_eq!(std::net::IpAddr::from(h.source_addr()), src);
                prop_assert_eq!(std::net::IpAddr::from(h.destination_addr()), dst);
                match p.transport.expect("l4") {
                    TransportSlice::Tcp(t) => {
                        prop_assert_eq!((t.source_port(), t.destination_port()), (sport, dport));
                        let want = t
                            .to_header()
                            .calc_checksum_ipv6(&h.to_header(), t.payload())
                            .unwrap();
                        prop_assert_eq!(t.checksum(), want);
                    }
                    TransportSlice::Udp(u) => {
                        prop_assert_eq!((u.source_port(), u.destination_port()), (sport, dport));
                        let want = u
                            .to_header()
                            .calc_checksum_ipv6(&h.to_header(), u.payload())
                            .unwrap();
                        prop_assert_eq!(u.checksum(), want);
                    }
                    _ => prop_assert!(false, "transport"),
                }
            }
            _ => prop_assert!(false, "net"),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn v4_matches_etherparse(sport in 1u16.., vport in 1u16.., lport in 1u16.., rport in 1u16..,
                                 payload in proptest::collection::vec(any::<u8>(), 0..64),
                                 lip in any::<u32>(), rip in any::<u32>()) {
            let (lip, rip) = (Ipv4Addr::from(lip), Ipv4Addr::from(rip));
            for mut f in [tcp_frame(CLIENT, sport, VIP, vport, 0x18, &payload), udp_frame(CLIENT, sport, VIP, vport, &payload)] {
                rewrite4(&mut f, [1; 6], [2; 6], Ends { laddr: lip, lport, rip, rport });
                check(&f, lip.into(), lport, rip.into(), rport)?;
                prop_assert_eq!(&f[..12], &[1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
            }
        }

        #[test]
        fn v6_matches_etherparse(sport in 1u16.., vport in 1u16.., lport in 1u16.., rport in 1u16..,
                                 payload in proptest::collection::vec(any::<u8>(), 0..64),
                                 lip in any::<u128>(), rip in any::<u128>()) {
            let (lip, rip) = (Ipv6Addr::from(lip), Ipv6Addr::from(rip));
            for mut f in [tcp6_frame(CLIENT6, sport, VIP6, vport, 0x18, &payload), udp6_frame(CLIENT6, sport, VIP6, vport, &payload)] {
                rewrite6(&mut f, [1; 6], [2; 6], Ends { laddr: lip, lport, rip, rport });
                check(&f, lip.into(), lport, rip.into(), rport)?;
            }
        }
    }

    #[test]
    fn a_udp_datagram_without_checksum_keeps_none() {
        let mut u = udp_frame(CLIENT, 5, VIP, 53, b"q");
        u[40] = 0;
        u[41] = 0;
        rewrite4(
            &mut u,
            [1; 6],
            [2; 6],
            Ends {
                laddr: LIP,
                lport: 2000,
                rip: RIP,
                rport: 53,
            },
        );
        assert_eq!(&u[40..42], &[0, 0]);
    }
}
