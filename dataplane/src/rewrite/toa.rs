//! The client's address in a TCP option, in the format of the `toa` kernel module (DPVS,
//! Alibaba's LVS): kind 254, then the client's port and IPv4 address (8 bytes), or port
//! and IPv6 address (20 bytes). FullNAT adds it to segments that carry no data (the SYN
//! and the handshake's last ACK), so a segment never grows past what its sender's MSS
//! allows, and no MSS needs clamping. Where the header has no room (40 bytes of options
//! already), the segment goes without it.

use crate::packet::Packet;
use crate::wire::checksum;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::{self, Ipv6Packet};

/// The option's kind.
pub const KIND: u8 = 254;
/// Its length over IPv4 and over IPv6.
pub const LEN4: usize = 8;
pub const LEN6: usize = 20;

/// Whether the option went in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toa {
    Added,
    /// The segment carries data: left as it is.
    HasData,
    /// 40 bytes of options already, or no room after the frame.
    NoRoom,
}

/// The option's bytes for a client.
fn option4(port: u16, addr: [u8; 4]) -> [u8; LEN4] {
    let p = port.to_be_bytes();
    [
        KIND, LEN4 as u8, p[0], p[1], addr[0], addr[1], addr[2], addr[3],
    ]
}

fn option6(port: u16, addr: [u8; 16]) -> [u8; LEN6] {
    let mut o = [0u8; LEN6];
    o[0] = KIND;
    o[1] = LEN6 as u8;
    o[2..4].copy_from_slice(&port.to_be_bytes());
    o[4..].copy_from_slice(&addr);
    o
}

/// The TCP header's length, if a segment at `l4` ending at `end` carries no data and
/// its header has room for `n` more bytes.
fn room(frame: &[u8], l4: usize, end: usize, n: usize) -> Result<usize, Toa> {
    let hlen = usize::from(frame[l4 + 12] >> 4) * 4;
    if l4 + hlen != end {
        return Err(Toa::HasData);
    }
    if hlen + n > 60 {
        return Err(Toa::NoRoom);
    }
    Ok(hlen)
}

/// Appends `opt` to the header of the segment at `l4` (of `hlen` bytes, ending the IP
/// packet at `end`): the frame becomes `end + opt.len()` long (padding after the packet,
/// a short frame's, is dropped). False without room after the frame.
fn append(pkt: &mut Packet<'_>, l4: usize, hlen: usize, end: usize, opt: &[u8]) -> bool {
    if !pkt.set_len(end + opt.len()) {
        return false;
    }
    let frame = pkt.data_mut();
    frame[end..end + opt.len()].copy_from_slice(opt);
    frame[l4 + 12] = (((hlen + opt.len()) / 4) as u8) << 4 | (frame[l4 + 12] & 0x0f);
    true
}

/// Adds the option for the client (the frame's IPv4 source and TCP source port: call it
/// before any rewrite) to a segment without data. The IP header's length and checksum
/// are updated; the TCP checksum is left for the caller to finish (`finish4`).
pub fn add4(pkt: &mut Packet<'_>) -> Toa {
    let ip = Ipv4Packet::new_unchecked(&pkt.data()[ETH_LEN..]);
    let (ihl, total) = (ip.header_len(), usize::from(ip.total_len()));
    let client = ip.src().octets();
    let l4 = ETH_LEN + ihl;
    let end = ETH_LEN + total;
    let hlen = match room(pkt.data(), l4, end, LEN4) {
        Ok(h) => h,
        Err(t) => return t,
    };
    let f = pkt.data();
    let port = u16::from_be_bytes([f[l4], f[l4 + 1]]);
    if !append(pkt, l4, hlen, end, &option4(port, client)) {
        return Toa::NoRoom;
    }
    let mut ip = Ipv4Packet::new_unchecked(&mut pkt.data_mut()[ETH_LEN..]);
    ip.set_total_len((total + LEN4) as u16);
    ip.fill_checksum();
    Toa::Added
}

