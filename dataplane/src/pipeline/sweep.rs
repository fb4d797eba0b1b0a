//! Expiry: a bounded slice of the flow tables per call, between batches. A flow the
//! fast path carries lives on from its last packet there; the others leave their gauges.

use super::fullnat::release;
use super::sync::send_record;
use super::track::uncount;
use super::{FamilyKey, Pipeline};
use crate::counters::WorkerCounters;
use crate::flow::table::FLAG_OFFLOADED;
use crate::flow::{FlowKey, FlowKey6, FlowTable, Timeouts};
use crate::fullnat::FullNat;
use crate::sync::SyncChannel;
use crate::wire::ipv4::PROTO_TCP;

impl Pipeline {
    /// Reclaims expired flows in the next `buckets` buckets of the table and takes them
    /// out of the connection counts; returns how many buckets it swept (fewer when
    /// FullNAT's reply removals filled up: the worker writes them, the next call goes on).
    pub fn sweep(&mut self, now: u32, buckets: usize) -> usize {
        self.sweep_renewing(now, buckets, |_| None, |_| None)
    }

    /// As `sweep`; a flow the fast path carries is asked about first: `seen(key)` (for
    /// IPv6, `seen6`) is when its last packet went by there (seconds on this clock), and
    /// it lives on from then. The IPv6 table is swept at the same pace: its share of
    /// the same period. It goes a slice at a time, and stops between slices once the
    /// FullNAT removals it queued would not fit another.
    pub fn sweep_renewing(
        &mut self,
        now: u32,
        buckets: usize,
        mut seen: impl FnMut(&FlowKey) -> Option<u32>,
        mut seen6: impl FnMut(&FlowKey6) -> Option<u32>,
    ) -> usize {
        let (b4, b6) = (self.tables.v4.buckets(), self.tables.v6.buckets());
        // Once round the table at most.
        let buckets = buckets.min(b4);
        let sync = self.sync.as_deref();
        let fullnat = &mut self.fullnat;
        let mut done = 0;
        while done < buckets && fullnat.ops.room_for(SLICE_REMOVALS) {
            // A slice's removals fit the room left (one per slot of its buckets).
            let slice = SWEEP_SLICE.min(buckets - done);
            let before6 = (done.saturating_mul(b6)).div_ceil(b4);
            let after6 = ((done + slice).saturating_mul(b6)).div_ceil(b4);
            sweep_table(
                (&mut self.tables.v4, &mut *fullnat),
                &self.counters,
                &self.timeouts,
                sync,
                now,
                slice,
                &mut seen,
            );
            sweep_table(
                (&mut self.tables.v6, &mut *fullnat),
                &self.counters,
                &self.timeouts,
                sync,
                now,
                after6 - before6,
                &mut seen6,
            );
            done += slice;
        }
        done
    }
}

/// Buckets swept between checks of the FullNAT removals' room.
const SWEEP_SLICE: usize = crate::fullnat::MAX_REPLY_OPS / 16;
/// The most removals of one family a slice can queue: a slot each, 8 an IPv4 bucket;
/// IPv6's share of buckets (of 4 slots) is at most twice as many, plus one.
const SLICE_REMOVALS: usize = SWEEP_SLICE * 8 + 4;

/// One table's sweep slice: an expired flow the fast path carries lives on from when
/// `seen` says its last packet went by there; the others leave their gauges.
///
/// With connection sync on, a renewed flow is sent again: its packets go by in XDP, so
/// this is the one place its worker learns that it lives on.
fn sweep_table<K: FamilyKey>(
    // The table, and FullNAT's pairs beside it.
    (table, fullnat): (&mut FlowTable<K>, &mut FullNat),
    counters: &WorkerCounters,
    timeouts: &Timeouts,
    sync: Option<&SyncChannel>,
    now: u32,
    buckets: usize,
    mut seen: impl FnMut(&K) -> Option<u32>,
) {
    table.sweep_renewing(
        now,
        buckets,
        |f| {
            if f.flags & FLAG_OFFLOADED == 0 {
                return None;
            }
            let ttl = if f.key.proto() == PROTO_TCP {
                timeouts.tcp(f.tcp_state())
            } else {
                timeouts.udp
            };
            let until = seen(&f.key).map(|t| t.saturating_add(ttl));
            if let (Some(ch), Some(u)) = (sync, until.filter(|u| *u > now)) {
                // Only DR, TUN and NAT flows take the fast path: no FullNAT pair.
                send_record(ch, counters, f, u - now, None);
            }
            until
        },
        |index, f| {
            if !f.is_template() {
                counters.flows_expired.inc();
                uncount(counters, f);
            }
            release(fullnat, counters, index, f);
        },
    );
}
