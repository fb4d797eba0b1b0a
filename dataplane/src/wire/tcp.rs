//! TCP headers (RFC 9293).

use std::net::Ipv4Addr;

use super::checksum;
use super::{be16, be32, set_be16, set_be32, Field, Result, WireError};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    pub const OFF_FLAGS: Field = 12..14;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

pub const MIN_HEADER_LEN: usize = 20;

pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_SYN: u8 = 0x02;
pub const FLAG_RST: u8 = 0x04;
pub const FLAG_PSH: u8 = 0x08;
pub const FLAG_ACK: u8 = 0x10;

/// A view of a TCP segment. After `new_checked` the buffer holds the whole header.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let p = TcpPacket { buffer };
        let hl = p.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if p.buffer.as_ref().len() < hl {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    #[inline]
    pub fn seq(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ)
    }

    #[inline]
    pub fn ack(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK)
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::OFF_FLAGS.start] >> 4) * 4
    }

    /// The low eight flag bits (CWR..FIN).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::OFF_FLAGS.start + 1]
    }

    #[inline]
    pub fn window(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// True when the checksum over the pseudo-header and the whole segment is right.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let seg = self.buffer.as_ref();
        let acc = checksum::pseudo_header(src.octets(), dst.octets(), 6, seg.len() as u16);
        checksum::fold(checksum::sum(acc, seg)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Computes the checksum from scratch over the pseudo-header and the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let seg = self.buffer.as_ref();
        let acc = checksum::pseudo_header(src.octets(), dst.octets(), 6, seg.len() as u16);
        let c = !checksum::fold(checksum::sum(acc, seg));
        self.set_checksum(c);
    }
}

/// A TCP segment without options, for building packets in tests and slow paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: &'a [u8],
}

impl TcpRepr<'_> {
    #[inline]
    pub fn len(&self) -> usize {
        MIN_HEADER_LEN + self.payload.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes header and payload into `buf[..self.len()]`, checksum included.
    #[inline]
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let buf = &mut buf[..self.len()];
        set_be16(buf, field::SRC_PORT, self.src_port);
        set_be16(buf, field::DST_PORT, self.dst_port);
        set_be32(buf, field::SEQ, self.seq);
        set_be32(buf, field::ACK, self.ack);
        buf[field::OFF_FLAGS.start] = ((MIN_HEADER_LEN / 4) as u8) << 4;
        buf[field::OFF_FLAGS.start + 1] = self.flags;
        set_be16(buf, field::WINDOW, self.window);
        set_be16(buf, field::URGENT, 0);
        buf[MIN_HEADER_LEN..].copy_from_slice(self.payload);
        TcpPacket::new_unchecked(buf).fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    #[test]
    fn emit_parse_round_trip() {
        let repr = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: 0x01020304,
            ack: 0,
            flags: FLAG_SYN,
            window: 64240,
            payload: b"abc",
        };
        let mut b = vec![0u8; repr.len()];
        repr.emit(&mut b, SRC, DST);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq(), 0x01020304);
        assert_eq!(p.flags(), FLAG_SYN);
        assert_eq!(p.header_len(), 20);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(10, 0, 0, 101)));
    }

    #[test]
    fn rejects_bad_offsets() {
        let mut b = [0u8; 20];
        b[12] = 0x40; // data offset 16 bytes
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Malformed
        );
        b[12] = 0x60; // 24 bytes, buffer has 20
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated
        );
    }
}
