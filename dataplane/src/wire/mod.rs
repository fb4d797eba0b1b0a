//! Zero-copy header views over frame bytes, one file per protocol.
//!
//! Each view wraps `T: AsRef<[u8]>` (read) or `T: AsMut<[u8]>` (rewrite in place).
//! `new_checked` validates lengths once; after it succeeds no getter or setter of that
//! view can panic. `new_unchecked` is for buffers the caller sized itself (emitting).
//! The `*Repr` types build packets in tests and slow paths, never per packet.

pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

use thiserror::Error;

/// Why a frame could not be viewed as the header asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("frame shorter than the header")]
    Truncated,
    #[error("malformed header")]
    Malformed,
}

pub type Result<T> = core::result::Result<T, WireError>;

pub(crate) type Field = core::ops::Range<usize>;

#[inline(always)]
pub(crate) fn be16(b: &[u8], f: Field) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], f: Field) -> u32 {
    u32::from_be_bytes([b[f.start], b[f.start + 1], b[f.start + 2], b[f.start + 3]])
}

#[inline]
pub(crate) fn set_be16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn set_be32(b: &mut [u8], f: Field, v: u32) {
    b[f].copy_from_slice(&v.to_be_bytes());
}
