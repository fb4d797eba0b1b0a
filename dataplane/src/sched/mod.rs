//! Schedulers: which real server a new connection goes to, with IPVS's semantics.
//!
//! Each worker keeps its own mutable state per service (locality caches), rebuilt when a
//! new snapshot arrives, never per packet; lookup tables that depend only on the
//! snapshot (sh/dh buckets, the Maglev table, rr's and wrr's cycle with its shared
//! ticket: exact across workers, `turns.rs`) are built once with it ([`SchedTable`]).
//! Connection counts are the worker's own (see `DestCounters`): lc, wlc, sed and nq
//! balance the connections each worker sees, which RSS spreads evenly; exact per worker,
//! not per virtual server.

mod failover;
mod hashed;
mod least;
mod locality;
mod maglev;
mod rr;
mod turns;
mod twos;
mod wrr;

pub use hashed::Buckets;
pub use locality::Locality;
pub use maglev::Maglev;
pub use rr::Rr;
pub use turns::Turns;
pub use wrr::Wrr;

use crate::counters::DestCounters;
use crate::flow::FlowKey;
use crate::snapshot::{Dest, DestId, SchedulerKind, Service, Snapshot};

/// What a scheduler may look at for one new connection.
pub struct PickCtx<'a> {
    pub key: &'a FlowKey,
    /// This worker's per-real-server counters, indexed by `DestId`.
    pub conns: &'a [DestCounters],
    /// A fresh random number (twos).
    pub rand: u64,
    /// Seconds, the worker's clock (lblcr's set aging).
    pub now: u32,
}

impl PickCtx<'_> {
    #[inline]
    pub(crate) fn counters(&self, id: DestId) -> &DestCounters {
        &self.conns[id as usize]
    }
}

/// Per-service tables that depend only on the snapshot.
#[derive(Clone, Debug)]
pub enum SchedTable {
    None,
    Buckets(Buckets),
    Maglev(Maglev),
    /// rr and wrr: the cycle every worker takes its turns from.
    Turns(Turns),
}

impl SchedTable {
    pub fn build(svc: &Service, dests: &[Option<Dest>]) -> Self {
        match svc.scheduler {
            SchedulerKind::Sh => SchedTable::Buckets(Buckets::weighted(svc, dests)),
            SchedulerKind::Dh => SchedTable::Buckets(Buckets::unweighted(svc)),
            SchedulerKind::Mh => SchedTable::Maglev(Maglev::build(svc, dests, svc.mh_table_size)),
            SchedulerKind::Rr | SchedulerKind::Wrr => turns(svc, dests),
            _ => SchedTable::None,
        }
    }
}

/// One service's scheduler state in one worker.
#[derive(Clone, Debug)]
pub enum SchedState {
    Rr(Rr),
    Wrr(Wrr),
    Locality(Box<Locality>),
    /// Schedulers with no per-worker state.
    Stateless,
}

impl SchedState {
    pub fn new(svc: &Service, snap: &Snapshot) -> Self {
        match svc.scheduler {
            SchedulerKind::Rr => SchedState::Rr(Rr::default()),
            SchedulerKind::Wrr => SchedState::Wrr(Wrr::new(svc, snap)),
            SchedulerKind::Lblc => SchedState::Locality(Box::new(Locality::new(1))),
            SchedulerKind::Lblcr => {
                SchedState::Locality(Box::new(Locality::new(locality::MAX_SET)))
            }
            _ => SchedState::Stateless,
        }
    }

    /// The real server for a new connection, or `None` when none can take it.
    #[inline]
    pub fn pick(
        &mut self,
        svc: &Service,
        snap: &Snapshot,
        table: &SchedTable,
        ctx: &PickCtx<'_>,
    ) -> Option<DestId> {
        use SchedulerKind::*;
        match (svc.scheduler, self, table) {
            (Rr | Wrr, _, SchedTable::Turns(t)) => t.next(),
            (Rr, SchedState::Rr(s), _) => s.pick(svc, snap),
            (Wrr, SchedState::Wrr(s), _) => s.pick(svc, snap),
            (Lc, ..) => least::lc(svc, snap, ctx),
            (Wlc, ..) => least::wlc(svc, snap, ctx),
            (Sed, ..) => least::sed(svc, snap, ctx),
            (Nq, ..) => least::nq(svc, snap, ctx),
            (Sh, _, SchedTable::Buckets(b)) => b.pick_source(svc, snap, ctx),
            (Dh, _, SchedTable::Buckets(b)) => b.pick_destination(snap, ctx),
            (Mh, _, SchedTable::Maglev(m)) => m.pick(svc, snap, ctx),
            (Lblc | Lblcr, SchedState::Locality(l), _) => l.pick(svc, snap, ctx),
            (Fo, ..) => failover::fo(svc, snap),
            (Ovf, ..) => failover::ovf(svc, snap, ctx),
            (Twos, ..) => twos::pick(svc, snap, ctx),
            // State or table of another kind: the snapshot changed under a worker that
            // has not prepared for it. Never happens; refusing is safe.
            _ => None,
        }
    }
}

