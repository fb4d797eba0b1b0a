//! The IPv6 rewrites on frames built by an independent builder (etherparse) from
//! arbitrary fields: DR, NAT66, IPv6-in-IPv6 and Packet Too Big. Every checksum after
//! the rewrite is checked by etherparse, and what must not change has not.
#![no_main]

use std::net::Ipv6Addr;

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use xvs_dataplane::packet::Packet;
use xvs_dataplane::rewrite::{dr, nat6, tun6};

fn arr<const N: usize>(d: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    for (i, x) in a.iter_mut().enumerate() {
        *x = d.get(at + i).copied().unwrap_or(0);
    }
    a
}

/// The transport checksum of an IPv6 frame, as etherparse computes it.
fn checked(frame: &[u8]) -> PacketHeaders<'_> {
    let p = PacketHeaders::from_ethernet_slice(frame).expect("etherparse reads the rewrite");
    let Some(NetHeaders::Ipv6(ip, _)) = &p.net else {
        panic!("not IPv6 after the rewrite")
    };
    let payload = p.payload.slice();
    match &p.transport {
        Some(TransportHeader::Tcp(t)) => {
            assert_eq!(t.checksum, t.calc_checksum_ipv6(ip, payload).unwrap(), "TCP")
        }
        Some(TransportHeader::Udp(u)) => {
            assert_eq!(u.checksum, u.calc_checksum_ipv6(ip, payload).unwrap(), "UDP")
        }
        Some(TransportHeader::Icmpv6(h)) => assert_eq!(
            h.checksum,
            h.icmp_type
                .calc_checksum(ip.source, ip.destination, payload)
                .unwrap(),
            "ICMPv6"
        ),
        _ => {}
    }
    p
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 60 {
        return;
    }
    let (src, dst, rip): ([u8; 16], [u8; 16], [u8; 16]) =
        (arr(data, 0), arr(data, 16), arr(data, 32));
    let (sport, dport, rport) = (
        u16::from_be_bytes(arr(data, 48)),
        u16::from_be_bytes(arr(data, 50)),
        u16::from_be_bytes(arr(data, 52)),
    );
    let mode = data[54];
    let mtu = u16::from_be_bytes(arr(data, 55)).max(1280);
    let payload = &data[60..data.len().min(60 + 1400)];
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv6(src, dst, 64);
    let mut frame = Vec::new();
    if mode & 1 == 0 {
        b.tcp(sport, dport, u32::from_be_bytes(arr(data, 57)), 1000)
            .write(&mut frame, payload)
            .unwrap();
    } else {
        b.udp(sport, dport).write(&mut frame, payload).unwrap();
    }
    let original = frame.clone();
    let (rs_mac, own) = ([2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 0, 2]);
    let (src6, rip6) = (Ipv6Addr::from(src), Ipv6Addr::from(rip));
    match mode >> 1 & 3 {
        0 => {
            dr::rewrite(&mut frame, rs_mac, own);
            assert_eq!(frame[12..], original[12..], "DR changes only the MACs");
            checked(&frame);
        }
        1 => {
            nat6::dnat(&mut frame, rs_mac, own, rip6, rport);
            let p = checked(&frame);
            let Some(NetHeaders::Ipv6(ip, _)) = &p.net else {
                unreachable!()
            };
            assert_eq!((ip.source, ip.destination), (src, rip));
            assert_eq!(frame[14 + 40 + 2..14 + 40 + 4], rport.to_be_bytes());
        }
        _ => {
            let mut buf = vec![0u8; 64 + frame.len() + 64];
            buf[64..64 + frame.len()].copy_from_slice(&frame);
            let mut pkt = Packet::new(&mut buf, 64, frame.len()).unwrap();
            match tun6::encapsulate(&mut pkt, rs_mac, own, src6, rip6, mtu) {
                Ok(()) => {
                    let out = pkt.data();
                    assert_eq!(out.len(), original.len() + tun6::OVERHEAD);
                    assert_eq!(out[14 + 40..], original[14..], "the client's packet inside");
                    assert!(out.len() - 14 <= usize::from(mtu));
                }
                Err(tun6::Tun6Error::TooBig { mtu: m }) => {
                    assert!(original.len() - 14 + tun6::OVERHEAD > usize::from(mtu));
                    assert!(m >= 1280);
                    tun6::packet_too_big(&mut pkt, own, Ipv6Addr::from(rip), m);
                    let out = pkt.data();
                    assert!(out.len() - 14 <= 1280, "within the minimum MTU");
                    let p = checked(out);
                    let quoted = p.payload.slice();
                    assert_eq!(quoted, &original[14..14 + quoted.len()]);
                }
                Err(tun6::Tun6Error::NoHeadroom) => panic!("64 bytes of headroom"),
            }
        }
    }
});
