//! ICMPv4 (RFC 792): the error messages xvs reads and sends.

use super::checksum;
use super::{be16, set_be16, Field, Result, WireError};

mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Unused, or (fragmentation needed, RFC 1191) 16 zero bits then the next-hop MTU.
    pub const NEXT_HOP_MTU: Field = 6..8;
}

pub const HEADER_LEN: usize = 8;
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
pub const CODE_FRAG_NEEDED: u8 = 4;

/// A view of an ICMP message.
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(IcmpPacket { buffer })
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// The quoted datagram (IP header and the start of its payload) of an error message.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(0, self.buffer.as_ref())) == 0xffff
    }
}

/// Writes "destination unreachable, fragmentation needed" (RFC 1191) quoting `quote`
/// into `buf[..HEADER_LEN + quote.len()]`, checksum included.
pub fn emit_frag_needed(buf: &mut [u8], next_hop_mtu: u16, quote: &[u8]) {
    let buf = &mut buf[..HEADER_LEN + quote.len()];
    buf[field::TYPE] = TYPE_DEST_UNREACHABLE;
    buf[field::CODE] = CODE_FRAG_NEEDED;
    buf[2..6].fill(0);
    set_be16(buf, field::NEXT_HOP_MTU, next_hop_mtu);
    buf[HEADER_LEN..].copy_from_slice(quote);
    let c = checksum::checksum(buf);
    set_be16(buf, field::CHECKSUM, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frag_needed_round_trip() {
        let quote = [0x45u8; 28];
        let mut b = [0u8; 36];
        emit_frag_needed(&mut b, 1480, &quote);
        let p = IcmpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.next_hop_mtu()), (3, 4, 1480));
        assert_eq!(p.payload(), &quote);
        assert!(p.verify_checksum());
        assert!(IcmpPacket::new_checked(&b[..7]).is_err());
    }
}
