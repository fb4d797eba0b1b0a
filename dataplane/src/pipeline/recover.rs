//! Flows a killed xvs left in this worker's state file (`flow::state_file`), taken up at
//! start: each live entry is checked (a service of this snapshot for its destination, a
//! real-server id that is not another service's, a known TCP state) and counted into its
//! real server's gauges as if this process had opened it; anything else is cleared. The
//! NAT mark is cleared, and the fast path's unless its entries were kept at their own
//! generation: the steering program's maps may be new, so a recovered flow's next
//! packet offers it again.

use super::Pipeline;
use crate::counters::WorkerCounters;
use crate::flow::table::{Key, FLAG_FULLNAT, FLAG_NAT_KNOWN, FLAG_OFFLOADED};
use crate::flow::{Flow, FlowKey, FlowKey6, FlowTable, TcpState};
use crate::snapshot::Snapshot;

/// What a recovery found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Connections (and persistence templates) taken up.
    pub flows: u64,
    /// Entries cleared: expired, or naming what this process does not have.
    pub cleared: u64,
}

/// Which service each real-server id of a snapshot belongs to (an id is one service's:
/// control keys them by service and address).
struct Owners(Vec<Option<usize>>);

impl Owners {
    fn of(snap: &Snapshot, len: usize) -> Owners {
        let mut v = vec![None; len];
        for (i, s) in snap.services.iter().enumerate() {
            for &d in &s.dests {
                if let Some(o) = v.get_mut(d as usize) {
                    *o = Some(i);
                }
            }
        }
        Owners(v)
    }

    /// `id` may serve service `svc`: it is that service's, or no service's (a real
    /// server that left, whose flows go as `expire_nodest_conn` says).
    fn fits(&self, id: u32, svc: usize) -> bool {
        self.0
            .get(id as usize)
            .is_some_and(|o| o.is_none_or(|o| o == svc))
    }
}

impl Pipeline {
    /// Takes up what the tables hold from the last process, as of `now` (the table
    /// clock, which the file's epoch continued), against `snap`. Once, before the first
    /// packet. `fast_kept`: the fast path's entries carry on (see `WorkerConfig`).
    pub fn recover(&mut self, snap: &Snapshot, now: u32, fast_kept: bool) -> Recovered {
        let clear = match fast_kept {
            true => FLAG_NAT_KNOWN,
            false => FLAG_OFFLOADED | FLAG_NAT_KNOWN,
        };
        let mut r = Recovered::default();
        let owners = Owners::of(snap, self.counters.dests.len());
        let c = &self.counters;
        recover_table(
            &mut self.tables.v4,
            c,
            &owners,
            (now, clear),
            &mut r,
            |k: &FlowKey| snap.lookup4(k.daddr, k.dport, k.proto & !TEMPLATE_PROTO),
        );
        recover_table(
            &mut self.tables.v6,
            c,
            &owners,
            (now, clear),
            &mut r,
            |k: &FlowKey6| snap.lookup6(k.daddr, k.dport, k.proto & !TEMPLATE_PROTO),
        );
        self.counters.flows_recovered.add(r.flows);
        self.counters.flows_recovery_cleared.add(r.cleared);
        r
    }
}

/// A template's key carries its protocol with this bit set (`family::template_key`).
const TEMPLATE_PROTO: u8 = 0x80;

fn recover_table<K: Key>(
    table: &mut FlowTable<K>,
    counters: &WorkerCounters,
    owners: &Owners,
    // The table clock, and the flags recovered entries lose.
    (now, clear): (u32, u8),
    r: &mut Recovered,
    service: impl Fn(&K) -> Option<usize>,
) {
    for f in table.slots_mut() {
        if !f.occupied() {
            continue;
        }
        let fits = service(&f.key).is_some_and(|svc| owners.fits(f.dest, svc));
        // A FullNAT flow's local pair lives beside the table, not in the file: without
        // it the flow cannot go on (docs/fullnat.md).
        if !fits || !sound(f, now) || f.flags & FLAG_FULLNAT != 0 {
            *f = Flow::default();
            r.cleared += 1;
            continue;
        }
        f.flags &= !clear;
        if !f.is_template() {
            let c = &counters.dests[f.dest as usize];
            if f.tcp_state().is_active() {
                c.active.inc();
            } else {
                c.inactive.inc();
            }
        }
        r.flows += 1;
    }
}

/// Live, and its state byte is a state (a file's bytes are not trusted to be one).
fn sound<K>(f: &Flow<K>, now: u32) -> bool {
    f.expires > now && TcpState::from_u8(f.state) as u8 == f.state
}
