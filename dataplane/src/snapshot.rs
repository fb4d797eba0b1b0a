//! The immutable service snapshot: what control publishes and workers read.
//!
//! Control builds a new `Snapshot` for every change (config reload, a neighbour resolved, a
//! health transition) and swaps it in atomically; a worker loads it once per batch and never
//! waits. Real servers are addressed by a `DestId` that control keeps stable across
//! snapshots, so flows and counters survive a reload.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use thiserror::Error;

use crate::hash::MixBuildHasher;
use crate::wire::ethernet::Mac;

/// A real server's stable index: into `Snapshot::dests` and the per-worker counters.
pub type DestId = u32;

/// The highest number of real servers (ids) a snapshot may use; sizes per-worker counters.
pub const MAX_DESTS: usize = 16384;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub addr: Ipv4Addr,
    /// 0: every port of the address.
    pub port: u16,
    pub proto: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerKind {
    /// Round robin.
    Rr,
    /// Interleaved weighted round robin, as IPVS's wrr.
    Wrr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// Direct routing: only the destination MAC changes.
    Dr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dest {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// 0: quiescent, takes no new connections; existing ones continue.
    pub weight: u32,
    /// The next hop's MAC; `None` until the neighbour is resolved (not scheduled until then).
    pub mac: Option<Mac>,
}

impl Dest {
    /// Whether the scheduler may give it a new connection.
    pub fn schedulable(&self) -> bool {
        self.weight > 0 && self.mac.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub key: ServiceKey,
    pub scheduler: SchedulerKind,
    pub forwarding: Forwarding,
    pub dests: Vec<DestId>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("service {0}: real server id {1} has no entry in the snapshot")]
    UnknownDest(String, DestId),
    #[error("{0} real server ids exceed the limit of {MAX_DESTS}")]
    TooManyDests(usize),
    #[error("service {addr}:{port} proto {proto} is listed twice", addr = .0.addr, port = .0.port, proto = .0.proto)]
    DuplicateService(ServiceKey),
}

#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every published snapshot; workers rebuild their scheduler state when
    /// it changes.
    pub generation: u64,
    /// The director's MAC on the interface (the source MAC of forwarded frames).
    pub local_mac: Mac,
    pub services: Vec<Service>,
    /// Indexed by `DestId`; `None` for an id not in use.
    pub dests: Vec<Option<Dest>>,
    index: HashMap<ServiceKey, usize, MixBuildHasher>,
}

impl Snapshot {
    pub fn new(
        generation: u64,
        local_mac: Mac,
        services: Vec<Service>,
        dests: Vec<Option<Dest>>,
    ) -> Result<Self, SnapshotError> {
        if dests.len() > MAX_DESTS {
            return Err(SnapshotError::TooManyDests(dests.len()));
        }
        let mut index = HashMap::with_capacity_and_hasher(services.len(), MixBuildHasher);
        for (i, s) in services.iter().enumerate() {
            if let Some(&id) = s
                .dests
                .iter()
                .find(|&&id| dests.get(id as usize).is_none_or(Option::is_none))
            {
                return Err(SnapshotError::UnknownDest(s.name.clone(), id));
            }
            if index.insert(s.key, i).is_some() {
                return Err(SnapshotError::DuplicateService(s.key));
            }
        }
        Ok(Snapshot {
            generation,
            local_mac,
            services,
            dests,
            index,
        })
    }

    /// An empty snapshot: every packet is `NoService`.
    pub fn empty(local_mac: Mac) -> Self {
        Snapshot::new(0, local_mac, Vec::new(), Vec::new()).expect("empty is valid")
    }

    /// The service for a packet to `addr:port`: an exact port first, then a port-0 service.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr, port: u16, proto: u8) -> Option<usize> {
        self.index
            .get(&ServiceKey { addr, port, proto })
            .or_else(|| {
                self.index.get(&ServiceKey {
                    addr,
                    port: 0,
                    proto,
                })
            })
            .copied()
    }

    #[inline]
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        self.dests.get(id as usize).and_then(Option::as_ref)
    }
}

/// Where control publishes snapshots and workers read them.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(last: u8) -> Option<Dest> {
        Some(Dest {
            addr: Ipv4Addr::new(10, 0, 0, last),
            port: 80,
            weight: 1,
            mac: Some([2, 0, 0, 0, 0, last]),
        })
    }

    fn svc(port: u16, dests: Vec<DestId>) -> Service {
        Service {
            name: format!("s{port}"),
            key: ServiceKey {
                addr: Ipv4Addr::new(10, 0, 0, 100),
                port,
                proto: 6,
            },
            scheduler: SchedulerKind::Rr,
            forwarding: Forwarding::Dr,
            dests,
        }
    }

    #[test]
    fn lookup_prefers_exact_port() {
        let s = Snapshot::new(
            1,
            [0; 6],
            vec![svc(80, vec![0]), svc(0, vec![1])],
            vec![dest(1), dest(2)],
        )
        .unwrap();
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        assert_eq!(s.lookup(vip, 80, 6), Some(0));
        assert_eq!(s.lookup(vip, 443, 6), Some(1));
        assert_eq!(s.lookup(vip, 80, 17), None);
        assert_eq!(s.lookup(Ipv4Addr::new(10, 0, 0, 1), 80, 6), None);
    }

    #[test]
    fn rejects_inconsistent_snapshots() {
        assert_eq!(
            Snapshot::new(1, [0; 6], vec![svc(80, vec![3])], vec![dest(1)]).unwrap_err(),
            SnapshotError::UnknownDest("s80".into(), 3)
        );
        assert_eq!(
            Snapshot::new(1, [0; 6], vec![svc(80, vec![1])], vec![dest(1), None]).unwrap_err(),
            SnapshotError::UnknownDest("s80".into(), 1)
        );
        assert!(matches!(
            Snapshot::new(1, [0; 6], vec![svc(80, vec![]), svc(80, vec![])], vec![]).unwrap_err(),
            SnapshotError::DuplicateService(_)
        ));
    }
}
