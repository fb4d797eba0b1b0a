//! mh: Maglev consistent hashing (Eisenbud et al., NSDI 2016) with weights, as IPVS's
//! ip_vs_mh: each real server walks its own permutation of a prime-sized table and claims
//! free slots, `weight / gcd` of them per round. Removing one of N servers remaps about
//! 1/N of the clients. Hashes are our own (stable across Rust releases and hosts), so
//! every director of a pair builds the same table from the same configuration.

use std::net::IpAddr;

use super::{effective_weight, PickCtx};
use crate::hash::mix64;
use crate::snapshot::{Dest, DestId, Service, Snapshot};

const EMPTY: u32 = u32::MAX;
const SEED_OFFSET: u64 = 0x6d61_676c_6576_3031;
const SEED_SKIP: u64 = 0x6d61_676c_6576_3032;
const SEED_LOOKUP: u64 = 0x6d61_676c_6576_3033;

#[derive(Clone, Debug)]
pub struct Maglev {
    /// Real server id per slot (`EMPTY` when the service has no weighted server).
    table: Box<[DestId]>,
}

fn dest_hash(d: &Dest, seed: u64) -> u64 {
    match d.addr {
        IpAddr::V4(a) => mix64((u64::from(u32::from(a)) << 16 | u64::from(d.port)) ^ seed),
        IpAddr::V6(a) => {
            let a = u128::from(a);
            mix64(mix64(a as u64 ^ seed) ^ (a >> 64) as u64 ^ u64::from(d.port) << 48)
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Maglev {
    /// Builds the table over the service's real servers of weight > 0. `size` should be a
    /// prime (the configuration checks); any size ≥ 1 still yields a full table.
    pub fn build(svc: &Service, dests: &[Option<Dest>], size: u32) -> Self {
        let m = size.max(1) as u64;
        let mut members: Vec<(DestId, &Dest)> = svc
            .members(dests)
            .filter_map(|(id, d)| d.map(|d| (id, d)))
            .filter(|(_, d)| d.weight > 0)
            .collect();
        // Filled in the real servers' order, not their ids' (which depend on a process's
        // history): directors behind ECMP with the same configuration build the same
        // table, so a flow moved between them reaches the same real server.
        members.sort_by_key(|(_, d)| (d.addr, d.port));
        let mut table = vec![EMPTY; m as usize].into_boxed_slice();
        if members.is_empty() {
            return Maglev { table };
        }
        let g = members.iter().fold(0, |g, (_, d)| gcd(g, d.weight));
        // Turns per round; bounded so one heavy server cannot take whole rounds alone.
        let max_turns = members.iter().map(|(_, d)| d.weight / g).max().unwrap_or(1);
        let shift = (32 - max_turns.leading_zeros()).saturating_sub(8);
        let turns: Vec<u64> = members
            .iter()
            .map(|(_, d)| u64::from(((d.weight / g) >> shift).max(1)))
            .collect();
        let offset: Vec<u64> = members
            .iter()
            .map(|(_, d)| dest_hash(d, SEED_OFFSET) % m)
            .collect();
        let skip: Vec<u64> = members
            .iter()
            .map(|(_, d)| {
                if m > 1 {
                    dest_hash(d, SEED_SKIP) % (m - 1) + 1
                } else {
                    1
                }
            })
            .collect();
        let mut next = vec![0u64; members.len()];
        let mut filled = 0u64;
        'fill: loop {
            for i in 0..members.len() {
                for _ in 0..turns[i] {
                    // Each permutation visits every slot (m prime, 0 < skip < m), so this
                    // ends: a free slot exists while filled < m.
                    let mut c = (offset[i] + next[i] * skip[i]) % m;
                    while table[c as usize] != EMPTY {
                        next[i] += 1;
                        c = (offset[i] + next[i] * skip[i]) % m;
                    }
                    table[c as usize] = members[i].0;
                    next[i] += 1;
                    filled += 1;
                    if filled == m {
                        break 'fill;
                    }
                }
            }
        }
        Maglev { table }
    }

    fn slot(&self, saddr: u32, port: u16, round: u64) -> DestId {
        let h = mix64(
            (u64::from(saddr) << 16 | u64::from(port))
                ^ SEED_LOOKUP
                ^ round.wrapping_mul(0x9e37_79b9),
        );
        self.table[(h % self.table.len() as u64) as usize]
    }

    pub fn pick(&self, svc: &Service, snap: &Snapshot, ctx: &PickCtx<'_>) -> Option<DestId> {
        let port = if svc.sched_flags.port {
            ctx.key.sport
        } else {
            0
        };
        let id = self.slot(ctx.key.saddr, port, 0);
        if id != EMPTY && effective_weight(snap, id) > 0 {
            return Some(id);
        }
        if !svc.sched_flags.fallback || id == EMPTY {
            return None;
        }
        // mh-fallback: rehash (bounded) until a server that can take it answers.
        (1..=self.table.len().min(1 << 16) as u64)
            .map(|r| self.slot(ctx.key.saddr, port, r))
            .find(|&id| effective_weight(snap, id) > 0)
    }

    pub fn table(&self) -> &[DestId] {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testutil::{picks, snapshot};
    use crate::snapshot::SchedulerKind::Mh;

    fn share(t: &[DestId], id: DestId) -> f64 {
        t.iter().filter(|&&d| d == id).count() as f64 / t.len() as f64
    }

    #[test]
    fn full_table_shared_by_weight() {
        let snap = snapshot(Mh, &[1, 1, 2, 0]);
        let t = match &snap.tables[0] {
            crate::sched::SchedTable::Maglev(m) => m.table().to_vec(),
            _ => unreachable!(),
        };
        assert_eq!(t.len(), 4093);
        assert!(t.iter().all(|&d| d != EMPTY));
        assert!(!t.contains(&3), "weight 0 takes no slot");
        assert!((share(&t, 2) - 0.5).abs() < 0.02, "{}", share(&t, 2));
        assert!((share(&t, 0) - 0.25).abs() < 0.02);
    }

    #[test]
    fn same_config_same_table() {
        let a = snapshot(Mh, &[1, 2, 3]);
        let b = snapshot(Mh, &[1, 2, 3]);
        match (&a.tables[0], &b.tables[0]) {
            (crate::sched::SchedTable::Maglev(x), crate::sched::SchedTable::Maglev(y)) => {
                assert_eq!(x.table(), y.table())
            }
            _ => unreachable!(),
        }
        assert_eq!(picks(Mh, &[], 1), [None]);
        assert!(picks(Mh, &[1, 1], 100).iter().all(Option::is_some));
    }
}
