//! lblc and lblcr: a destination address keeps "its" real server (lblc) or set of
//! servers (lblcr) while they are not overloaded, for cache clusters. The cache is per
//! worker, fixed in size and direct-mapped: an address that collides simply replaces the
//! older entry, so memory is bounded whatever the traffic.

use super::{effective_weight, least, PickCtx};
use crate::hash::mix64;
use crate::snapshot::{DestId, Service, Snapshot};

/// Entries per cache.
pub const SLOTS: usize = 1024;
/// lblcr: the most servers one address's set holds.
pub const MAX_SET: usize = 8;
/// lblcr: a set unchanged for this long sheds its most loaded server (IPVS's
/// lblcr_expiration default).
pub const SET_EXPIRY_SECS: u32 = 24 * 60 * 60;

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    daddr: u32,
    used: bool,
    len: u8,
    modified: u32,
    set: [DestId; MAX_SET],
}

#[derive(Clone, Debug)]
pub struct Locality {
    slots: Box<[Entry]>,
    /// 1 for lblc; `MAX_SET` for lblcr.
    max_set: usize,
}

/// IPVS: a server is overloaded when its active connections exceed its weight while
/// some other server is below half its weight.
fn overloaded(svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>, id: DestId) -> bool {
    let a = ctx.counters(id).active.get();
    if a <= u64::from(effective_weight(snap, id)) {
        return false;
    }
    svc.dests
        .iter()
        .any(|&d| ctx.counters(d).active.get() * 2 < u64::from(effective_weight(snap, d)))
}

impl Locality {
    pub fn new(max_set: usize) -> Self {
        Locality {
            slots: vec![Entry::default(); SLOTS].into_boxed_slice(),
            max_set: max_set.clamp(1, MAX_SET),
        }
    }

    pub fn pick(&mut self, svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
        let daddr = ctx.key.daddr;
        let slot = (mix64(u64::from(daddr)) % SLOTS as u64) as usize;
        let e = &mut self.slots[slot];
        if !e.used || e.daddr != daddr {
            let id = least::wlc(svc, snap, ctx)?;
            *e = Entry {
                daddr,
                used: true,
                len: 1,
                modified: ctx.now,
                set: [id; MAX_SET],
            };
            return Some(id);
        }
        // Servers that left or went quiescent leave the set.
        let mut kept = 0;
        for i in 0..usize::from(e.len) {
            if effective_weight(snap, e.set[i]) > 0 {
                e.set[kept] = e.set[i];
                kept += 1;
            }
        }
        e.len = kept as u8;
        // The least loaded member (overhead per weight).
        let load = |id: DestId| {
            (
                u128::from(ctx.counters(id).overhead()),
                u128::from(effective_weight(snap, id)),
            )
        };
        let best = e.set[..kept].iter().copied().min_by(|&a, &b| {
            let ((oa, wa), (ob, wb)) = (load(a), load(b));
            (oa * wb).cmp(&(ob * wa))
        });
        // lblcr: an old set sheds its most loaded member.
        if kept > 1 && ctx.now.saturating_sub(e.modified) > SET_EXPIRY_SECS {
            if let Some(worst) = (0..kept).max_by(|&a, &b| {
                let ((oa, wa), (ob, wb)) = (load(e.set[a]), load(e.set[b]));
                (oa * wb).cmp(&(ob * wa))
            }) {
                e.set[worst] = e.set[kept - 1];
                e.len -= 1;
                e.modified = ctx.now;
            }
        }
        if let Some(id) = best.filter(|&id| !overloaded(svc, snap, ctx, id)) {
            return Some(id);
        }
        // Overloaded (or empty): a fresh least-connection pick joins (lblcr) or replaces
        // (lblc) the set.
        let id = least::wlc(svc, snap, ctx)?;
        let e = &mut self.slots[slot];
        if usize::from(e.len) < self.max_set {
            if !e.set[..usize::from(e.len)].contains(&id) {
                e.set[usize::from(e.len)] = id;
                e.len += 1;
            }
        } else {
            e.set[0] = id;
        }
        e.modified = ctx.now;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use crate::counters::WorkerCounters;
    use crate::sched::testutil::{key, set_conns, snapshot};
    use crate::sched::{PickCtx, SchedState};
    use crate::snapshot::{SchedulerKind, MAX_DESTS};

    #[test]
    fn destination_keeps_its_server_until_overloaded() {
        for kind in [SchedulerKind::Lblc, SchedulerKind::Lblcr] {
            let snap = snapshot(kind, &[4, 4]);
            let svc = &snap.services[0];
            let c = WorkerCounters::new(MAX_DESTS);
            let mut s = SchedState::new(svc, &snap);
            let k = key(1);
            let mut pick = || {
                let ctx = PickCtx {
                    key: &k,
                    conns: &c.dests,
                    rand: 0,
                    now: 1,
                };
                s.pick(svc, &snap, &snap.tables[0], &ctx)
            };
            assert_eq!(pick(), Some(0));
            set_conns(&c, 0, 3, 0);
            assert_eq!(pick(), Some(0), "{kind:?}: still within weight");
            set_conns(&c, 0, 5, 0);
            assert_eq!(pick(), Some(1), "{kind:?}: overloaded while 1 is idle");
        }
    }
}
