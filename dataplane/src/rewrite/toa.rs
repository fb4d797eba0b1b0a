//! The client's address in a TCP option, in the format of the `toa` kernel module (DPVS,
//! Alibaba's LVS): kind 254, then the client's port and IPv4 address (8 bytes), or port
//! and IPv6 address (20 bytes). FullNAT adds it to segments that carry no data (the SYN
//! and the handshake's last ACK), so a segment never grows past what its sender's MSS
//! allows, and no MSS needs clamping. It goes right after the options in use (over an
//! EOL, which would hide it); where the header has no room (40 bytes of options in
//! use), the segment goes without it. An option of this kind a client sends itself is
//! turned into NOPs on every segment (`scrub`): only the director names the client.

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

/// Where the options in use end (the first EOL, or the header's end), from the options'
/// start; `None` for options that do not parse (a length below 2, or past the header).
fn options_end(opts: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return Some(i),
            1 => i += 1,
            _ => {
                let len = usize::from(*opts.get(i + 1)?);
                if len < 2 || i + len > opts.len() {
                    return None;
                }
                i += len;
            }
        }
    }
    Some(i)
}

/// Puts `opt` right after the options in use of the data-less segment at `l4` (the IP
/// packet ends at `end`): over an EOL and its padding, which would hide it, and the
/// header grown by whole words where they do not make room. Returns the growth in
/// bytes; the frame is that much longer (padding after the packet, a short frame's,
/// is dropped).
fn place(pkt: &mut Packet<'_>, l4: usize, end: usize, opt: &[u8]) -> Result<usize, Toa> {
    let frame = pkt.data();
    let hlen = usize::from(frame[l4 + 12] >> 4) * 4;
    if l4 + hlen != end {
        return Err(Toa::HasData);
    }
    let used = options_end(&frame[l4 + 20..end]).ok_or(Toa::NoRoom)?;
    let opts_len = (used + opt.len()).div_ceil(4) * 4;
    if 20 + opts_len > 60 {
        return Err(Toa::NoRoom);
    }
    let new_hlen = (20 + opts_len).max(hlen);
    let grow = new_hlen - hlen;
    if !pkt.set_len(end + grow) {
        return Err(Toa::NoRoom);
    }
    let frame = pkt.data_mut();
    let at = l4 + 20 + used;
    frame[at..at + opt.len()].copy_from_slice(opt);
    // EOL to the header's end.
    frame[at + opt.len()..l4 + new_hlen].fill(0);
    frame[l4 + 12] = ((new_hlen / 4) as u8) << 4 | (frame[l4 + 12] & 0x0f);
    Ok(grow)
}

/// Adds the option for the client (the frame's IPv4 source and TCP source port: call it
/// before any rewrite) to a segment without data. The IP header's length and checksum
/// are updated; the TCP checksum is left for the caller to finish (`finish4`).
pub fn add4(pkt: &mut Packet<'_>) -> Toa {
    let ip = Ipv4Packet::new_unchecked(&pkt.data()[ETH_LEN..]);
    let (ihl, total) = (ip.header_len(), usize::from(ip.total_len()));
    let client = ip.src().octets();
    let l4 = ETH_LEN + ihl;
    let f = pkt.data();
    let port = u16::from_be_bytes([f[l4], f[l4 + 1]]);
    let grow = match place(pkt, l4, ETH_LEN + total, &option4(port, client)) {
        Ok(g) => g,
        Err(t) => return t,
    };
    let mut ip = Ipv4Packet::new_unchecked(&mut pkt.data_mut()[ETH_LEN..]);
    ip.set_total_len((total + grow) as u16);
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
    let f = pkt.data();
    let port = u16::from_be_bytes([f[l4], f[l4 + 1]]);
    let grow = match place(pkt, l4, l4 + payload, &option6(port, client)) {
        Ok(g) => g,
        Err(t) => return t,
    };
    Ipv6Packet::new_unchecked(&mut pkt.data_mut()[ETH_LEN..])
        .set_payload_len((payload + grow) as u16);
    Toa::Added
}

/// Turns every option of this kind a TCP segment already carries (a client's, which
/// would name anyone it likes) into NOPs, the checksum updated word by word; true if
/// there was one. `seg` starts at the TCP header.
pub fn scrub(seg: &mut [u8]) -> bool {
    let hlen = usize::from(seg[12] >> 4) * 4;
    if hlen <= 20 || hlen > seg.len() {
        return false;
    }
    let mut found = false;
    let mut i = 20;
    while i < hlen {
        match seg[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = usize::from(*seg.get(i + 1).unwrap_or(&0));
                if len < 2 || i + len > hlen {
                    break;
                }
                if kind == KIND {
                    nop_out(seg, i, i + len);
                    found = true;
                }
                i += len;
            }
        }
    }
    found
}

