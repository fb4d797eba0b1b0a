//! Fast, seeded, stable hashing for the hot-path tables (not `DefaultHasher`, whose output
//! may change between Rust releases and which is slow for a 13-byte key).

use std::hash::{BuildHasher, Hasher};

/// The 64-bit finaliser of MurmurHash3: every input bit affects every output bit.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A `Hasher` for small fixed keys in maps built off the hot path and read on it.
#[derive(Default, Clone, Copy)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = mix64(self.0 ^ i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
}

#[derive(Default, Clone, Copy)]
pub struct MixBuildHasher;

impl BuildHasher for MixBuildHasher {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher::default()
    }
}
