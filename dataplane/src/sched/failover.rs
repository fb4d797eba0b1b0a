//! fo and ovf: the heaviest real server first.

use super::{effective_weight, PickCtx};
use crate::snapshot::{DestId, Service, Snapshot};

/// fo: the schedulable real server with the highest weight (the first of equals).
pub fn fo(svc: &Service, snap: &Snapshot) -> Option<DestId> {
    let mut best: Option<(DestId, u32)> = None;
    for &id in &svc.dests {
        let w = effective_weight(snap, id);
        if w > 0 && best.is_none_or(|(_, bw)| w > bw) {
            best = Some((id, w));
        }
    }
    best.map(|b| b.0)
}

/// ovf: the highest weight among those with fewer active connections than their weight
/// (the weight is a connection limit).
pub fn ovf(svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
    let mut best: Option<(DestId, u32)> = None;
    for &id in &svc.dests {
        let w = effective_weight(snap, id);
        if w > 0
            && ctx.counters(id).active.get() < u64::from(w)
            && best.is_none_or(|(_, bw)| w > bw)
        {
            best = Some((id, w));
        }
    }
    best.map(|b| b.0)
}

#[cfg(test)]
mod tests {
    use crate::counters::WorkerCounters;
    use crate::sched::testutil::{key, picks, set_conns, snapshot};
    use crate::sched::{PickCtx, SchedState};
    use crate::snapshot::{SchedulerKind, MAX_DESTS};

    #[test]
    fn fo_takes_the_heaviest_available() {
        assert_eq!(picks(SchedulerKind::Fo, &[1, 5, 5, 3], 3), [Some(1); 3]);
        assert_eq!(picks(SchedulerKind::Fo, &[1, u32::MAX, 3], 1), [Some(2)]);
        assert_eq!(picks(SchedulerKind::Fo, &[0, 0], 1), [None]);
    }

    #[test]
    fn ovf_overflows_at_the_weight() {
        let snap = snapshot(SchedulerKind::Ovf, &[1, 3, 2]);
        let c = WorkerCounters::new(MAX_DESTS);
        let k = key(1);
        let mut s = SchedState::new(&snap.services[0], &snap);
        let mut pick = |active: [u64; 3]| {
            for (i, a) in active.iter().enumerate() {
                set_conns(&c, i, *a, 0);
            }
            let ctx = PickCtx {
                key: &k,
                conns: &c.dests,
                rand: 0,
                now: 1,
            };
            s.pick(&snap.services[0], &snap, &snap.tables[0], &ctx)
        };
        assert_eq!(pick([0, 0, 0]), Some(1));
        assert_eq!(pick([0, 2, 0]), Some(1));
        assert_eq!(pick([0, 3, 0]), Some(2), "full: next heaviest");
        assert_eq!(pick([0, 3, 2]), Some(0));
        assert_eq!(pick([1, 3, 2]), None, "all at their limit");
    }
}
