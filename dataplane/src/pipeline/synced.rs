//! Connection sync inside the pipeline: installing the peers' entries in this worker's
//! tables, and walking the tables for a peer's resync. Both run between batches, a
//! bounded amount per call, so a burst of synced entries never holds up a queue.

use super::track::uncount;
use super::{FamilyKey, Pipeline};
use crate::flow::table::{
    FLAG_FULLNAT, FLAG_NAT_KNOWN, FLAG_OFFLOADED, FLAG_PAIR_BORROWED, FLAG_TEMPLATE, FLAG_TOA_ACKED,
};
use crate::flow::{Flow, FlowKey, FlowKey6};
use crate::fullnat::SlotFamily;
use crate::snapshot::{Forwarding, Snapshot};
use crate::sync::record::RECEIVED_GRACE_SECS;
use crate::sync::{SyncKey, SyncRecord};

/// Where a resync walk of this worker's tables stands.
#[derive(Debug, Default)]
pub struct ResyncCursor {
    /// The walk under way (`SyncChannel::ask_walk`'s number), 0 for none...
    walk: u64,
    /// ...and the last one finished.
    done: u64,
    /// Next bucket: IPv4's table first, then IPv6's.
    bucket: usize,
    v6: bool,
}

impl ResyncCursor {
    pub fn busy(&self) -> bool {
        self.walk != 0
    }

    /// Nothing to do: no walk under way, and `asked` (the last one asked for) done.
    pub fn idle(&self, asked: u64) -> bool {
        self.walk == 0 && self.done == asked
    }
}

impl Pipeline {
    /// Installs at most `max` of the entries the sync thread received; returns how many
    /// it took off the queue. An entry whose real server `snap` does not have is counted
    /// stale and left out (the peer's configuration differs, or it just changed).
    pub fn install_synced(&mut self, snap: &Snapshot, now: u32, max: usize) -> usize {
        let Some(ch) = self.sync.clone() else {
            return 0;
        };
        // A backup may have had no packet yet: its state for this snapshot (FullNAT's
        // pools among it) is readied here as a batch would.
        self.prepare(snap);
        let mut n = 0;
        // A turn stops when the NAT connections to tell (or FullNAT's reply entries) are
        // full: the worker writes them, and the next turn goes on.
        while n < max && !self.nat_conns.is_full() && !self.fullnat.ops.is_full() {
            let Some(rec) = ch.inbound.pop() else { break };
            n += 1;
            if snap.dest(rec.dest).is_none() || rec.dest as usize >= self.counters.dests.len() {
                self.counters.sync_install_stale.inc();
                continue;
            }
            match rec.key {
                SyncKey::V4(k) => self.install_nat_aware::<FlowKey>(snap, k, &rec, now),
                SyncKey::V6(k) => self.install_nat_aware::<FlowKey6>(snap, k, &rec, now),
            }
            self.counters.sync_installed.inc();
        }
        n
    }

    /// Installs `rec`; a NAT connection's replies are told to the steering program too,
    /// so that this director translates them the moment it takes over.
    fn install_nat_aware<K: FamilyKey>(
        &mut self,
        snap: &Snapshot,
        key: K,
        rec: &SyncRecord,
        now: u32,
    ) {
        let index = self.install_one(key, rec, now);
        if rec.template {
            return;
        }
        let Some(svc) = key.service(snap) else {
            return;
        };
        let Some(d) = snap.dest(rec.dest) else {
            return;
        };
        if d.addr.is_ipv6() != K::IS_V6 {
            return;
        }
        let rport = if d.port == 0 { key.ports().1 } else { d.port };
        let ends = (d.addr, rport);
        match (snap.services[svc].forwarding, rec.local) {
            (Forwarding::Nat, _) => self.know_nat(Some(index), &key, d.addr, rport),
            (Forwarding::FullNat, Some(local))
                if !self.install_fullnat(snap, index, &key, rec.dest, ends, local) =>
            {
                // No pair here for it: the connection cannot go on from this director.
                let f = *K::table(&self.tables).get(index);
                self.forget(index, &f);
                self.counters.sync_install_stale.inc();
            }
            _ => {}
        }
    }

