//! Gratuitous ARP, and for IPv6 VIPs unsolicited neighbour advertisements (RFC 4861
//! 7.2.6): tell the segment which MAC a VIP now lives at, when this director becomes
//! master (switches and neighbours update at once instead of timing out).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use std::time::{Duration, Instant};
use xvs_dataplane::wire::checksum;
use xvs_dataplane::wire::ipv6::{Ipv6Repr, NH_ICMPV6};

use crate::sys::af_packet::PacketSocket;

/// The frame: broadcast ARP request with sender and target protocol address = the VIP.
pub fn frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&vip.octets());
    f[38..42].copy_from_slice(&vip.octets());
    f
}

/// The unsolicited neighbour advertisement of `vip` from `src` (the interface's
/// link-local address) to all nodes: Override set, so neighbours replace the old MAC,
/// Solicited clear; the target link-layer address option carries `mac`.
pub fn na_frame(mac: [u8; 6], src: Ipv6Addr, vip: Ipv6Addr) -> [u8; 86] {
    let mut f = [0u8; 86];
    // 33:33 + the group's last 32 bits (ff02::1).
    f[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    Ipv6Repr {
        src,
        dst: all_nodes,
        next_header: NH_ICMPV6,
        payload_len: 32,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut f[14..54]);
    let na = &mut f[54..];
    na[0] = 136; // neighbour advertisement
    na[4] = 0x20; // Override
    na[8..24].copy_from_slice(&vip.octets());
    na[24] = 2; // target link-layer address
    na[25] = 1; // 8 bytes
    na[26..32].copy_from_slice(&mac);
    let acc = checksum::pseudo_header_v6(src.octets(), all_nodes.octets(), NH_ICMPV6, 32);
    let c = !checksum::fold(checksum::sum(acc, na));
    na[2..4].copy_from_slice(&c.to_be_bytes());
    f
}

/// A burst of gratuitous ARPs under way: `repeat` rounds over the VIPs, one message
/// every `interval` (keepalived's `garp_interval`; zero: all at once). Sans-IO: `due`
/// says which VIPs to announce now, `deadline` when to ask again.
#[derive(Debug)]
pub struct Burst {
    vips: Vec<IpAddr>,
    /// Messages still to send.
    left: usize,
    /// The next VIP's index.
    next: usize,
    interval: Duration,
    due: Instant,
}

impl Burst {
    pub fn new(vips: Vec<IpAddr>, repeat: u32, interval: Duration, now: Instant) -> Self {
        Burst {
            left: vips.len() * repeat as usize,
            vips,
            next: 0,
            interval,
            due: now,
        }
    }

    /// When the next message is due; None once the burst is over.
    pub fn deadline(&self) -> Option<Instant> {
        (self.left > 0).then_some(self.due)
    }

    /// The VIPs to announce at `now`: one (or, without an interval, all that are left).
    pub fn due(&mut self, now: Instant) -> Vec<IpAddr> {
        let mut out = Vec::new();
        while self.left > 0 && now >= self.due {
            out.push(self.vips[self.next % self.vips.len()]);
            self.next += 1;
            self.left -= 1;
            if !self.interval.is_zero() {
                self.due = now + self.interval;
            }
        }
        out
    }
}

/// Sends one gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6, from
/// `link_local`) for each of `vips` out of `ifindex`.
pub fn announce(
    ifindex: u32,
    mac: [u8; 6],
    link_local: Option<Ipv6Addr>,
    vips: &[IpAddr],
) -> io::Result<()> {
    if vips.is_empty() {
        return Ok(());
    }
    let sock = PacketSocket::broadcast(ifindex)?;
    for vip in vips {
        match (vip, link_local) {
            (IpAddr::V4(v4), _) => sock.send(&frame(mac, *v4))?,
            (IpAddr::V6(v6), Some(src)) => sock.send(&na_frame(mac, src, *v6))?,
            (IpAddr::V6(_), None) => {
                return Err(io::Error::other("no link-local address to advertise from"))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announces_the_vip_as_its_own_target() {
        let f = frame([2, 0, 0, 0, 0, 9], Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[8, 6]);
        assert_eq!(&f[20..22], &[0, 1], "request");
        assert_eq!(&f[28..32], &f[38..42], "sender IP = target IP: gratuitous");
    }

    /// The frame through etherparse: IPv6 to ff02::1, hop limit 255, ICMPv6 type 136
    /// with a right checksum, Override, the VIP as target.
    #[test]
    fn an_unsolicited_na_as_etherparse_reads_it() {
        use etherparse::{Icmpv6Type, NetSlice, SlicedPacket, TransportSlice};
        let src: Ipv6Addr = "fe80::2".parse().unwrap();
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let mac = [2, 0, 0, 0, 0, 9];
        let f = na_frame(mac, src, vip);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = p.net else {
            panic!("not IPv6")
        };
        assert_eq!(ip.header().hop_limit(), 255);
        assert_eq!(
            ip.header().destination_addr(),
            "ff02::1".parse::<Ipv6Addr>().unwrap()
        );
        let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
            panic!("not ICMPv6")
        };
        assert_eq!(
            icmp.icmp_type(),
            Icmpv6Type::NeighborAdvertisement(etherparse::icmpv6::NeighborAdvertisementHeader {
                router: false,
                solicited: false,
                r#override: true,
            })
        );
        let want = icmp
            .icmp_type()
            .calc_checksum(
                src.octets(),
                ip.header().destination_addr().octets(),
                icmp.payload(),
            )
            .unwrap();
        assert_eq!(icmp.checksum(), want);
        assert_eq!(&icmp.payload()[..16], &vip.octets());
        assert_eq!(&icmp.payload()[16..24], &[2, 1, 2, 0, 0, 0, 0, 9]);
    }

    #[test]
    fn a_burst_spaces_its_messages_by_the_interval() {
        let t0 = Instant::now();
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 101)),
        );
        let ms = |n| t0 + Duration::from_millis(n);
        let mut burst = Burst::new(vec![a, b], 2, Duration::from_millis(100), t0);
        assert_eq!(burst.due(t0), [a]);
        assert_eq!(burst.deadline(), Some(ms(100)));
        assert!(burst.due(ms(99)).is_empty(), "not before the interval");
        assert_eq!(burst.due(ms(100)), [b]);
        assert_eq!(burst.due(ms(200)), [a], "second round");
        assert_eq!(burst.due(ms(300)), [b]);
        assert_eq!(burst.deadline(), None, "2 rounds of 2 VIPs: 4 messages");
        assert!(burst.due(ms(400)).is_empty());
        // Without an interval the whole burst goes out at once, as before.
        let mut burst = Burst::new(vec![a, b], 3, Duration::ZERO, t0);
        assert_eq!(burst.due(t0).len(), 6);
        assert_eq!(burst.deadline(), None);
    }
}
