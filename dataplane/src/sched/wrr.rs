//! wrr: IPVS's interleaved weighted round robin. With weights 3:2:1 the sequence is
//! A A B A B C: the current weight `cw` steps down by the weights' gcd on each pass, and a
//! real server is picked when its weight is at least `cw`.

use super::effective_weight;
use crate::snapshot::{DestId, Service, Snapshot};

#[derive(Clone, Debug)]
pub struct Wrr {
    /// Position in `Service::dests` of the last pick.
    i: usize,
    cw: i64,
    max_weight: i64,
    gcd: i64,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Wrr {
    pub fn new(svc: &Service, snap: &Snapshot) -> Self {
        Self::of(
            svc.dests.iter().map(|&id| effective_weight(snap, id)),
            svc.dests.len(),
        )
    }

    /// The state before the first pick among `n` real servers of these weights.
    fn of(weights: impl Iterator<Item = u32>, n: usize) -> Self {
        let (max, g) = weights.fold((0, 0), |(m, g), w| (m.max(w), gcd(g, w)));
        Wrr {
            // The first step wraps to position 0 and starts a pass at cw = max.
            i: n.saturating_sub(1),
            cw: 0,
            max_weight: i64::from(max),
            gcd: i64::from(g.max(1)),
        }
    }

    pub fn pick(&mut self, svc: &Service, snap: &Snapshot) -> Option<DestId> {
        let i = self.step(svc.dests.len(), |i| effective_weight(snap, svc.dests[i]))?;
        Some(svc.dests[i])
    }

    /// The position of the next pick among `n` real servers weighing `weight(i)`.
    fn step(&mut self, n: usize, weight: impl Fn(usize) -> u32) -> Option<usize> {
        if self.max_weight == 0 || n == 0 {
            return None;
        }
        // Within one pass some weight >= cw exists or the pass ends; the next pass starts
        // at cw = max, which the heaviest real server meets. So 2n steps always suffice.
        for _ in 0..2 * n + 1 {
            self.i = (self.i + 1) % n;
            if self.i == 0 {
                self.cw -= self.gcd;
                if self.cw <= 0 {
                    self.cw = self.max_weight;
                }
            }
            if i64::from(weight(self.i)) >= self.cw {
                return Some(self.i);
            }
        }
        None
    }
}

/// One whole cycle of IPVS's wrr over these weights, as positions (its length: the
/// weights' sum over their gcd); None when longer than `cap`, or when walking it would
/// take more than `cap` × 16 steps (a pass visits every real server for each of the
/// heaviest weight's turns: one heavy weight among many light ones).
pub fn cycle(weights: &[u32], cap: usize) -> Option<Vec<usize>> {
    let g = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    let len = weights.iter().map(|&w| u64::from(w / g)).sum::<u64>();
    let max = weights.iter().map(|&w| u64::from(w / g)).max().unwrap_or(0);
    let steps = max.saturating_mul(weights.len() as u64);
    if len > cap as u64 || steps > cap as u64 * 16 {
        return None;
    }
    let mut w = Wrr::of(weights.iter().copied(), weights.len());
    (0..len)
        .map(|_| w.step(weights.len(), |i| weights[i]))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::picks;
    use crate::snapshot::SchedulerKind::Wrr;
    use proptest::prelude::*;

    #[test]
    fn interleaves_like_ipvs() {
        assert_eq!(picks(Wrr, &[3, 2, 1], 6), [0, 0, 1, 0, 1, 2].map(Some));
        assert_eq!(picks(Wrr, &[4, 2], 6), [0, 0, 1, 0, 0, 1].map(Some));
        assert_eq!(picks(Wrr, &[0, 0], 1), [None]);
        assert_eq!(picks(Wrr, &[2, 0, u32::MAX], 3), [0, 0, 0].map(Some));
    }

    #[test]
    fn a_cycle_too_long_or_too_slow_to_walk_is_not_built() {
        use super::cycle;
        assert_eq!(cycle(&[3, 2, 1], 16), Some(vec![0, 0, 1, 0, 1, 2]));
        assert_eq!(cycle(&[4, 2], 16), Some(vec![0, 0, 1]));
        assert_eq!(cycle(&[10, 10], 1), None, "longer than the cap");
        // Short enough (65536) but some 800 million steps to walk.
        let mut heavy = vec![1u32; 16383];
        heavy.push(49153);
        assert_eq!(cycle(&heavy, 1 << 16), None);
        assert_eq!(cycle(&[], 16), Some(vec![]));
    }

    proptest! {
        // Over whole cycles each real server gets exactly its weight's share.
        #[test]
        fn exact_shares(weights in proptest::collection::vec(0u32..20, 1..8), cycles in 1usize..4) {
            let total: u32 = weights.iter().sum();
            prop_assume!(total > 0);
            let p = picks(Wrr, &weights, total as usize * cycles);
            let mut got = vec![0u32; weights.len()];
            for id in p {
                got[id.unwrap() as usize] += 1;
            }
            let want: Vec<u32> = weights.iter().map(|w| w * cycles as u32).collect();
            prop_assert_eq!(got, want);
        }
    }
}
