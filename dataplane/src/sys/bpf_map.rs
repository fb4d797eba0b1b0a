//! A BPF map the worker writes, typed by its key and value: `Map::new` checks the map's
//! sizes against theirs, so each call below hands the kernel buffers of exactly the
//! sizes it copies. The calls are libbpf's (`libbpf-sys`): one syscall each, no
//! allocation.

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::raw::c_void;

use super::Pod;

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("cannot read the BPF map's description: {0}")]
    Info(std::io::Error),
    #[error(
        "the BPF map has {key}-byte keys and {value}-byte values, xvs expects {want_key} and \
         {want_value}: the steering program and the daemon come from different builds \
         (reinstall xvs)"
    )]
    Layout {
        key: u32,
        value: u32,
        want_key: usize,
        want_value: usize,
    },
}

/// A map whose keys are `K` and values `V` (checked when it was opened).
#[derive(Debug)]
pub struct Map<K, V> {
    fd: OwnedFd,
    _layout: PhantomData<fn(K, V) -> V>,
}

impl<K: Pod, V: Pod> Map<K, V> {
    /// The map `fd`, if its key and value sizes are `K`'s and `V`'s.
    pub fn new(fd: OwnedFd) -> Result<Self, MapError> {
        let mut info = libbpf_sys::bpf_map_info::default();
        let mut len = std::mem::size_of_val(&info) as u32;
        // SAFETY: `info` is a live bpf_map_info of `len` bytes for libbpf to fill.
        let rc = unsafe { libbpf_sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
        if rc < 0 {
            return Err(MapError::Info(std::io::Error::from_raw_os_error(-rc)));
        }
        let (want_key, want_value) = (std::mem::size_of::<K>(), std::mem::size_of::<V>());
        if info.key_size as usize != want_key || info.value_size as usize != want_value {
            return Err(MapError::Layout {
                key: info.key_size,
                value: info.value_size,
                want_key,
                want_value,
            });
        }
        Ok(Map {
            fd,
            _layout: PhantomData,
        })
    }

    /// Another handle on the same map (a descriptor of its own).
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Map {
            fd: self.fd.try_clone()?,
            _layout: PhantomData,
        })
    }

    /// Writes `keys[i] → values[i]` in one syscall; returns how many the kernel wrote
    /// (all of them, unless the map refused one).
    pub fn update_batch(&self, keys: &[K], values: &[V]) -> usize {
        let n = keys.len().min(values.len());
        if n == 0 {
            return 0;
        }
        let mut count = n as u32;
        // SAFETY: `keys` and `values` hold at least `count` elements of the map's key and
        // value sizes (checked in `new`); the kernel only reads them.
        let rc = unsafe {
            libbpf_sys::bpf_map_update_batch(
                self.fd.as_raw_fd(),
                keys.as_ptr().cast::<c_void>(),
                values.as_ptr().cast::<c_void>(),
                &mut count,
                std::ptr::null(),
            )
        };
        // The kernel writes back how many it processed, also on error.
        if rc < 0 {
            (count as usize).min(n)
        } else {
            n
        }
    }

    /// Removes `key`; false if it was not there (or the call failed).
    pub fn delete(&self, key: &K) -> bool {
        let key: *const K = key;
        // SAFETY: `key` is a live `K`, the map's key size (checked in `new`).
        unsafe { libbpf_sys::bpf_map_delete_elem(self.fd.as_raw_fd(), key.cast()) == 0 }
    }

    /// `key`'s value, if the map has it.
    pub fn lookup(&self, key: &K) -> Option<V> {
        let mut value = V::default();
        let (key, out): (*const K, *mut V) = (key, &mut value);
        // SAFETY: `key` is a live `K` and `out` a live `V`, the map's key and value
        // sizes (checked in `new`); the kernel writes only `V`'s bytes, and any bytes are
        // a valid `V` (`Pod`).
        let rc =
            unsafe { libbpf_sys::bpf_map_lookup_elem(self.fd.as_raw_fd(), key.cast(), out.cast()) };
        (rc == 0).then_some(value)
    }
}