    /// The peer's word is the entry's: it forwarded the flow's last packet. The entry is
    /// marked sent now, so this director does not echo it back. Returns its slot.
    fn install_one<K: FamilyKey>(&mut self, key: K, rec: &SyncRecord, now: u32) -> usize {
        let expires = now
            .saturating_add(rec.timeout.max(1))
            .saturating_add(RECEIVED_GRACE_SECS);
        let flags = if rec.template { FLAG_TEMPLATE } else { 0 };
        let found = K::table(&self.tables).lookup(&key, now);
        let index = match found {
            Ok(i) => {
                let old = *K::table(&self.tables).get(i);
                if !old.is_template() {
                    uncount(&self.counters, &old);
                }
                if old.dest != rec.dest {
                    // Its replies come from another real server now: told anew.
                    K::table_mut(&mut self.tables).get_mut(i).flags &= !FLAG_NAT_KNOWN;
                }
                if old.dest != rec.dest && old.flags & FLAG_OFFLOADED != 0 {
                    // The fast path would send it to the old server.
                    self.take_back(&old);
                    K::table_mut(&mut self.tables).get_mut(i).flags &= !FLAG_OFFLOADED;
                }
                i
            }
            Err(slot) => {
                self.reclaim::<K>(slot);
                K::table_mut(&mut self.tables).insert(
                    slot,
                    Flow {
                        key,
                        flags,
                        ..Flow::default()
                    },
                );
                slot.index
            }
        };
        let f = K::table_mut(&mut self.tables).get_mut(index);
        f.dest = rec.dest;
        f.state = if rec.template { 0 } else { rec.state };
        f.expires = expires;
        f.template_seen = now;
        f.synced = now as u16;
        // A FullNAT flow's pair stays marked: given back (or taken over) only through
        // `release` and `install_fullnat`, or it would leak.
        let kept =
            FLAG_OFFLOADED | FLAG_NAT_KNOWN | FLAG_FULLNAT | FLAG_PAIR_BORROWED | FLAG_TOA_ACKED;
        f.flags = (f.flags & kept) | flags;
        if !rec.template {
            let f = *f;
            let c = &self.counters.dests[f.dest as usize];
            if f.tcp_state().is_active() {
                c.active.inc();
            } else {
                c.inactive.inc();
            }
        }
        index
    }

    /// Goes on with the resync walk the sync thread asked for (if any): puts the live
    /// entries of at most `max_buckets` buckets in the bulk queue, stopping early when it
    /// is full (the sync thread sends it at its pace). Returns true while a walk is under
    /// way.
    pub fn resync_walk(&mut self, cursor: &mut ResyncCursor, now: u32, max_buckets: usize) -> bool {
        let Some(ch) = self.sync.clone() else {
            return false;
        };
        if cursor.walk == 0 {
            let asked = ch.walk_asked();
            if asked == cursor.done {
                return false;
            }
            *cursor = ResyncCursor {
                walk: asked,
                done: cursor.done,
                bucket: 0,
                v6: false,
            };
        }
        let mut budget = max_buckets;
        while budget > 0 {
            let (buckets, pushed) = if cursor.v6 {
                walk_table::<FlowKey6>(self, cursor.bucket, budget, now)
            } else {
                walk_table::<FlowKey>(self, cursor.bucket, budget, now)
            };
            cursor.bucket += buckets;
            budget -= buckets.min(budget);
            self.counters.sync_walked.add(pushed);
            let total = if cursor.v6 {
                self.tables.v6.buckets()
            } else {
                self.tables.v4.buckets()
            };
            if cursor.bucket >= total {
                if cursor.v6 {
                    ch.finish_walk(cursor.walk);
                    cursor.done = cursor.walk;
                    cursor.walk = 0;
                    return false;
                }
                cursor.v6 = true;
                cursor.bucket = 0;
            } else if buckets == 0 {
                // The bulk queue is full: go on next time.
                break;
            }
        }
        true
    }
}

/// Puts the live entries of buckets `first..` (at most `max` buckets) of one table in the
/// bulk queue, a bucket at a time and only a whole bucket: returns (buckets done,
/// entries queued).
fn walk_table<K: FamilyKey>(p: &Pipeline, first: usize, max: usize, now: u32) -> (usize, u64) {
    let Some(ch) = p.sync.as_deref() else {
        return (0, 0);
    };
    let table = K::table(&p.tables);
    let mut done = 0;
    let mut pushed = 0;
    while done < max && first + done < table.buckets() {
        if ch.bulk.capacity() - ch.bulk.len() < K::WAYS {
            break;
        }
        for (index, f) in table.iter_live_slots(first + done, 1, now) {
            let local = if f.flags & FLAG_FULLNAT != 0 {
                p.fullnat
                    .held_ref::<K::Fast>(index)
                    .map(|h| h.reply.local())
            } else {
                None
            };
            let rec = SyncRecord {
                key: f.key.sync_key(),
                dest: f.dest,
                state: f.state,
                template: f.is_template(),
                timeout: f.expires - now,
                local,
            };
            // Room was checked: only this worker pushes to its bulk queue.
            if ch.bulk.push(rec).is_ok() {
                pushed += 1;
            }
        }
        done += 1;
    }
    (done, pushed)
}
