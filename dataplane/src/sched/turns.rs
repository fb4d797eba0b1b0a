//! rr and wrr exact across workers: the snapshot holds the service's whole cycle (the
//! real servers in IPVS's order, one turn each, a real server of weight w w times for
//! wrr) and one shared ticket; each new connection, on whichever worker, takes the next
//! ticket (one relaxed `fetch_add` on a line of its own) and the cycle's entry at it.
//! Every worker's connections together then follow IPVS's sequence for the virtual
//! server, as one kernel's would. Cost, measured in `make bench` (`sched_shared`): one
//! contended atomic per new connection, none per packet.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::snapshot::DestId;

/// Longest cycle kept (wrr: the weights' sum over their gcd); a longer one leaves each
/// worker its own wrr state (exact per worker only).
pub const MAX_CYCLE: usize = 1 << 16;

/// The ticket, alone on its cache lines: its neighbours are never written by others.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Ticket(AtomicU64);

#[derive(Clone, Debug)]
pub struct Turns {
    cycle: Box<[DestId]>,
    ticket: Arc<Ticket>,
}

impl Turns {
    pub fn new(cycle: Vec<DestId>) -> Turns {
        Turns {
            cycle: cycle.into_boxed_slice(),
            ticket: Arc::default(),
        }
    }

    /// The real server the next turn will give, without taking it (`xvs explain` looks;
    /// only a new connection moves the turns).
    pub fn peek(&self) -> Option<DestId> {
        let t = self.ticket.0.load(Relaxed);
        self.cycle
            .get((t % self.cycle.len().max(1) as u64) as usize)
            .copied()
    }

    /// The real server of the next turn; None when none is schedulable.
    #[inline]
    pub fn next(&self) -> Option<DestId> {
        if self.cycle.is_empty() {
            return None;
        }
        let t = self.ticket.0.fetch_add(1, Relaxed);
        Some(self.cycle[(t % self.cycle.len() as u64) as usize])
    }
}

#[cfg(test)]
mod tests {
    use crate::counters::WorkerCounters;
    use crate::sched::testutil::{key, snapshot};
    use crate::sched::{PickCtx, SchedState};
    use crate::snapshot::{SchedulerKind, MAX_DESTS};

    /// Two workers taking new connections in turn, three in a row, then the other:
    /// together they follow IPVS's sequence.
    fn together(kind: SchedulerKind, weights: &[u32], n: usize) -> Vec<u32> {
        let snap = snapshot(kind, weights);
        let svc = &snap.services[0];
        let counters = WorkerCounters::new(MAX_DESTS);
        let mut workers = [SchedState::new(svc, &snap), SchedState::new(svc, &snap)];
        (0..n)
            .map(|i| {
                let k = key(i as u32);
                let ctx = PickCtx {
                    key: &k,
                    conns: &counters.dests,
                    rand: 0,
                    now: 1,
                };
                workers[(i / 3) % 2]
                    .pick(svc, &snap, &snap.tables[0], &ctx)
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn rr_and_wrr_are_exact_over_every_worker() {
        assert_eq!(
            together(SchedulerKind::Rr, &[1, 1, 1], 6),
            [0, 1, 2, 0, 1, 2]
        );
        // Unschedulable ones take no turn.
        assert_eq!(
            together(SchedulerKind::Rr, &[1, 0, u32::MAX, 5], 4),
            [0, 3, 0, 3]
        );
        assert_eq!(
            together(SchedulerKind::Wrr, &[3, 2, 1], 12),
            [0, 0, 1, 0, 1, 2, 0, 0, 1, 0, 1, 2]
        );
        assert_eq!(together(SchedulerKind::Wrr, &[4, 2], 6), [0, 0, 1, 0, 0, 1]);
    }
}