/// rr's and wrr's shared cycle; None (each worker its own turns) when wrr's is too long.
fn turns(svc: &Service, dests: &[Option<Dest>]) -> SchedTable {
    let weights: Vec<u32> = svc
        .members(dests)
        .map(|(_, d)| d.filter(|d| d.schedulable()).map_or(0, |d| d.weight))
        .collect();
    let positions: Option<Vec<usize>> = match svc.scheduler {
        SchedulerKind::Rr => Some((0..weights.len()).filter(|&i| weights[i] > 0).collect()),
        _ => wrr::cycle(&weights, turns::MAX_CYCLE),
    };
    match positions {
        Some(p) => SchedTable::Turns(Turns::new(p.into_iter().map(|i| svc.dests[i]).collect())),
        None => SchedTable::None,
    }
}

/// The weight a scheduler sees: 0 for a real server that cannot take connections now.
#[inline]
pub(crate) fn effective_weight(snap: &Snapshot, id: DestId) -> u32 {
    snap.dest(id)
        .filter(|d| d.schedulable())
        .map_or(0, |d| d.weight)
}

/// A real server that can carry packets at all (present, MAC known), whatever its weight.
#[inline]
pub fn reachable(snap: &Snapshot, id: DestId) -> bool {
    snap.dest(id).is_some_and(|d| d.mac.is_some())
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::net::Ipv4Addr;

    use super::PickCtx;
    use crate::counters::WorkerCounters;
    use crate::flow::FlowKey;
    use crate::snapshot::*;

    /// A snapshot with one TCP service over real servers of the given weights; a weight
    /// of `u32::MAX` stands for an unresolved MAC (weight 1).
    pub fn snapshot(kind: SchedulerKind, weights: &[u32]) -> Snapshot {
        snapshot_with(kind, weights, SchedFlags::default())
    }

    pub fn snapshot_with(kind: SchedulerKind, weights: &[u32], flags: SchedFlags) -> Snapshot {
        let dests = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                Some(Dest {
                    addr: Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8).into(),
                    port: 80,
                    weight: if w == u32::MAX { 1 } else { w },
                    mac: (w != u32::MAX).then_some([2, 0, 0, 0, 1, i as u8]),
                })
            })
            .collect();
        let key = ServiceKey {
            addr: Ipv4Addr::new(10, 0, 0, 100).into(),
            port: 80,
            proto: 6,
        };
        let mut svc = Service::new(
            "t",
            key,
            kind,
            Forwarding::Dr,
            (0..weights.len() as u32).collect(),
        );
        svc.sched_flags = flags;
        svc.mh_table_size = 4093;
        Snapshot::new(1, [2, 0, 0, 0, 0, 1], vec![svc], dests).unwrap()
    }

    pub fn key(i: u32) -> FlowKey {
        FlowKey::new(
            0x0b00_0000 + i,
            0x0a00_0064,
            1024 + (i % 50000) as u16,
            80,
            6,
        )
    }

    /// Picks for `n` new connections of distinct clients, with no connection counted.
    pub fn picks(kind: SchedulerKind, weights: &[u32], n: usize) -> Vec<Option<DestId>> {
        let snap = snapshot(kind, weights);
        let counters = WorkerCounters::new(MAX_DESTS);
        let svc = &snap.services[0];
        let mut s = super::SchedState::new(svc, &snap);
        (0..n as u32)
            .map(|i| {
                let k = key(i);
                let ctx = PickCtx {
                    key: &k,
                    conns: &counters.dests,
                    rand: crate::hash::mix64(u64::from(i)),
                    now: 1,
                };
                s.pick(svc, &snap, &snap.tables[0], &ctx)
            })
            .collect()
    }

    /// Sets the worker's active/inactive gauges of real server `id`.
    pub fn set_conns(c: &WorkerCounters, id: usize, active: u64, inactive: u64) {
        let d = &c.dests[id];
        d.active.add(active.wrapping_sub(d.active.get()));
        d.inactive.add(inactive.wrapping_sub(d.inactive.get()));
    }
}
