//! Unpredictable seeds from the kernel.

/// A random 64-bit seed (getrandom(2)); the clock if the kernel has none to give. Not
/// secret, only unpredictable enough that clients cannot aim flows at one bucket.
pub fn seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
    }
    u64::from_ne_bytes(b)
}
