//! FullNAT's replies, from the worker's side: for each connection, the entry by which
//! the steering program turns a real server's reply to the local address and port back
//! into one from VIP:vport to the client (`xvs_fnat_conns`, `xvs_fnat_conns6`). Keyed as
//! the reply arrives (an `xvs_fast_key`: the real server as source, the local pair as
//! destination). The pipeline queues an entry when a flow takes its local pair (and
//! again as NAT re-tells its connections), and its removal when the flow gives the pair
//! back; the worker writes a batch's entries with one syscall per family before it
//! transmits, so the entry is there before the real server can answer.

use std::os::fd::OwnedFd;

use crate::offload::{FastKey, FastKey6};
use crate::sys::{Map, MapError};

/// `struct xvs_fnat_value`: what the reply becomes. An IPv4 connection's addresses fill
/// the first 4 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FnatValue {
    pub caddr: [u8; 16],
    pub vip: [u8; 16],
    pub cport: [u8; 2],
    pub vport: [u8; 2],
    /// The real server's id: its slot in the NAT outbound counters.
    pub stats_slot: u32,
}

const _: () = assert!(std::mem::size_of::<FnatValue>() == 40);

/// Entries queued at most per family and kind before the worker writes them.
pub const MAX_REPLY_OPS: usize = 1024;

/// One family's entries to write and remove.
#[derive(Debug)]
pub struct ReplyBatch<K> {
    pub keys: Vec<K>,
    pub values: Vec<FnatValue>,
    pub removed: Vec<K>,
}

impl<K> Default for ReplyBatch<K> {
    fn default() -> Self {
        ReplyBatch {
            keys: Vec::with_capacity(MAX_REPLY_OPS),
            values: Vec::with_capacity(MAX_REPLY_OPS),
            removed: Vec::with_capacity(MAX_REPLY_OPS),
        }
    }
}

/// A reply key of either family: which batch it goes in.
pub trait ReplyFamily: Copy {
    fn batch(ops: &mut ReplyOps) -> &mut ReplyBatch<Self>;
}

impl ReplyFamily for FastKey {
    #[inline(always)]
    fn batch(ops: &mut ReplyOps) -> &mut ReplyBatch<Self> {
        &mut ops.v4
    }
}

impl ReplyFamily for FastKey6 {
    #[inline(always)]
    fn batch(ops: &mut ReplyOps) -> &mut ReplyBatch<Self> {
        &mut ops.v6
    }
}

/// What a batch queued. Allocated once.
#[derive(Debug, Default)]
pub struct ReplyOps {
    pub v4: ReplyBatch<FastKey>,
    pub v6: ReplyBatch<FastKey6>,
    /// Ops that did not fit (never: a batch has fewer frames, and the sweep and the
    /// sync install stop when they are full).
    pub dropped: u64,
}

impl ReplyOps {
    pub fn upsert<K: ReplyFamily>(&mut self, key: K, value: FnatValue) {
        let b = K::batch(self);
        if b.keys.len() < MAX_REPLY_OPS {
            b.keys.push(key);
            b.values.push(value);
        } else {
            self.dropped += 1;
        }
    }

    pub fn remove<K: ReplyFamily>(&mut self, key: K) {
        let b = K::batch(self);
        if b.removed.len() < MAX_REPLY_OPS {
            b.removed.push(key);
        } else {
            self.dropped += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.keys.is_empty()
            && self.v4.removed.is_empty()
            && self.v6.keys.is_empty()
            && self.v6.removed.is_empty()
    }

    /// No room for another entry or removal.
    pub fn is_full(&self) -> bool {
        !self.room_for(1)
    }

    /// Room for `n` more entries and `n` more removals, of either family.
    pub fn room_for(&self, n: usize) -> bool {
        [
            self.v4.keys.len(),
            self.v4.removed.len(),
            self.v6.keys.len(),
            self.v6.removed.len(),
        ]
        .iter()
        .all(|l| l + n <= MAX_REPLY_OPS)
    }

    pub fn clear(&mut self) {
        self.v4.keys.clear();
        self.v4.values.clear();
        self.v4.removed.clear();
        self.v6.keys.clear();
        self.v6.values.clear();
        self.v6.removed.clear();
    }
}

/// The steering program's FullNAT reply maps, written by a worker.
pub struct ReplyMap {
    v4: Map<FastKey, FnatValue>,
    v6: Map<FastKey6, FnatValue>,
}

impl ReplyMap {
    /// The maps, from `xvs_bpf::Steer::fnat_conns_fds` (duplicates the worker owns);
    /// refused if their layouts are not this build's.
    pub fn new(v4: OwnedFd, v6: OwnedFd) -> Result<ReplyMap, MapError> {
        Ok(ReplyMap {
            v4: Map::new(v4)?,
            v6: Map::new(v6)?,
        })
    }

    /// Writes and removes what a batch queued; empties `ops`. Returns the entries the
    /// kernel refused.
    pub fn apply(&self, ops: &mut ReplyOps) -> u64 {
        let failed = apply(&self.v4, &ops.v4) + apply(&self.v6, &ops.v6);
        ops.clear();
        failed
    }

    /// The entry for an IPv4 reply key, if the map has it.
    pub fn lookup(&self, key: &FastKey) -> Option<FnatValue> {
        self.v4.lookup(key)
    }
}

fn apply<K: crate::sys::Pod>(map: &Map<K, FnatValue>, b: &ReplyBatch<K>) -> u64 {
    // Removals first: a pair given back and taken again in one batch ends written.
    for k in &b.removed {
        // Absent already (LRU evicted it): nothing to do.
        let _ = map.delete(k);
    }
    if b.keys.is_empty() {
        return 0;
    }
    (b.keys.len() - map.update_batch(&b.keys, &b.values)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_bounded_per_family_and_cleared() {
        let mut ops = ReplyOps::default();
        for _ in 0..MAX_REPLY_OPS + 2 {
            ops.upsert(FastKey::default(), FnatValue::default());
            ops.remove(FastKey::default());
        }
        assert!(ops.is_full());
        ops.upsert(FastKey6::default(), FnatValue::default());
        assert_eq!(
            (ops.v4.keys.len(), ops.v6.keys.len(), ops.dropped),
            (MAX_REPLY_OPS, 1, 4)
        );
        assert_eq!(
            ops.v4.keys.capacity(),
            MAX_REPLY_OPS,
            "no allocation past the first"
        );
        ops.clear();
        assert!(ops.is_empty());
    }
}
