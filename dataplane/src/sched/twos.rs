//! twos: two real servers drawn at random in proportion to their weights; the one with
//! the lower overhead per weight gets the connection.

use super::{effective_weight, PickCtx};
use crate::hash::mix64;
use crate::snapshot::{DestId, Service, Snapshot};

/// The real server covering point `r` of the cumulative weights.
fn draw(svc: &Service, snap: &Snapshot, mut r: u64) -> Option<(DestId, u64)> {
    for &id in &svc.dests {
        let w = u64::from(effective_weight(snap, id));
        if r < w {
            return Some((id, w));
        }
        r -= w;
    }
    None
}

pub fn pick(svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
    let total: u64 = svc
        .dests
        .iter()
        .map(|&id| u64::from(effective_weight(snap, id)))
        .sum();
    if total == 0 {
        return None;
    }
    let (a, wa) = draw(svc, snap, ctx.rand % total)?;
    let (b, wb) = draw(svc, snap, mix64(ctx.rand) % total)?;
    let (oa, ob) = (ctx.counters(a).overhead(), ctx.counters(b).overhead());
    // oa / wa <= ob / wb, cross-multiplied.
    if u128::from(oa) * u128::from(wb) <= u128::from(ob) * u128::from(wa) {
        Some(a)
    } else {
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::picks;
    use crate::snapshot::SchedulerKind::Twos;

    #[test]
    fn follows_weights_when_idle() {
        // With no connections counted the first draw wins ties, so picks follow weights.
        let p = picks(Twos, &[1, 0, 3], 4000);
        let n2 = p.iter().filter(|d| **d == Some(2)).count();
        assert!(p.iter().all(|d| *d != Some(1) && d.is_some()));
        assert!((2700..3300).contains(&n2), "{n2}");
        assert_eq!(picks(Twos, &[0, 0], 1), [None]);
    }
}
