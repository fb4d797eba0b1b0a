//! Frames built by an independent builder (etherparse) from arbitrary fields, rewritten by
//! xvs (DR, NAT, TUN, ICMP fragmentation-needed): every checksum after the rewrite is
//! checked by etherparse, and what must not change has not.
#![no_main]

use std::net::Ipv4Addr;

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use xvs_dataplane::packet::Packet;
use xvs_dataplane::rewrite::{dr, frag_needed, nat, tun};

fn arr<const N: usize>(d: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    for (i, x) in a.iter_mut().enumerate() {
        *x = d.get(at + i).copied().unwrap_or(0);
    }
    a
}

fn checked(frame: &[u8]) -> PacketHeaders<'_> {
    let p = PacketHeaders::from_ethernet_slice(frame).expect("etherparse reads the rewrite");
    let Some(NetHeaders::Ipv4(ip, _)) = &p.net else {
        panic!("not IPv4 after the rewrite")
    };
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "IPv4 checksum"
    );
    let payload = p.payload.slice();
    match &p.transport {
        Some(TransportHeader::Tcp(t)) => {
            assert_eq!(
                t.checksum,
                t.calc_checksum_ipv4(ip, payload).unwrap(),
                "TCP"
            );
        }
        Some(TransportHeader::Udp(u)) if u.checksum != 0 => {
            assert_eq!(
                u.checksum,
                u.calc_checksum_ipv4(ip, payload).unwrap(),
                "UDP"
            );
        }
        _ => {}
    }
    p
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 24 {
        return;
    }
    let (src, dst, rip): ([u8; 4], [u8; 4], [u8; 4]) = (arr(data, 0), arr(data, 4), arr(data, 8));
    let (sport, dport, rport) = (
        u16::from_be_bytes(arr(data, 12)),
        u16::from_be_bytes(arr(data, 14)),
        u16::from_be_bytes(arr(data, 16)),
    );
    let mode = data[18];
    let payload = &data[24..data.len().min(24 + 1400)];
    let b =
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(src, dst, data[19]);
    let mut frame = Vec::new();
    if mode & 1 == 0 {
        b.tcp(sport, dport, u32::from_be_bytes(arr(data, 20)), 1000)
            .write(&mut frame, payload)
            .unwrap();
    } else {
        b.udp(sport, dport).write(&mut frame, payload).unwrap();
    }
    let original = frame.clone();
    let (rs_mac, own) = ([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 0, 2]);
    match mode >> 1 & 3 {
        0 => {
            dr::rewrite(&mut frame, rs_mac, own);
            assert_eq!(frame[12..], original[12..], "DR changes only the MACs");
            checked(&frame);
        }
        1 => {
            nat::dnat(&mut frame, rs_mac, own, Ipv4Addr::from(rip), rport);
            let p = checked(&frame);
            let Some(NetHeaders::Ipv4(ip, _)) = &p.net else {
                unreachable!()
            };
            assert_eq!((ip.source, ip.destination), (src, rip));
            let port = match &p.transport {
                Some(TransportHeader::Tcp(t)) => t.destination_port,
                Some(TransportHeader::Udp(u)) => u.destination_port,
                _ => panic!("no transport"),
            };
            assert_eq!(port, rport);
        }
        _ => {
            let head = 64;
            let mut buf = vec![0u8; head + frame.len() + 64];
            buf[head..head + frame.len()].copy_from_slice(&frame);
            let mut pkt = Packet::new(&mut buf, head, frame.len()).unwrap();
            let mtu = 576 + u16::from(data[21]) * 4;
            let local = Ipv4Addr::new(10, 0, 0, 2);
            match tun::encapsulate(&mut pkt, rs_mac, own, local, Ipv4Addr::from(rip), mtu, 7) {
                Ok(()) => {
                    let out = pkt.data();
                    let p = PacketHeaders::from_ethernet_slice(out).expect("outer header");
                    let Some(NetHeaders::Ipv4(outer, _)) = &p.net else {
                        panic!("outer")
                    };
                    assert_eq!(outer.header_checksum, outer.calc_header_checksum());
                    assert_eq!(&out[34..], &original[14..], "the inner packet intact");
                }
                Err(tun::TunError::TooBig { .. }) => {
                    let mut pkt = Packet::new(&mut buf, head, frame.len()).unwrap();
                    frag_needed::reply(&mut pkt, own, local, mtu - 20);
                    let out = pkt.data().to_vec();
                    let p = PacketHeaders::from_ethernet_slice(&out).expect("ICMP reply");
                    let Some(NetHeaders::Ipv4(ip, _)) = &p.net else {
                        panic!("ICMP")
                    };
                    assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                    assert_eq!(ip.destination, src, "back to the sender");
                    let Some(TransportHeader::Icmpv4(icmp)) = &p.transport else {
                        panic!("icmp")
                    };
                    let sum = icmp.icmp_type.calc_checksum(p.payload.slice());
                    assert_eq!(icmp.checksum, sum, "ICMP checksum");
                }
                Err(tun::TunError::NoHeadroom) => panic!("64 bytes of headroom"),
            }
        }
    }
});
