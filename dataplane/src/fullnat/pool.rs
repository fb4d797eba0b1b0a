//! A worker's FullNAT local ports: which (local address, port) pairs it may hand out,
//! which it has handed out, and which to hand out next.
//!
//! Workers split every pool's ports by residue (a worker owns the ports `p` with
//! `p % workers == worker`), so no two workers ever hand out the same pair, whatever the
//! queue a connection arrives on. Each pool keeps a FIFO of its free pairs: a pair freed
//! goes to the back, so it is handed out again only after every other free pair, which
//! keeps a real server's TIME_WAIT of the last connection on that pair out of the way.
//! The pairs in use are a bitmap per local address, the truth a reload rebuilds the
//! FIFOs from. Nothing allocates per packet: a FIFO is built with room for its whole
//! pool when a snapshot brings the pool.

use std::collections::VecDeque;

use crate::snapshot::{LocalPool, Snapshot};

/// A (local address, port) pair as a flow holds it: the address's id in the snapshot's
/// `local_addrs` in the high half, the port in the low one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalPort(pub u32);

impl LocalPort {
    pub fn new(addr: u16, port: u16) -> Self {
        LocalPort(u32::from(addr) << 16 | u32::from(port))
    }

    pub fn addr(self) -> u16 {
        (self.0 >> 16) as u16
    }

    pub fn port(self) -> u16 {
        self.0 as u16
    }
}

/// Which share of the ports a worker owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub worker: u16,
    pub workers: u16,
}

impl Default for Share {
    fn default() -> Self {
        Share {
            worker: 0,
            workers: 1,
        }
    }
}

impl Share {
    pub fn owns(self, port: u16) -> bool {
        port % self.workers.max(1) == self.worker
    }
}

/// Ports in use of one local address: a bit each.
struct InUse(Box<[u64; 1024]>);

impl InUse {
    fn new() -> Self {
        InUse(Box::new([0; 1024]))
    }

