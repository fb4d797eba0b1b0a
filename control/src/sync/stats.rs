//! What connection sync has done, for `/metrics` and `xvs status --sync`: atomics the
//! sync thread writes and the control thread reads, and the peers as the thread last
//! published them (once a second).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use arc_swap::ArcSwap;

use super::wire::Reject;

#[derive(Default)]
pub struct SyncStats {
    pub sent_entries: AtomicU64,
    pub sent_messages: AtomicU64,
    pub sent_bytes: AtomicU64,
    pub received_entries: AtomicU64,
    pub received_messages: AtomicU64,
    pub received_bytes: AtomicU64,
    rejected: [AtomicU64; Reject::COUNT],
    /// Entries whose real server had left this director's snapshot before they were sent.
    pub dest_gone: AtomicU64,
    /// NAT clients of received entries whose next hop was not resolved: the resolver's
    /// queue was full (asked again with the client's next entry).
    pub resolves_dropped: AtomicU64,
    /// Resyncs this director asked for, finished, and served to its peers.
    pub resync_requested: AtomicU64,
    pub resync_completed: AtomicU64,
    pub resync_served: AtomicU64,
    /// Duration of the last resync received (asked → done), and of the last served.
    pub resync_last_ms: AtomicU64,
    pub resync_served_last_ms: AtomicU64,
    /// Entries the last resync served carried.
    pub resync_served_entries: AtomicU64,
    /// The table is in step with the peers (a resync finished, or none to be had).
    pub ready: AtomicBool,
    pub peers: ArcSwap<Vec<PeerView>>,
}

/// One peer as the sync thread sees it.
#[derive(Clone, Debug)]
pub struct PeerView {
    pub addr: Ipv4Addr,
    pub last_heard: Instant,
    /// Heard within the last 3 s.
    pub live: bool,
    /// The connections it says it tracks (its last hello).
    pub flows: u64,
}

impl SyncStats {
    pub fn reject(&self, r: Reject) {
        self.rejected[r.index()].fetch_add(1, Relaxed);
    }

    pub fn rejected(&self, r: Reject) -> u64 {
        self.rejected[r.index()].load(Relaxed)
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}
