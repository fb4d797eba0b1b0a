//! The UMEM: one anonymous mapping cut into equal frames, shared with the kernel.

use std::io;
use std::ptr::NonNull;

#[derive(Debug)]
pub struct Umem {
    base: NonNull<u8>,
    len: usize,
    frame_size: u32,
    frame_count: u32,
}

// SAFETY: the mapping is owned by this value; moving it between threads moves ownership.
unsafe impl Send for Umem {}

impl Umem {
    pub fn new(frame_count: u32, frame_size: u32) -> io::Result<Self> {
        if !frame_size.is_power_of_two() || frame_size < 2048 || frame_count == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "UMEM frames must be a power of two of at least 2048 bytes",
            ));
        }
        let len = frame_count as usize * frame_size as usize;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Umem {
            base: NonNull::new(ptr.cast()).expect("mmap returned non-null"),
            len,
            frame_size,
            frame_count,
        })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// The start of the frame holding `addr` (aligned mode: frames are power-of-two sized).
    #[inline]
    pub fn frame_base(&self, addr: u64) -> u64 {
        addr & !(u64::from(self.frame_size) - 1)
    }

    /// The packet a descriptor points at, with its frame's headroom in front, or `None`
    /// if it leaves its frame.
    #[inline]
    pub fn packet_in_frame(&mut self, addr: u64, len: u32) -> Option<crate::packet::Packet<'_>> {
        let base = self.frame_base(addr);
        let frame_size = self.frame_size as usize;
        if base.checked_add(u64::from(self.frame_size))? > self.len as u64 {
            return None;
        }
        // SAFETY: the frame lies inside the mapping (checked above); `&mut self` means no
        // other slice of it is alive, and the kernel does not touch a frame while user
        // space owns it (taken from the RX ring, not yet on the fill or TX ring).
        let frame =
            unsafe { std::slice::from_raw_parts_mut(self.as_ptr().add(base as usize), frame_size) };
        crate::packet::Packet::new(frame, (addr - base) as usize, len as usize)
    }

    /// The packet bytes a descriptor points at, or `None` if it leaves its frame.
    #[inline]
    pub fn packet_mut(&mut self, addr: u64, len: u32) -> Option<&mut [u8]> {
        let end = addr.checked_add(u64::from(len))?;
        if end > self.frame_base(addr) + u64::from(self.frame_size) || end > self.len as u64 {
            return None;
        }
        // SAFETY: the range lies inside the mapping (checked above), and `&mut self`
        // guarantees no other slice of it is alive. The kernel does not write a frame
        // while user space owns it (it came from the RX ring and is not yet on the fill or
        // TX ring).
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.as_ptr().add(addr as usize), len as usize)
        })
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`; no slice of it outlives
        // `self` (they borrow it).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_stay_inside_their_frame() {
        let mut u = Umem::new(4, 4096).unwrap();
        assert_eq!(u.packet_mut(256, 1500).unwrap().len(), 1500);
        assert!(u.packet_mut(4096 + 256, 3840).is_some());
        assert!(
            u.packet_mut(4096 + 256, 3841).is_none(),
            "crosses into the next frame"
        );
        assert!(u.packet_mut(3 * 4096 + 100, 4000).is_none(), "past the end");
        assert!(u.packet_mut(u64::MAX - 2, 10).is_none());
        assert_eq!(u.frame_base(4096 + 256), 4096);
        let p = u.packet_in_frame(4096 + 256, 100).unwrap();
        assert_eq!(
            (p.headroom(), p.len(), p.tailroom()),
            (256, 100, 4096 - 356)
        );
        assert!(u.packet_in_frame(4096 + 4000, 200).is_none());
        assert!(Umem::new(4, 3000).is_err());
    }
}
