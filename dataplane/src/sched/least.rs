//! lc, wlc, sed and nq: the least-loaded real server by IPVS's formulas. Ties go to the
//! first in the list, as in IPVS.

use super::{effective_weight, PickCtx};
use crate::snapshot::{DestId, Service, Snapshot};

/// Schedulable real servers with their weights.
fn candidates<'a>(
    svc: &'a Service,
    snap: &'a Snapshot,
) -> impl Iterator<Item = (DestId, u64)> + 'a {
    svc.dests
        .iter()
        .map(move |&id| (id, u64::from(effective_weight(snap, id))))
        .filter(|&(_, w)| w > 0)
}

/// The candidate minimising `cost(id) / weight`, compared by cross-multiplying.
fn least_by(svc: &Service, snap: &Snapshot, cost: impl Fn(DestId) -> u64) -> Option<DestId> {
    let mut best: Option<(DestId, u64, u64)> = None;
    for (id, w) in candidates(svc, snap) {
        let c = cost(id);
        match best {
            Some((_, bc, bw))
                if u128::from(bc) * u128::from(w) <= u128::from(c) * u128::from(bw) => {}
            _ => best = Some((id, c, w)),
        }
    }
    best.map(|b| b.0)
}

/// lc: least overhead (active × 256 + inactive), weights only gate (0 = none).
pub(crate) fn lc(svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
    let mut best: Option<(DestId, u64)> = None;
    for (id, _) in candidates(svc, snap) {
        let oh = ctx.counters(id).overhead();
        if best.is_none_or(|(_, b)| oh < b) {
            best = Some((id, oh));
        }
    }
    best.map(|b| b.0)
}

/// wlc: least overhead / weight.
pub fn wlc(svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
    least_by(svc, snap, |id| ctx.counters(id).overhead())
}

/// sed: least (active + 1) / weight: the expected delay if this one got the connection.
pub fn sed(svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
    least_by(svc, snap, |id| ctx.counters(id).active.get() + 1)
}

/// nq: the first idle real server (no active connection), else sed.
pub fn nq(svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
    candidates(svc, snap)
        .map(|(id, _)| id)
        .find(|&id| ctx.counters(id).active.get() == 0)
        .or_else(|| sed(svc, snap, ctx))
}

#[cfg(test)]
mod tests {
    use crate::counters::WorkerCounters;
    use crate::sched::testutil::{key, set_conns, snapshot};
    use crate::sched::{PickCtx, SchedState};
    use crate::snapshot::{SchedulerKind, MAX_DESTS};

    fn pick(kind: SchedulerKind, weights: &[u32], conns: &[(u64, u64)]) -> Option<u32> {
        let snap = snapshot(kind, weights);
        let c = WorkerCounters::new(MAX_DESTS);
        for (i, &(a, ina)) in conns.iter().enumerate() {
            set_conns(&c, i, a, ina);
        }
        let k = key(1);
        let ctx = PickCtx {
            key: &k,
            conns: &c.dests,
            rand: 0,
            now: 1,
        };
        SchedState::new(&snap.services[0], &snap).pick(
            &snap.services[0],
            &snap,
            &snap.tables[0],
            &ctx,
        )
    }

    #[test]
    fn lc_counts_active_256_times_inactive() {
        use SchedulerKind::Lc;
        assert_eq!(pick(Lc, &[1, 1], &[(1, 0), (0, 255)]), Some(1));
        assert_eq!(pick(Lc, &[1, 1], &[(1, 0), (0, 257)]), Some(0));
        assert_eq!(pick(Lc, &[1, 1], &[(0, 0), (0, 0)]), Some(0), "ties: first");
        assert_eq!(
            pick(Lc, &[0, 1], &[(0, 0), (9, 0)]),
            Some(1),
            "weight 0 takes none"
        );
        assert_eq!(
            pick(Lc, &[5, 1], &[(2, 0), (1, 0)]),
            Some(1),
            "lc ignores weights"
        );
    }

    #[test]
    fn wlc_divides_by_weight() {
        use SchedulerKind::Wlc;
        // overheads 512 and 256: per weight 512/3 < 256/1.
        assert_eq!(pick(Wlc, &[3, 1], &[(2, 0), (1, 0)]), Some(0));
        assert_eq!(pick(Wlc, &[1, 1], &[(2, 0), (1, 0)]), Some(1));
        assert_eq!(
            pick(Wlc, &[2, 1], &[(2, 0), (1, 0)]),
            Some(0),
            "equal ratio: first"
        );
        assert_eq!(pick(Wlc, &[0, 0], &[]), None);
    }

    #[test]
    fn sed_and_nq() {
        use SchedulerKind::{Nq, Sed};
        // sed: (2+1)/3 = 1 vs (0+1)/1 = 1 → first; (3+1)/3 > 1/1 → second.
        assert_eq!(pick(Sed, &[3, 1], &[(2, 0), (0, 0)]), Some(0));
        assert_eq!(pick(Sed, &[3, 1], &[(3, 0), (0, 0)]), Some(1));
        // Inactive connections do not count for sed.
        assert_eq!(pick(Sed, &[1, 1], &[(0, 100), (1, 0)]), Some(0));
        // nq: an idle server wins whatever the weights.
        assert_eq!(pick(Nq, &[100, 1], &[(1, 0), (0, 0)]), Some(1));
        assert_eq!(
            pick(Nq, &[3, 1], &[(2, 0), (1, 0)]),
            Some(0),
            "none idle: sed"
        );
    }
}