/// As `add4` for IPv6, whose TCP header follows the fixed header directly (a packet
/// with extension headers goes without: `NoRoom`).
pub fn add6(pkt: &mut Packet<'_>) -> Toa {
    let ip = Ipv6Packet::new_unchecked(&pkt.data()[ETH_LEN..]);
    if ip.next_header() != crate::wire::ipv4::PROTO_TCP {
        return Toa::NoRoom;
    }
    let payload = usize::from(ip.payload_len());
    let client = ip.src_raw();
    let l4 = ETH_LEN + ipv6::HEADER_LEN;
    let end = l4 + payload;
    let hlen = match room(pkt.data(), l4, end, LEN6) {
        Ok(h) => h,
        Err(t) => return t,
    };
    let f = pkt.data();
    let port = u16::from_be_bytes([f[l4], f[l4 + 1]]);
    if !append(pkt, l4, hlen, end, &option6(port, client)) {
        return Toa::NoRoom;
    }
    Ipv6Packet::new_unchecked(&mut pkt.data_mut()[ETH_LEN..])
        .set_payload_len((payload + LEN6) as u16);
    Toa::Added
}

/// The TCP checksum of an IPv4 frame's segment, computed whole (the segment is a few
/// dozen bytes: a SYN or an ACK).
pub fn finish4(frame: &mut [u8]) {
    let ip = Ipv4Packet::new_unchecked(&frame[ETH_LEN..]);
    let (src, dst) = (ip.src().octets(), ip.dst().octets());
    let l4 = ETH_LEN + ip.header_len();
    let end = ETH_LEN + usize::from(ip.total_len());
    fill(
        frame,
        l4,
        end,
        checksum::pseudo_header(src, dst, 6, (end - l4) as u16),
    );
}

/// The same over IPv6.
pub fn finish6(frame: &mut [u8]) {
    let ip = Ipv6Packet::new_unchecked(&frame[ETH_LEN..]);
    let (src, dst) = (ip.src_raw(), ip.dst_raw());
    let l4 = ETH_LEN + ipv6::HEADER_LEN;
    let end = l4 + usize::from(ip.payload_len());
    fill(
        frame,
        l4,
        end,
        checksum::pseudo_header_v6(src, dst, 6, (end - l4) as u32),
    );
}

fn fill(frame: &mut [u8], l4: usize, end: usize, pseudo: u32) {
    frame[l4 + 16] = 0;
    frame[l4 + 17] = 0;
    let c = !checksum::fold(checksum::sum(pseudo, &frame[l4..end]));
    frame[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
}

/// The client a segment's option names, if it has one of this format: what the real
/// server's program reads (`bpf/src/fnat_rs.bpf.c`), here for the tests and the fuzzer.
pub fn parse(options: &[u8]) -> Option<(u16, std::net::IpAddr)> {
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            0 => return None,
            1 => i += 1,
            kind => {
                let len = usize::from(*options.get(i + 1)?);
                if len < 2 || i + len > options.len() {
                    return None;
                }
                let o = &options[i..i + len];
                if kind == KIND && len == LEN4 {
                    let a = std::net::Ipv4Addr::new(o[4], o[5], o[6], o[7]);
                    return Some((u16::from_be_bytes([o[2], o[3]]), a.into()));
                }
                if kind == KIND && len == LEN6 {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&o[4..20]);
                    let a = std::net::Ipv6Addr::from(a);
                    return Some((u16::from_be_bytes([o[2], o[3]]), a.into()));
                }
                i += len;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_found_past_others_and_malformed_ones_are_not() {
        let mut o = vec![2, 4, 5, 0xb4, 1, 1];
        o.extend_from_slice(&option4(40000, [192, 0, 2, 7]));
        assert_eq!(parse(&o), Some((40000, "192.0.2.7".parse().unwrap())));
        let six = option6(
            1,
            "2001:db8::9"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        assert_eq!(parse(&six), Some((1, "2001:db8::9".parse().unwrap())));
        assert_eq!(parse(&[254, 8, 0]), None, "cut short");
        assert_eq!(parse(&[254, 1, 0, 0]), None, "length below 2");
        assert_eq!(parse(&[0, 254, 8, 0, 1, 1, 2, 3, 4]), None, "after the end");
        assert_eq!(parse(&[254, 6, 0, 1, 2, 3]), None, "another length");
    }
}
