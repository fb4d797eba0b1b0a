//! UDP headers (RFC 768).

use std::net::Ipv4Addr;

use super::checksum;
use super::{be16, set_be16, Field, Result, WireError};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram. After `new_checked` the buffer holds `len()` bytes.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let p = UdpPacket { buffer };
        let len = usize::from(p.len());
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if p.buffer.as_ref().len() < len {
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

    /// The length field: header plus payload.
    #[allow(clippy::len_without_is_empty)]
    #[inline]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// True when the checksum is right, or absent (0: allowed over IPv4).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let dgram = &self.buffer.as_ref()[..usize::from(self.len())];
        let acc = checksum::pseudo_header(src.octets(), dst.octets(), 17, dgram.len() as u16);
        checksum::fold(checksum::sum(acc, dgram)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
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
}

/// A UDP header, for building packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpRepr {
    /// Writes header and `payload` into `buf`, checksum included.
    #[inline]
    pub fn emit(&self, buf: &mut [u8], payload: &[u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let len = HEADER_LEN + payload.len();
        let buf = &mut buf[..len];
        set_be16(buf, field::SRC_PORT, self.src_port);
        set_be16(buf, field::DST_PORT, self.dst_port);
        set_be16(buf, field::LENGTH, len as u16);
        set_be16(buf, field::CHECKSUM, 0);
        buf[HEADER_LEN..].copy_from_slice(payload);
        let acc = checksum::pseudo_header(src.octets(), dst.octets(), 17, len as u16);
        let c = match !checksum::fold(checksum::sum(acc, buf)) {
            0 => 0xffff, // RFC 768: a computed zero is sent as all ones
            c => c,
        };
        set_be16(buf, field::CHECKSUM, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_parse_round_trip() {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 100));
        let mut b = [0u8; 13];
        UdpRepr {
            src_port: 5353,
            dst_port: 53,
        }
        .emit(&mut b, b"hello", s, d);
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 13));
        assert_eq!(p.payload(), b"hello");
        assert!(p.verify_checksum(s, d));
        assert!(!p.verify_checksum(d, Ipv4Addr::new(1, 1, 1, 1)));
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut b = [0u8; 8];
        b[5] = 4;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Malformed
        );
        b[5] = 9;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            UdpPacket::new_checked(&b[..7]).unwrap_err(),
            WireError::Truncated
        );
    }
}
