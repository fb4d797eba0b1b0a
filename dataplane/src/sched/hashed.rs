//! sh and dh: a 256-bucket table of real servers, indexed by a hash of the client's
//! address (sh, optionally with its port) or of the packet's destination address (dh).
//! sh fills buckets in proportion to weights; dh gives each real server its turn.

use super::{effective_weight, reachable, PickCtx};
use crate::hash::mix64;
use crate::snapshot::{Dest, DestId, Service, Snapshot};

pub const BUCKETS: usize = 256;
const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub struct Buckets {
    /// Real server per bucket, or `NONE` when the service has none.
    table: Box<[DestId; BUCKETS]>,
}

fn hash(addr: u32, port: u16, offset: u32) -> usize {
    (mix64((u64::from(addr) << 32) | (u64::from(port) << 8) ^ u64::from(offset) << 24)
        % BUCKETS as u64) as usize
}

impl Buckets {
    /// sh: each real server takes `weight` consecutive buckets in turn (at least one, so a
    /// quiescent server keeps its place: its clients are refused or fall back, as in IPVS).
    pub fn weighted(svc: &Service, dests: &[Option<Dest>]) -> Self {
        let mut table = Box::new([NONE; BUCKETS]);
        if !svc.dests.is_empty() {
            let (mut i, mut count) = (0usize, 0u32);
            for slot in table.iter_mut() {
                let id = svc.dests[i];
                *slot = id;
                count += 1;
                let w = dests
                    .get(id as usize)
                    .and_then(Option::as_ref)
                    .map_or(0, |d| d.weight);
                if count >= w.max(1) {
                    i = (i + 1) % svc.dests.len();
                    count = 0;
                }
            }
        }
        Buckets { table }
    }

    /// dh: real servers in turn, weights ignored.
    pub fn unweighted(svc: &Service) -> Self {
        let mut table = Box::new([NONE; BUCKETS]);
        if !svc.dests.is_empty() {
            for (i, slot) in table.iter_mut().enumerate() {
                *slot = svc.dests[i % svc.dests.len()];
            }
        }
        Buckets { table }
    }

    fn usable(snap: &Snapshot, id: DestId) -> bool {
        id != NONE && effective_weight(snap, id) > 0
    }

    pub fn pick_source(&self, svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
        let port = if svc.sched_flags.port {
            ctx.key.sport
        } else {
            0
        };
        let id = self.table[hash(ctx.key.saddr, port, 0)];
        if Self::usable(snap, id) {
            return Some(id);
        }
        if !svc.sched_flags.fallback {
            return None;
        }
        // sh-fallback: rehash with growing offsets until a usable server answers.
        (1..BUCKETS as u32)
            .map(|off| self.table[hash(ctx.key.saddr, port, off)])
            .find(|&id| Self::usable(snap, id))
            .or_else(|| {
                self.table
                    .iter()
                    .copied()
                    .find(|&id| Self::usable(snap, id))
            })
    }

    pub fn pick_destination(&self, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
        let id = self.table[hash(ctx.key.daddr, 0, 0)];
        (Self::usable(snap, id) && reachable(snap, id)).then_some(id)
    }

    pub fn table(&self) -> &[DestId] {
        &self.table[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testutil::{picks, snapshot, snapshot_with};
    use crate::snapshot::{SchedFlags, SchedulerKind::*};

    #[test]
    fn sh_buckets_follow_weights() {
        let snap = snapshot(Sh, &[3, 1]);
        let b = Buckets::weighted(&snap.services[0], &snap.dests);
        let zeros = b.table().iter().filter(|&&d| d == 0).count();
        assert_eq!(zeros, 192, "3:1 of 256");
        let snap = snapshot(Dh, &[3, 1]);
        let b = Buckets::unweighted(&snap.services[0]);
        assert_eq!(b.table().iter().filter(|&&d| d == 0).count(), 128);
    }

    #[test]
    fn sh_is_sticky_per_client_and_spreads_clients() {
        let p = picks(Sh, &[1, 1, 1], 3000);
        for d in 0..3 {
            let n = p.iter().filter(|x| **x == Some(d)).count();
            assert!((700..1300).contains(&n), "{d}: {n}");
        }
        assert_eq!(
            picks(Sh, &[1, 1, 1], 50),
            picks(Sh, &[1, 1, 1], 50),
            "deterministic"
        );
    }

    #[test]
    fn sh_fallback_only_when_asked() {
        // Real server 1 quiescent: its clients are refused without the flag...
        let p = picks(Sh, &[1, 0], 200);
        assert!(p.contains(&None) && !p.contains(&Some(1)));
        // ...and go elsewhere with it.
        let snap = snapshot_with(
            Sh,
            &[1, 0],
            SchedFlags {
                port: false,
                fallback: true,
            },
        );
        let svc = &snap.services[0];
        let c = crate::counters::WorkerCounters::new(16);
        for i in 0..200 {
            let k = crate::sched::testutil::key(i);
            let ctx = PickCtx {
                key: &k,
                conns: &c.dests,
                rand: 0,
                now: 1,
            };
            assert_eq!(
                crate::sched::SchedState::new(svc, &snap).pick(svc, &snap, &snap.tables[0], &ctx),
                Some(0)
            );
        }
    }

    #[test]
    fn dh_hashes_the_destination() {
        // All test keys share one destination: one server gets them all.
        let p = picks(Dh, &[1, 1, 1], 20);
        assert!(p.iter().all(|d| *d == p[0] && d.is_some()));
        assert_eq!(picks(Dh, &[], 1), [None]);
    }
}
