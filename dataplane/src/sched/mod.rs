//! Schedulers: which real server a new connection goes to. Each worker keeps its own
//! mutable state per service, rebuilt when a new snapshot arrives (never per packet), so
//! picking needs no lock. Semantics follow IPVS's schedulers of the same names.

mod rr;
mod wrr;

pub use rr::Rr;
pub use wrr::Wrr;

use crate::snapshot::{DestId, SchedulerKind, Service, Snapshot};

/// One service's scheduler state in one worker.
#[derive(Clone, Debug)]
pub enum SchedState {
    Rr(Rr),
    Wrr(Wrr),
}

impl SchedState {
    pub fn new(svc: &Service, snap: &Snapshot) -> Self {
        match svc.scheduler {
            SchedulerKind::Rr => SchedState::Rr(Rr::default()),
            SchedulerKind::Wrr => SchedState::Wrr(Wrr::new(svc, snap)),
        }
    }

    /// The real server for a new connection, or `None` when no real server can take one.
    #[inline]
    pub fn pick(&mut self, svc: &Service, snap: &Snapshot) -> Option<DestId> {
        match self {
            SchedState::Rr(s) => s.pick(svc, snap),
            SchedState::Wrr(s) => s.pick(svc, snap),
        }
    }
}

/// The weight a scheduler sees: 0 for a real server that cannot take connections now.
#[inline]
pub(crate) fn effective_weight(snap: &Snapshot, id: DestId) -> u32 {
    snap.dest(id)
        .filter(|d| d.schedulable())
        .map_or(0, |d| d.weight)
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::net::Ipv4Addr;

    use crate::snapshot::*;

    /// A snapshot with one TCP service over real servers of the given weights; a weight
    /// of `u32::MAX` stands for an unresolved MAC (weight 1).
    pub fn snapshot(kind: SchedulerKind, weights: &[u32]) -> Snapshot {
        let dests = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                Some(Dest {
                    addr: Ipv4Addr::new(10, 0, 1, i as u8),
                    port: 80,
                    weight: if w == u32::MAX { 1 } else { w },
                    mac: (w != u32::MAX).then_some([2, 0, 0, 0, 1, i as u8]),
                })
            })
            .collect();
        let svc = Service {
            name: "t".into(),
            key: ServiceKey {
                addr: Ipv4Addr::new(10, 0, 0, 100),
                port: 80,
                proto: 6,
            },
            scheduler: kind,
            forwarding: Forwarding::Dr,
            dests: (0..weights.len() as u32).collect(),
        };
        Snapshot::new(1, [2, 0, 0, 0, 0, 1], vec![svc], dests).unwrap()
    }

    pub fn picks(kind: SchedulerKind, weights: &[u32], n: usize) -> Vec<Option<DestId>> {
        let snap = snapshot(kind, weights);
        let svc = &snap.services[0];
        let mut s = super::SchedState::new(svc, &snap);
        (0..n).map(|_| s.pick(svc, &snap)).collect()
    }
}
