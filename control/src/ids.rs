//! Who is who across snapshots: a real server's identity within its virtual service, and
//! the ids that stay the same for the life of the process, so flows and counters follow
//! a real server from one snapshot to the next.

use std::collections::HashMap;
use std::net::IpAddr;

use xvs_dataplane::snapshot::{DestId, ServiceKey};

/// An address and port (or port list) as people write them: `10.0.0.1:80`,
/// `[2001:db8::1]:80`, `10.0.0.100:80,443`.
pub fn endpoint(addr: IpAddr, port: impl std::fmt::Display) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Identity of a real server within its virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DestKey {
    pub service: ServiceKey,
    pub addr: IpAddr,
    pub port: u16,
}

impl DestKey {
    /// A configured real server of a configured virtual server.
    pub fn of(vs: &xvs_config::VirtualServer, rs: &xvs_config::RealServer) -> DestKey {
        DestKey {
            service: service_key(vs),
            addr: rs.address,
            port: rs.port,
        }
    }
}

/// Hands out `DestId`s: the same real server of the same service keeps its id for the
/// life of the process, so flows and counters follow it across snapshots. Services get
/// counter slots the same way.
#[derive(Default, Debug)]
pub struct DestRegistry {
    ids: HashMap<DestKey, DestId>,
    next: DestId,
    services: HashMap<ServiceKey, u32>,
}

impl DestRegistry {
    /// The service's slot in the per-worker service counters (never reused).
    pub fn service_id(&mut self, key: ServiceKey) -> u32 {
        let n = self.services.len() as u32;
        *self.services.entry(key).or_insert(n)
    }

    pub fn id(&mut self, key: DestKey) -> DestId {
        *self.ids.entry(key).or_insert_with(|| {
            let id = self.next;
            self.next += 1;
            id
        })
    }

    /// How many ids were handed out: they are `0..len`.
    pub fn issued(&self) -> usize {
        self.next as usize
    }

    /// Every real server with its id.
    pub fn all(&self) -> impl Iterator<Item = (&DestKey, &DestId)> {
        self.ids.iter()
    }

    #[cfg(test)]
    pub fn key_of(&self, id: DestId) -> Option<DestKey> {
        self.ids.iter().find(|(_, v)| **v == id).map(|(k, _)| *k)
    }
}

pub fn service_key(vs: &xvs_config::VirtualServer) -> ServiceKey {
    ServiceKey {
        addr: vs.address,
        port: vs.port(),
        proto: vs.protocol.number(),
    }
}
