//! Gratuitous ARP: tells the segment which MAC a VIP now lives at, when this director
//! becomes master (switches and neighbours update at once instead of timing out).

use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::sys::packet::PacketSocket;

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

/// A burst of gratuitous ARPs under way: `repeat` rounds over the VIPs, one message
/// every `interval` (keepalived's `garp_interval`; zero: all at once). Sans-IO: `due`
/// says which VIPs to announce now, `deadline` when to ask again.
#[derive(Debug)]
pub struct Burst {
    vips: Vec<Ipv4Addr>,
    /// Messages still to send.
    left: usize,
    /// The next VIP's index.
    next: usize,
    interval: Duration,
    due: Instant,
}

impl Burst {
    pub fn new(vips: Vec<Ipv4Addr>, repeat: u32, interval: Duration, now: Instant) -> Self {
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
    pub fn due(&mut self, now: Instant) -> Vec<Ipv4Addr> {
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

/// Sends one gratuitous ARP for each of `vips` out of `ifindex`.
pub fn announce(ifindex: u32, mac: [u8; 6], vips: &[Ipv4Addr]) -> io::Result<()> {
    if vips.is_empty() {
        return Ok(());
    }
    let sock = PacketSocket::broadcast(ifindex)?;
    for vip in vips {
        sock.send(&frame(mac, *vip))?;
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

    #[test]
    fn a_burst_spaces_its_messages_by_the_interval() {
        let t0 = Instant::now();
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101));
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
