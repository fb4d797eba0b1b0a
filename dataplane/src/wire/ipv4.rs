//! IPv4 headers (RFC 791).

use std::net::Ipv4Addr;

use super::checksum;
use super::{be16, be32, set_be16, set_be32, Field, Result, WireError};

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
}

pub const MIN_HEADER_LEN: usize = 20;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_IPIP: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_VRRP: u8 = 112;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
///
/// After `new_checked`: the buffer holds the whole header (options included) and
/// `total_len` bytes, so `payload()` is exactly the L4 bytes (Ethernet padding excluded).
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let p = Ipv4Packet { buffer };
        let hl = p.header_len();
        let tl = usize::from(p.total_len());
        if p.version() != 4 || hl < MIN_HEADER_LEN || tl < hl {
            return Err(WireError::Malformed);
        }
        if p.buffer.as_ref().len() < tl {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// True for any fragment: more follow, or this is not the first.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn src_raw(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SRC)
    }

    #[inline]
    pub fn dst_raw(&self) -> u32 {
        be32(self.buffer.as_ref(), field::DST)
    }

    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src_raw())
    }

    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst_raw())
    }

    /// True when the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::header_ok(&self.buffer.as_ref()[..self.header_len()])
    }

    /// The L4 bytes: from the end of the header to `total_len`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    #[inline]
    pub fn set_ver_ihl(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    #[inline]
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }

    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::LENGTH, v);
    }

    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::IDENT, v);
    }

    #[inline]
    pub fn set_flags_offset(&mut self, dont_frag: bool) {
        set_be16(
            self.buffer.as_mut(),
            field::FLG_OFF,
            if dont_frag { FLAG_DF } else { 0 },
        );
    }

    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    #[inline]
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_src_raw(&mut self, v: u32) {
        set_be32(self.buffer.as_mut(), field::SRC, v);
    }

    #[inline]
    pub fn set_dst_raw(&mut self, v: u32) {
        set_be32(self.buffer.as_mut(), field::DST, v);
    }

    /// Computes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[start..end]
    }
}

/// An option-less IPv4 header, for building packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub payload_len: usize,
    pub ttl: u8,
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Ipv4Repr {
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Self {
        Ipv4Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            payload_len: p.payload().len(),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        }
    }

    /// Writes the header, with its checksum, into the first 20 bytes of `buf`.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let mut p = Ipv4Packet::new_unchecked(buf);
        p.set_ver_ihl(MIN_HEADER_LEN);
        p.set_tos(self.tos);
        p.set_total_len((MIN_HEADER_LEN + self.payload_len) as u16);
        p.set_ident(self.ident);
        p.set_flags_offset(self.dont_frag);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_raw(u32::from(self.src));
        p.set_dst_raw(u32::from(self.dst));
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real header: 192.168.0.1 -> 192.168.0.199, UDP, checksum 0xb861 (a textbook example).
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn packet() -> Vec<u8> {
        let mut v = HDR.to_vec();
        v.resize(0x73, 0);
        v
    }

    #[test]
    fn parse_real_header() {
        let b = packet();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), PROTO_UDP);
        assert_eq!(p.src(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 0x73 - 20);
    }

    #[test]
    fn emit_round_trip() {
        let b = packet();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        let mut out = [0u8; 20];
        Ipv4Repr::parse(&p).emit(&mut out);
        assert_eq!(out, HDR);
    }

    #[test]
    fn rejects_bad_headers() {
        let b = packet();
        assert_eq!(
            Ipv4Packet::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&b[..0x72]).unwrap_err(),
            WireError::Truncated
        );
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut short_ihl = b.clone();
        short_ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&short_ihl[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut short_total = b;
        short_total[3] = 10;
        assert_eq!(
            Ipv4Packet::new_checked(&short_total[..]).unwrap_err(),
            WireError::Malformed
        );
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut b = packet();
        b.extend_from_slice(&[0xaa; 6]);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 0x73 - 20);
    }

    #[test]
    fn fragments() {
        let mut b = packet();
        b[6] = 0x20; // MF
        assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_fragment());
        b[6] = 0x00;
        b[7] = 0x10; // offset
        assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_fragment());
    }
}
