//! ICMPv6 (RFC 4443): the messages a director must leave to the kernel (neighbour
//! discovery, router messages, multicast listeners), the errors it reads, and Packet Too
//! Big, which it sends when a tunnelled packet would exceed the path MTU.

use super::checksum;
use super::{be32, set_be16, set_be32, Field, Result, WireError};

mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Packet Too Big's MTU; unused (zero) in the other errors.
    pub const MTU: Field = 4..8;
}

pub const HEADER_LEN: usize = 8;
pub const TYPE_DEST_UNREACHABLE: u8 = 1;
pub const TYPE_PACKET_TOO_BIG: u8 = 2;
pub const TYPE_TIME_EXCEEDED: u8 = 3;
pub const TYPE_PARAM_PROBLEM: u8 = 4;
pub const TYPE_ECHO_REQUEST: u8 = 128;
pub const TYPE_ECHO_REPLY: u8 = 129;
/// The minimum link MTU of IPv6: an error message is never longer (RFC 4443 2.4 (c)).
pub const MIN_MTU: usize = 1280;

/// Whether a message of `msg_type` belongs to the kernel whatever its addresses:
/// multicast listener discovery (130–132, 143), router and neighbour discovery
/// (133–137), and the rest of the ND family (138–142, 148–153). Answering or
/// swallowing one would break the director's own IPv6.
#[inline]
pub fn is_kernels(msg_type: u8) -> bool {
    matches!(msg_type, 130..=143 | 148..=153)
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv6Packet { buffer })
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// True for the four error types, whose body quotes the packet that caused them.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    #[inline]
    pub fn mtu(&self) -> u32 {
        be32(self.buffer.as_ref(), field::MTU)
    }

    /// An error's quoted packet (its IPv6 header and as much of the rest as fitted).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum over the IPv6 pseudo-header of `src` → `dst` is right.
    pub fn verify_checksum(&self, src: [u8; 16], dst: [u8; 16]) -> bool {
        let b = self.buffer.as_ref();
        let acc = checksum::pseudo_header_v6(src, dst, super::ipv6::NH_ICMPV6, b.len() as u32);
        checksum::fold(checksum::sum(acc, b)) == 0xffff
    }
}

/// Writes Packet Too Big with `mtu`, quoting as much of `quote` (the packet that did not
/// fit, from its IPv6 header) as keeps the whole error within `MIN_MTU`, checksummed for
/// `src` → `dst`. Returns the message's length; `buf` must hold it.
pub fn emit_packet_too_big(
    buf: &mut [u8],
    mtu: u32,
    quote: &[u8],
    src: [u8; 16],
    dst: [u8; 16],
) -> usize {
    let room = MIN_MTU - super::ipv6::HEADER_LEN - HEADER_LEN;
    let quoted = quote.len().min(room);
    let len = HEADER_LEN + quoted;
    let (head, body) = buf[..len].split_at_mut(HEADER_LEN);
    body.copy_from_slice(&quote[..quoted]);
    emit_packet_too_big_header(head, mtu, body, src, dst);
    len
}

/// Writes Packet Too Big's 8-byte header into `head` for `quote`, which follows it in
/// the packet (already in place: a frame turned into its own error), checksummed for
/// `src` → `dst`.
pub fn emit_packet_too_big_header(
    head: &mut [u8],
    mtu: u32,
    quote: &[u8],
    src: [u8; 16],
    dst: [u8; 16],
) {
    let h = &mut head[..HEADER_LEN];
    h[field::TYPE] = TYPE_PACKET_TOO_BIG;
    h[field::CODE] = 0;
    set_be16(h, field::CHECKSUM, 0);
    set_be32(h, field::MTU, mtu);
    let len = (HEADER_LEN + quote.len()) as u32;
    let acc = checksum::pseudo_header_v6(src, dst, super::ipv6::NH_ICMPV6, len);
    let c = !checksum::fold(checksum::sum(checksum::sum(acc, h), quote));
    set_be16(h, field::CHECKSUM, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv6Header, Icmpv6Type};
    use proptest::prelude::*;

    const SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    #[test]
    fn the_kernels_messages() {
        for t in [130, 131, 132, 133, 134, 135, 136, 137, 143] {
            assert!(is_kernels(t), "{t}");
        }
        for t in [1, 2, 3, 4, 128, 129, 200] {
            assert!(!is_kernels(t), "{t}");
        }
    }

    #[test]
    fn a_packet_too_big_never_exceeds_the_minimum_mtu() {
        let quote = vec![0x60u8; 1500];
        let mut b = vec![0u8; 2000];
        let n = emit_packet_too_big(&mut b, 1400, &quote, SRC, DST);
        assert_eq!(n + super::super::ipv6::HEADER_LEN, MIN_MTU);
        let p = Icmpv6Packet::new_checked(&b[..n]).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.mtu()), (2, 0, 1400));
        assert!(p.is_error() && p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, [0; 16]), "another pseudo-header");
        assert!(Icmpv6Packet::new_checked(&b[..7]).is_err());
    }

    proptest! {
        /// etherparse reads what we write, and computes the same checksum.
        #[test]
        fn packet_too_big_agrees_with_etherparse(
            mtu in any::<u32>(),
            quote in prop::collection::vec(any::<u8>(), 0..1400),
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
        ) {
            let mut b = vec![0u8; 1300];
            let n = emit_packet_too_big(&mut b, mtu, &quote, src, dst);
            let (h, rest) = Icmpv6Header::from_slice(&b[..n]).unwrap();
            prop_assert_eq!(h.icmp_type, Icmpv6Type::PacketTooBig { mtu });
            prop_assert_eq!(rest, &quote[..quote.len().min(MIN_MTU - 48)]);
            let want = h.icmp_type.calc_checksum(src, dst, rest).unwrap();
            prop_assert_eq!(h.checksum, want);
        }
    }
}