    fn get(&self, port: u16) -> bool {
        self.0[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    fn set(&mut self, port: u16, on: bool) {
        let w = &mut self.0[usize::from(port >> 6)];
        if on {
            *w |= 1 << (port & 63);
        } else {
            *w &= !(1 << (port & 63));
        }
    }
}

/// One pool's free pairs, in the order they are handed out.
struct Fifo {
    def: LocalPool,
    /// The pool's address ids, in its order.
    ids: Vec<u16>,
    free: VecDeque<LocalPort>,
}

/// Every pool the worker's snapshot has, and the pairs in use.
#[derive(Default)]
pub struct Pools {
    share: Share,
    /// Where each new FIFO starts (random per process): a restarted director, or the
    /// other of a pair, does not hand out the same pairs in the same order, so a real
    /// server's TIME_WAIT from the last process's connections is not met at once.
    start: u64,
    /// Indexed by local address id; `None` until a pool names the address.
    in_use: Vec<Option<InUse>>,
    fifos: Vec<Fifo>,
    /// Per service of the snapshot: the index of its pool in `fifos`.
    of_service: Vec<Option<u16>>,
}

impl Pools {
    pub fn new(share: Share, start: u64) -> Self {
        Pools {
            share,
            start,
            ..Pools::default()
        }
    }

    /// Takes up `snap`'s pools: a pool it had before keeps its FIFO; a new one (or one
    /// whose addresses or ports changed) is built from what is not in use.
    pub fn prepare(&mut self, snap: &Snapshot) {
        let mut fifos: Vec<Fifo> = Vec::new();
        self.of_service.clear();
        for svc in &snap.services {
            let Some(def) = &svc.local else {
                self.of_service.push(None);
                continue;
            };
            let at = match fifos.iter().position(|f| f.def == *def) {
                Some(i) => i,
                None => {
                    let old = self.fifos.iter().position(|f| f.def == *def);
                    let fifo = match old {
                        Some(i) => self.fifos.swap_remove(i),
                        None => self.build(snap, def),
                    };
                    fifos.push(fifo);
                    fifos.len() - 1
                }
            };
            self.of_service.push(Some(at as u16));
        }
        self.fifos = fifos;
    }

    fn build(&mut self, snap: &Snapshot, def: &LocalPool) -> Fifo {
        let ids: Vec<u16> = def.addrs.iter().filter_map(|a| snap.local_id(*a)).collect();
        for &id in &ids {
            let i = usize::from(id);
            if self.in_use.len() <= i {
                self.in_use.resize_with(i + 1, || None);
            }
            self.in_use[i].get_or_insert_with(InUse::new);
        }
        let (lo, hi) = def.ports;
        let mut free = VecDeque::with_capacity(pool_size(def, self.share));
        // Port-major: consecutive connections take every address in turn.
        for port in (lo..=hi).filter(|&p| self.share.owns(p)) {
            for &id in &ids {
                if !self.used(LocalPort::new(id, port)) {
                    free.push_back(LocalPort::new(id, port));
                }
            }
        }
        if !free.is_empty() {
            let by = (self.start % free.len() as u64) as usize;
            free.rotate_left(by);
        }
        Fifo {
            def: def.clone(),
            ids,
            free,
        }
    }

    fn used(&self, l: LocalPort) -> bool {
        self.in_use
            .get(usize::from(l.addr()))
            .and_then(Option::as_ref)
            .is_some_and(|u| u.get(l.port()))
    }

    /// A free pair of service `svc`'s pool, now in use; `None`: the service has no pool,
    /// or this worker's share of it is all in use.
    pub fn take(&mut self, svc: usize) -> Option<LocalPort> {
        let at = usize::from((*self.of_service.get(svc)?)?);
        while let Some(l) = self.fifos[at].free.pop_front() {
            // A pair still in use (queued again by a rebuilt pool) is skipped: it comes
            // back when its connection frees it.
            if let Some(Some(u)) = self.in_use.get_mut(usize::from(l.addr())) {
                if !u.get(l.port()) {
                    u.set(l.port(), true);
                    return Some(l);
                }
            }
        }
        None
    }

    /// Gives a pair back: free, and queued in the pool that has it (if any still does).
    pub fn give_back(&mut self, l: LocalPort) {
        let Some(Some(u)) = self.in_use.get_mut(usize::from(l.addr())) else {
            return;
        };
        if !u.get(l.port()) {
            return;
        }
        u.set(l.port(), false);
        let (port, id) = (l.port(), l.addr());
        // Another worker's port (a connection installed from a peer): never handed out here.
        if !self.share.owns(port) {
            return;
        }
        if let Some(f) = self
            .fifos
            .iter_mut()
            .find(|f| f.ids.contains(&id) && (f.def.ports.0..=f.def.ports.1).contains(&port))
        {
            if f.free.len() < f.free.capacity() {
                f.free.push_back(l);
            }
        }
    }

    /// Whether the pair is in use.
    pub fn in_use(&self, l: LocalPort) -> bool {
        self.used(l)
    }

    /// Whether `port` is this worker's share.
    pub fn owns(&self, port: u16) -> bool {
        self.share.owns(port)
    }

    /// Marks a pair in use that a peer handed out (connection sync); false if it
    /// already is, or its address is in no pool here. Its FIFO entry is skipped when
    /// reached (`take`).
    pub fn reserve(&mut self, l: LocalPort) -> bool {
        match self.in_use.get_mut(usize::from(l.addr())) {
            Some(Some(u)) if !u.get(l.port()) => {
                u.set(l.port(), true);
                true
            }
            _ => false,
        }
    }
}

/// The pairs a worker of `share` owns of `def`.
pub fn pool_size(def: &LocalPool, share: Share) -> usize {
    let ports = (def.ports.0..=def.ports.1)
        .filter(|&p| share.owns(p))
        .count();
    ports * def.addrs.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Forwarding, SchedulerKind, Service, ServiceKey};
    use std::net::IpAddr;

    fn snap(pools: &[(Vec<&str>, (u16, u16))]) -> Snapshot {
        let services = pools
            .iter()
            .enumerate()
            .map(|(i, (addrs, ports))| {
                let mut s = Service::new(
                    format!("s{i}"),
                    ServiceKey {
                        addr: format!("10.9.0.{}", i + 1).parse().unwrap(),
                        port: 80,
                        proto: 6,
                    },
                    SchedulerKind::Rr,
                    Forwarding::FullNat,
                    vec![],
                );
                s.local = Some(LocalPool {
                    addrs: addrs.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect(),
                    ports: *ports,
                });
                s
            })
            .collect();
        Snapshot::new(1, [0; 6], services, vec![]).unwrap()
    }

    #[test]
    fn hands_out_each_pair_once_and_alternates_addresses() {
        let s = snap(&[(vec!["10.0.0.1", "10.0.0.2"], (2000, 2002))]);
        let mut p = Pools::new(Share::default(), 0);
        p.prepare(&s);
        let got: Vec<(u16, u16)> = std::iter::from_fn(|| p.take(0))
            .map(|l| (l.addr(), l.port()))
            .collect();
        assert_eq!(
            got,
            [
                (0, 2000),
                (1, 2000),
                (0, 2001),
                (1, 2001),
                (0, 2002),
                (1, 2002)
            ]
        );
        assert_eq!(p.take(0), None, "exhausted");
        p.give_back(LocalPort::new(1, 2001));
        p.give_back(LocalPort::new(1, 2001));
        assert_eq!(p.take(0), Some(LocalPort::new(1, 2001)));
        assert_eq!(
            p.take(0),
            None,
            "a pair given back twice is handed out once"
        );
    }

    #[test]
    fn workers_own_disjoint_ports() {
        let s = snap(&[(vec!["10.0.0.1"], (1024, 1100))]);
        let mut seen = std::collections::HashSet::new();
        for w in 0..3 {
            let mut p = Pools::new(
                Share {
                    worker: w,
                    workers: 3,
                },
                u64::from(w) * 7919,
            );
            p.prepare(&s);
            while let Some(l) = p.take(0) {
                assert!(seen.insert(l), "{l:?} handed out by two workers");
            }
        }
        assert_eq!(seen.len(), 77);
    }

    #[test]
    fn a_reload_keeps_what_is_in_use() {
        let s1 = snap(&[(vec!["10.0.0.1"], (3000, 3003))]);
        let mut p = Pools::new(Share::default(), 0);
        p.prepare(&s1);
        let a = p.take(0).unwrap();
        let b = p.take(0).unwrap();
        // The range grows: a new pool over the same address.
        let s2 = snap(&[(vec!["10.0.0.1"], (3000, 3005))]);
        p.prepare(&s2);
        let mut rest = Vec::new();
        while let Some(l) = p.take(0) {
            rest.push(l.port());
        }
        assert_eq!(rest, [3002, 3003, 3004, 3005], "{a:?} and {b:?} stay taken");
        p.give_back(a);
        assert_eq!(p.take(0), Some(a), "given back into the new pool");
    }

    #[test]
    fn the_first_pair_handed_out_depends_on_the_start() {
        let s = snap(&[(vec!["10.0.0.1"], (5000, 5999))]);
        let first = |start| {
            let mut p = Pools::new(Share::default(), start);
            p.prepare(&s);
            p.take(0).unwrap().port()
        };
        assert_eq!(first(0), 5000);
        assert_eq!(first(1_000_003), 5003);
    }

    #[test]
    fn equal_pools_are_one() {
        let s = snap(&[
            (vec!["10.0.0.1"], (4000, 4001)),
            (vec!["10.0.0.1"], (4000, 4001)),
        ]);
        let mut p = Pools::new(Share::default(), 0);
        p.prepare(&s);
        assert!(p.take(0).is_some());
        assert!(p.take(1).is_some());
        assert_eq!(p.take(0), None, "two services, one pool of two pairs");
    }
}