/// NOPs over `seg[from..to]`, the TCP checksum (at 16) updated for each word touched.
fn nop_out(seg: &mut [u8], from: usize, to: usize) {
    let mut sum = u16::from_be_bytes([seg[16], seg[17]]);
    let mut w = from & !1;
    while w < to {
        let old = u16::from_be_bytes([seg[w], seg[w + 1]]);
        seg[w.max(from)..(w + 2).min(to)].fill(1);
        let new = u16::from_be_bytes([seg[w], seg[w + 1]]);
        sum = checksum::update16(sum, old, new);
        w += 2;
    }
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
}

/// `scrub` for a frame of either family (IPv6 with its extension headers walked).
pub fn scrub_frame(frame: &mut [u8], v6: bool) -> bool {
    let l4 = if v6 {
        match Ipv6Packet::new_unchecked(&frame[ETH_LEN..]).upper_layer() {
            ipv6::Upper::Found { offset, .. } => ETH_LEN + ipv6::HEADER_LEN + offset,
            _ => return false,
        }
    } else {
        ETH_LEN + Ipv4Packet::new_unchecked(&frame[ETH_LEN..]).header_len()
    };
    frame
        .get_mut(l4..)
        .is_some_and(|seg| seg.len() >= 20 && scrub(seg))
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
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    /// A client's segment with raw TCP options `opts` (a multiple of 4) and `payload`,
    /// its checksums etherparse's.
    fn segment(opts: &[u8], syn: bool, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 100], 64)
            .tcp(40000, 80, 7, 65535);
        let b = if syn { b.syn() } else { b.ack(9) };
        let b = b.options_raw(opts).unwrap();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// The options as etherparse reads them after `add4` and `finish4`, and the
    /// checksums it computes.
    fn added(frame: Vec<u8>) -> (Toa, Vec<u8>) {
        let len = frame.len();
        let mut buf = frame;
        buf.resize(len + 64, 0);
        let mut pkt = Packet::new(&mut buf, 0, len).unwrap();
        let t = add4(&mut pkt);
        let n = pkt.len();
        buf.truncate(n);
        if t == Toa::Added {
            finish4(&mut buf);
        }
        (t, buf)
    }

    fn tcp_ok(frame: &[u8]) -> Vec<u8> {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
            panic!()
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!()
        };
        assert_eq!(
            t.checksum(),
            t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap()
        );
        t.options().to_vec()
    }

    #[test]
    fn the_option_goes_over_an_eol_that_would_hide_it() {
        // MSS, then EOL and its padding: appended after them, no parser would see it.
        let (t, f) = added(segment(&[2, 4, 5, 0xb4, 0, 0, 0, 0], true, b""));
        assert_eq!(t, Toa::Added);
        let opts = tcp_ok(&f);
        assert_eq!(&opts[..4], &[2, 4, 5, 0xb4]);
        assert_eq!(parse(&opts), Some((40000, "10.0.0.1".parse().unwrap())));
        assert_eq!(opts.len(), 12, "grown by a word only");
    }

    #[test]
    fn room_is_what_the_options_in_use_leave() {
        // 32 bytes in use: the option fits at 32, the header at its 60 bytes.
        let mut in_use = vec![1u8; 28];
        in_use.extend_from_slice(&[2, 4, 5, 0xb4]);
        let (t, f) = added(segment(&in_use, true, b""));
        assert_eq!(t, Toa::Added);
        assert_eq!(
            parse(&tcp_ok(&f)),
            Some((40000, "10.0.0.1".parse().unwrap()))
        );
        // 36 in use: no room; the segment is untouched.
        let mut full = vec![1u8; 32];
        full.extend_from_slice(&[2, 4, 5, 0xb4]);
        let seg = segment(&full, true, b"");
        assert_eq!(added(seg.clone()), (Toa::NoRoom, seg));
        // Data: left as it is.
        let seg = segment(&[], false, b"GET /");
        assert_eq!(added(seg.clone()), (Toa::HasData, seg));
    }

    #[test]
    fn a_clients_own_option_is_turned_into_nops() {
        let mut opts = vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        opts.extend_from_slice(&option4(1, [192, 0, 2, 66]));
        let mut f = segment(&opts, false, b"payload");
        assert_eq!(parse(&tcp_ok(&f)), Some((1, "192.0.2.66".parse().unwrap())));
        assert!(scrub_frame(&mut f, false));
        let after = tcp_ok(&f);
        assert_eq!(parse(&after), None);
        assert_eq!(&after[..12], &opts[..12], "the others kept");
        assert!(after[12..].iter().all(|b| *b == 1));
        assert!(!scrub_frame(&mut f, false), "nothing left");
    }

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
