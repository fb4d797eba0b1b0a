//! FullNAT on the worker: the local (address, port) pairs a connection's requests leave
//! from, and the entries by which the steering program translates its replies.
//!
//! - `pool`: the pairs this worker may hand out (its share of each pool) and those in use
//! - `replies`: the reply entries (`xvs_fnat_conns`) queued per batch, and their writer
//!
//! A flow's pair is kept beside the flow table, slot for slot (`Slots`), not in the
//! flow's own 32 bytes: only a director with a FullNAT service pays for it, once, when
//! its first snapshot with one arrives.

mod pool;
mod replies;

pub use pool::{pool_size, LocalPort, Pools, Share};
pub use replies::{FnatValue, ReplyBatch, ReplyFamily, ReplyMap, ReplyOps, MAX_REPLY_OPS};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::offload::{FastKey, FastKey6};
use crate::snapshot::Snapshot;

/// What a FullNAT flow's slot holds: its pair, and its reply entry's key (so that the
/// entry can be removed when the flow ends, whatever the snapshot says by then).
#[derive(Clone, Copy, Debug, Default)]
pub struct Held<K> {
    pub pair: LocalPort,
    pub reply: K,
    /// Installed from a peer (connection sync): every worker has a copy, and the one
    /// the connection's packets reach may not be this one; this copy's end says
    /// nothing of the connection's, so it leaves the reply entry to the LRU and to the
    /// next connection on the pair (as NAT's entries are left).
    pub synced: bool,
}

/// The per-slot pairs of one family's flow table.
pub trait SlotFamily: ReplyFamily + Default + PartialEq {
    fn slots(f: &mut FullNat) -> &mut Vec<Held<Self>>;
    fn slots_ref(f: &FullNat) -> &[Held<Self>];
    /// The local address and port a reply key names (its destination).
    fn local(&self) -> (IpAddr, u16);
}

impl SlotFamily for FastKey {
    #[inline(always)]
    fn slots(f: &mut FullNat) -> &mut Vec<Held<Self>> {
        &mut f.slots4
    }
    fn slots_ref(f: &FullNat) -> &[Held<Self>] {
        &f.slots4
    }
    fn local(&self) -> (IpAddr, u16) {
        (
            Ipv4Addr::from(self.daddr).into(),
            u16::from_be_bytes(self.dport),
        )
    }
}

impl SlotFamily for FastKey6 {
    #[inline(always)]
    fn slots(f: &mut FullNat) -> &mut Vec<Held<Self>> {
        &mut f.slots6
    }
    fn slots_ref(f: &FullNat) -> &[Held<Self>] {
        &f.slots6
    }
    fn local(&self) -> (IpAddr, u16) {
        (
            Ipv6Addr::from(self.daddr).into(),
            u16::from_be_bytes(self.dport),
        )
    }
}

/// A worker's FullNAT state.
#[derive(Default)]
pub struct FullNat {
    pub pools: Pools,
    /// Per slot of the IPv4 flow table: the pair of the flow there, when it is marked
    /// `FLAG_FULLNAT`. Empty until a snapshot has a FullNAT service.
    slots4: Vec<Held<FastKey>>,
    slots6: Vec<Held<FastKey6>>,
    /// Reply entries to write and remove.
    pub ops: ReplyOps,
}

impl FullNat {
    pub fn new(share: Share, start: u64) -> Self {
        FullNat {
            pools: Pools::new(share, start),
            ..FullNat::default()
        }
    }

    /// Takes up a new snapshot's pools; the first with a FullNAT service sizes the
    /// slots to the tables' (`slots4`, `slots6` entries).
    pub fn prepare(&mut self, snap: &Snapshot, slots4: usize, slots6: usize) {
        if snap.has_fullnat() {
            if self.slots4.len() != slots4 {
                self.slots4 = vec![Held::default(); slots4];
            }
            if self.slots6.len() != slots6 {
                self.slots6 = vec![Held::default(); slots6];
            }
        }
        self.pools.prepare(snap);
    }

    /// The flow in slot `index`'s pair and reply key.
    #[inline]
    pub fn held<K: SlotFamily>(&mut self, index: usize) -> Option<Held<K>> {
        K::slots(self).get(index).copied()
    }

    /// The same, from a shared borrow (the resync walk's).
    pub fn held_ref<K: SlotFamily>(&self, index: usize) -> Option<Held<K>> {
        K::slots_ref(self).get(index).copied()
    }

    /// Records that the flow in slot `index` holds `pair`; false if the slots are not
    /// sized for it (a table that grew without a FullNAT snapshot: never).
    #[inline]
    pub fn hold<K: SlotFamily>(&mut self, index: usize, held: Held<K>) -> bool {
        match K::slots(self).get_mut(index) {
            Some(s) => {
                *s = held;
                true
            }
            None => false,
        }
    }

    /// The local pair the flow in slot `index` holds, as connection sync carries it.
    pub fn local_of<K: SlotFamily>(&mut self, index: usize) -> Option<(IpAddr, u16)> {
        self.held::<K>(index).map(|h| h.reply.local())
    }

    /// The flow in slot `index` ended: its pair goes back to its pool and its reply
    /// entry is removed.
    pub fn release<K: SlotFamily>(&mut self, index: usize) {
        if let Some(h) = self.held::<K>(index) {
            self.pools.give_back(h.pair);
            if !h.synced {
                self.ops.remove(h.reply);
            }
        }
    }

    /// A held flow's reply entry names another real server now: the old entry goes and
    /// the slot keeps the new key (unless the copy is a synced one, see `Held`).
    pub fn rekey<K: SlotFamily>(&mut self, index: usize, reply: K) {
        let Some(h) = K::slots(self).get_mut(index) else {
            return;
        };
        if h.reply != reply {
            let old = std::mem::replace(&mut h.reply, reply);
            if !h.synced {
                self.ops.remove(old);
            }
        }
    }
}
