//! The queues between one worker and the sync thread: bounded, lock-free
//! (`crossbeam_queue::ArrayQueue`, allocated once), so neither side ever waits for the
//! other. A full queue loses the entry and counts it (`sync_queue_full`); the next state
//! change or refresh sends it again.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use super::SyncRecord;

/// Entries a worker may have waiting for the sync thread: at 1,000,000 new connections a
/// second the thread drains its queues every few milliseconds, so a burst of this many
/// fits. 64 bytes each: 4 MiB per worker.
pub const CHANGES_CAPACITY: usize = 65536;
/// A resync walk waits for room here, so it is paced by the thread's sending.
pub const BULK_CAPACITY: usize = 8192;
/// Entries received and not yet installed by the worker.
pub const INBOUND_CAPACITY: usize = 65536;

pub struct SyncChannel {
    /// Worker → sync thread: entries as they change.
    pub changes: ArrayQueue<SyncRecord>,
    /// Worker → sync thread: a resync walk of the worker's tables.
    pub bulk: ArrayQueue<SyncRecord>,
    /// Sync thread → worker: entries to install.
    pub inbound: ArrayQueue<SyncRecord>,
    /// The walk the sync thread asked for last (a number it bumps)...
    walk_asked: AtomicU64,
    /// ...and the last one the worker finished (all of it in `bulk`).
    walk_done: AtomicU64,
}

impl Default for SyncChannel {
    fn default() -> Self {
        SyncChannel {
            changes: ArrayQueue::new(CHANGES_CAPACITY),
            bulk: ArrayQueue::new(BULK_CAPACITY),
            inbound: ArrayQueue::new(INBOUND_CAPACITY),
            walk_asked: AtomicU64::new(0),
            walk_done: AtomicU64::new(0),
        }
    }
}

impl SyncChannel {
    /// Sync thread: asks the worker for a walk of its whole table; returns its number.
    pub fn ask_walk(&self) -> u64 {
        self.walk_asked.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Sync thread: whether walk `n` is finished (every entry of it is in `bulk`).
    pub fn walk_finished(&self, n: u64) -> bool {
        self.walk_done.load(Ordering::Acquire) >= n
    }

    /// Worker: the walk asked for last.
    pub fn walk_asked(&self) -> u64 {
        self.walk_asked.load(Ordering::Acquire)
    }

    /// Worker: walk `n` is done.
    pub fn finish_walk(&self, n: u64) {
        self.walk_done.store(n, Ordering::Release);
    }
}
