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
    /// out of the connection counts.
    pub fn sweep(&mut self, now: u32, buckets: usize) {
        self.sweep_renewing(now, buckets, |_| None, |_| None)
    }

    /// As `sweep`; a flow the fast path carries is asked about first: `seen(key)` (for
    /// IPv6, `seen6`) is when its last packet went by there (seconds on this clock), and
    /// it lives on from then. The IPv6 table is swept at the same pace: its share of
    /// the same period.
    pub fn sweep_renewing(
        &mut self,
        now: u32,
        buckets: usize,
        seen: impl FnMut(&FlowKey) -> Option<u32>,
        seen6: impl FnMut(&FlowKey6) -> Option<u32>,
    ) {
        let (b4, b6) = (self.tables.v4.buckets(), self.tables.v6.buckets());
        let buckets6 = (buckets.saturating_mul(b6)).div_ceil(b4);
        let sync = self.sync.as_deref();
        let fullnat = &mut self.fullnat;
        sweep_table(
            (&mut self.tables.v4, fullnat),
            &self.counters,
            &self.timeouts,
            sync,
            now,
            buckets,
            seen,
        );
        sweep_table(
            (&mut self.tables.v6, fullnat),
            &self.counters,
            &self.timeouts,
            sync,
            now,
            buckets6,
            seen6,
        );
    }
}

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
                // Only DR and TUN flows take the fast path: no FullNAT pair.
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
