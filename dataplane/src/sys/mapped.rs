//! A file mapped shared into memory (crate-private: what may be written where is the
//! flow-state file's business, not a caller's): what the flow tables live in when they must outlive
//! the process (`flow::state_file`). Writes reach the file's pages as they are made, so
//! a `kill -9` loses nothing already stored.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use super::Pod;

/// `len` bytes of a file, mapped read-write and shared; unmapped on drop.
#[derive(Debug)]
pub struct MappedFile {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; which thread writes which
// part of it is the owners' business (each table is one worker's).
unsafe impl Send for MappedFile {}
// SAFETY: as for Send: `&MappedFile` hands out only the address and length.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps the first `len` bytes of `file`, which must be at least that long (a page
    /// past its end would fault with SIGBUS when touched).
    pub(crate) fn map(file: &File, len: usize) -> io::Result<MappedFile> {
        if len == 0 || (file.metadata()?.len() as usize) < len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the file is shorter than the mapping",
            ));
        }
        // SAFETY: a fresh shared mapping of an open descriptor; the kernel picks the
        // address, so no existing memory is replaced.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(MappedFile { ptr, len })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The `T` at byte `offset`, read whole; `None` past the end or misaligned.
    pub fn read<T: Pod>(&self, offset: usize) -> Option<T> {
        let p = self.at::<T>(offset)?;
        // SAFETY: `at` checked the value lies inside the mapping and is aligned; any
        // bytes are a valid T (Pod).
        Some(unsafe { std::ptr::read_volatile(p) })
    }

    /// Writes `v` at byte `offset`; false past the end or misaligned.
    pub(crate) fn write<T: Pod>(&self, offset: usize, v: T) -> bool {
        let Some(p) = self.at::<T>(offset) else {
            return false;
        };
        // SAFETY: as in `read`; callers write only parts no table covers (the header).
        unsafe { std::ptr::write_volatile(p, v) };
        true
    }

    fn at<T>(&self, offset: usize) -> Option<*mut T> {
        let end = offset.checked_add(std::mem::size_of::<T>())?;
        let p = self.ptr.as_ptr().wrapping_add(offset).cast::<T>();
        (end <= self.len && p.is_aligned()).then_some(p)
    }

    /// Faults in `len` bytes from `offset` now, so the first packets do not pay for it
    /// (a hint: kernels before 5.14 say no, and the pages come on first touch instead).
    pub fn populate(&self, offset: usize, len: usize) {
        let end = offset.saturating_add(len).min(self.len);
        if offset >= end {
            return;
        }
        // SAFETY: the range lies inside this mapping (clipped above); MADV_POPULATE_WRITE
        // only faults pages in, it changes no byte.
        unsafe {
            libc::madvise(
                self.ptr.as_ptr().add(offset).cast(),
                end - offset,
                libc::MADV_POPULATE_WRITE,
            )
        };
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `map` made; nothing refers to it any more
        // (the tables that point into it hold an Arc of this value).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
