//! rr: each schedulable real server in turn.

use super::effective_weight;
use crate::snapshot::{DestId, Service, Snapshot};

#[derive(Clone, Debug, Default)]
pub struct Rr {
    /// Position in `Service::dests` to try first: the one after the last pick.
    next: usize,
}

impl Rr {
    pub fn pick(&mut self, svc: &Service, snap: &Snapshot) -> Option<DestId> {
        let n = svc.dests.len();
        for step in 0..n {
            let i = (self.next + step) % n;
            if effective_weight(snap, svc.dests[i]) > 0 {
                self.next = i + 1;
                return Some(svc.dests[i]);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::picks;
    use crate::snapshot::SchedulerKind::Rr;

    #[test]
    fn cycles_over_schedulable() {
        let p = picks(Rr, &[1, 1, 1], 6);
        assert_eq!(p, [0, 1, 2, 0, 1, 2].map(Some));
        // Weight 0 (quiescent) and unresolved real servers are skipped.
        let p = picks(Rr, &[1, 0, u32::MAX, 5], 4);
        assert_eq!(p, [0, 3, 0, 3].map(Some));
        assert_eq!(picks(Rr, &[0, 0], 2), [None, None]);
        assert_eq!(picks(Rr, &[], 1), [None]);
    }
}
