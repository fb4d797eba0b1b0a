//! Where a flow table's entries live: the heap (a table that ends with the process) or a
//! shared file mapping (`flow::state_file`: one that a restarted xvs finds again). The table
//! sees a slice either way; the choice costs nothing per packet.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use super::{MappedFile, Pod};

/// A fixed-length run of `T` that the table owns exclusively.
pub struct Entries<T> {
    ptr: NonNull<T>,
    len: usize,
    backing: Backing,
}

enum Backing {
    /// A leaked `Box<[T]>` of `len`, taken back on drop.
    Heap,
    /// Keeps the mapping alive; never read.
    File(#[allow(dead_code)] Arc<MappedFile>),
}

// SAFETY: `Entries` owns its elements as a Box would (the file region is handed to one
// table only, see `in_file`), so it is Send when T is.
unsafe impl<T: Send> Send for Entries<T> {}
// SAFETY: shared access hands out `&[T]` only.
unsafe impl<T: Sync> Sync for Entries<T> {}

impl<T: Copy + Default> Entries<T> {
    /// `len` default values on the heap.
    pub fn on_heap(len: usize) -> Entries<T> {
        let boxed = Box::into_raw(vec![T::default(); len].into_boxed_slice());
        Entries {
            ptr: NonNull::new(boxed.cast::<T>()).expect("a Box's pointer is never null"),
            len,
            backing: Backing::Heap,
        }
    }
}

impl<T: Pod> Entries<T> {
    /// `len` values at byte `offset` of `file`, as they are there. `None` when the range
    /// does not fit in the mapping or is misaligned for `T`.
    ///
    /// The caller hands each region to one table only: two `Entries` over one range
    /// would alias (`state_file` lays the regions out apart and makes each once).
    pub(crate) fn in_file(file: Arc<MappedFile>, offset: usize, len: usize) -> Option<Entries<T>> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        if offset.checked_add(bytes)? > file.len() || len == 0 {
            return None;
        }
        let p = file.as_ptr().wrapping_add(offset).cast::<T>();
        if !p.is_aligned() {
            return None;
        }
        Some(Entries {
            ptr: NonNull::new(p)?,
            len,
            backing: Backing::File(file),
        })
    }
}

impl<T> Deref for Entries<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` initialised, aligned values (a Box's, or a file
        // region checked in `in_file`, where any bytes are a valid `T: Pod`), kept alive
        // by `backing` for as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for Entries<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference, since no
        // other `Entries` covers the same memory.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Entries<T> {
    fn drop(&mut self) {
        if let Backing::Heap = self.backing {
            let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
            // SAFETY: `on_heap` leaked exactly this Box<[T]>; it is taken back once.
            drop(unsafe { Box::from_raw(raw) });
        }
    }
}
