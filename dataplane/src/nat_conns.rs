//! The NAT connections this worker knows, told to the steering program
//! (`xvs_nat_conns`, `xvs_nat_conns6`), which translates only their replies: a real
//! server's own traffic from its service port, or a spoofed packet, is never given the
//! VIP as its source. The pipeline queues a connection's reply key when it creates (or
//! installs from a peer) a NAT flow (`NatConnOps`); the worker writes a batch's keys with
//! one syscall per family (`NatConnMap`) before it transmits the batch, so the entry is
//! there before the real server can answer. Entries are never removed: the maps are LRU,
//! and a reply refreshes its own.

use std::os::fd::OwnedFd;

use crate::offload::{FastKey, FastKey6};
use crate::sys::{Map, MapError};

/// Keys queued at most per family before the worker writes them: a batch's frames, or
/// the entries an install turn takes (it stops when the ops are full, `is_full`).
pub const MAX_CONN_OPS: usize = 1024;

/// The values the maps hold (nothing but presence): one per key of a batch.
static VALUES: [u32; MAX_CONN_OPS] = [0; MAX_CONN_OPS];

/// A reply key of either family: which batch it belongs to.
pub trait NatFamily: Copy {
    fn batch(ops: &mut NatConnOps) -> &mut Vec<Self>;
}

impl NatFamily for FastKey {
    #[inline(always)]
    fn batch(ops: &mut NatConnOps) -> &mut Vec<Self> {
        &mut ops.v4
    }
}

impl NatFamily for FastKey6 {
    #[inline(always)]
    fn batch(ops: &mut NatConnOps) -> &mut Vec<Self> {
        &mut ops.v6
    }
}

/// The reply keys a batch queued. Allocated once; at most `MAX_CONN_OPS` a family.
#[derive(Debug)]
pub struct NatConnOps {
    v4: Vec<FastKey>,
    v6: Vec<FastKey6>,
    /// Keys that did not fit (never: a batch has fewer frames, and an install stops
    /// when they are full).
    pub dropped: u64,
}

impl Default for NatConnOps {
    fn default() -> Self {
        NatConnOps {
            v4: Vec::with_capacity(MAX_CONN_OPS),
            v6: Vec::with_capacity(MAX_CONN_OPS),
            dropped: 0,
        }
    }
}

impl NatConnOps {
    pub fn push<K: NatFamily>(&mut self, key: K) {
        let b = K::batch(self);
        if b.len() < MAX_CONN_OPS {
            b.push(key);
        } else {
            self.dropped += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// No room for another key of some family: write these first.
    pub fn is_full(&self) -> bool {
        self.v4.len() >= MAX_CONN_OPS || self.v6.len() >= MAX_CONN_OPS
    }

    pub fn v4(&self) -> &[FastKey] {
        &self.v4
    }

    pub fn v6(&self) -> &[FastKey6] {
        &self.v6
    }

    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
}

/// The steering program's known NAT connections' maps, written by a worker.
pub struct NatConnMap {
    v4: Map<FastKey, u32>,
    v6: Map<FastKey6, u32>,
}

impl NatConnMap {
    /// The maps, from `xvs_bpf::Steer::nat_conns_fds` (duplicates the worker owns);
    /// refused if their layouts are not this build's.
    pub fn new(v4: OwnedFd, v6: OwnedFd) -> Result<NatConnMap, MapError> {
        Ok(NatConnMap {
            v4: Map::new(v4)?,
            v6: Map::new(v6)?,
        })
    }

    /// Writes what a batch queued (a syscall per family that has keys) and empties
    /// `ops`; returns how many keys could not be written.
    pub fn apply(&self, ops: &mut NatConnOps) -> u64 {
        let mut failed = 0;
        if !ops.v4.is_empty() {
            let n = self.v4.update_batch(&ops.v4, &VALUES);
            failed += (ops.v4.len() - n) as u64;
        }
        if !ops.v6.is_empty() {
            let n = self.v6.update_batch(&ops.v6, &VALUES);
            failed += (ops.v6.len() - n) as u64;
        }
        ops.clear();
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_bounded_per_family_and_cleared() {
        let mut ops = NatConnOps::default();
        for _ in 0..MAX_CONN_OPS + 2 {
            ops.push(FastKey::default());
        }
        assert!(ops.is_full());
        ops.push(FastKey6::default());
        assert_eq!(
            (ops.v4().len(), ops.v6().len(), ops.dropped),
            (MAX_CONN_OPS, 1, 2)
        );
        assert_eq!(
            ops.v4.capacity(),
            MAX_CONN_OPS,
            "no allocation past the first"
        );
        ops.clear();
        assert!(ops.is_empty());
    }
}
