//! The immutable service snapshot: what control publishes and workers read.
//!
//! Control builds a new `Snapshot` for every change (config reload, a neighbour resolved, a
//! health transition) and swaps it in atomically; a worker loads it once per batch and never
//! waits. Real servers are addressed by a `DestId` that control keeps stable across
//! snapshots, so flows and counters survive a reload.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use thiserror::Error;

use crate::hash::MixBuildHasher;
use crate::sched::SchedTable;
use crate::wire::ethernet::Mac;

/// A real server's stable index: into `Snapshot::dests` and the per-worker counters.
pub type DestId = u32;

/// The highest number of real servers (ids) a snapshot may use; sizes per-worker counters.
pub const MAX_DESTS: usize = 16384;

/// The most FullNAT local addresses a process may name (their ids, `Snapshot::local_addrs`).
pub const MAX_LOCAL_ADDRS: usize = 256;

/// Per-service counter slots in each worker; a service whose `stats_id` is past the end
/// is not counted per service (its drops still are, by reason).
pub const MAX_SERVICE_STATS: usize = 4096;

/// A service's identity. Per packet, services are found through per-family indexes
/// keyed as the packet gives them (`Snapshot::lookup4`, `lookup6`), not by this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// The VIP: a service and its real servers are of one family.
    pub addr: IpAddr,
    /// 0: every port of the address.
    pub port: u16,
    pub proto: u8,
}

/// The schedulers, with IPVS's names and semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerKind {
    /// Round robin.
    Rr,
    /// Interleaved weighted round robin.
    Wrr,
    /// Least connections (active × 256 + inactive).
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Shortest expected delay: (active + 1) / weight.
    Sed,
    /// Never queue: an idle server first, else sed.
    Nq,
    /// Source hashing (flags: port, fallback).
    Sh,
    /// Destination hashing.
    Dh,
    /// Locality-based least connections (by destination address).
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Maglev hashing (flags: port, fallback; table size).
    Mh,
    /// Weighted failover: the highest weight available.
    Fo,
    /// Overflow: the highest weight whose active connections are below its weight.
    Ovf,
    /// Weighted random choice of two, the less loaded.
    Twos,
}

impl SchedulerKind {
    /// Whether two directors with the same real servers pick the same one for a client
    /// (the hashing schedulers and fo): then a connection a director has never seen can
    /// still go to its real server, and `sloppy_tcp`'s `auto` lets any packet open a flow.
    pub fn same_pick_on_every_director(self) -> bool {
        matches!(
            self,
            SchedulerKind::Sh | SchedulerKind::Dh | SchedulerKind::Mh | SchedulerKind::Fo
        )
    }
}

/// ipvsadm's scheduler flags (`-b sh-port,sh-fallback`, `mh-port`, `mh-fallback`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedFlags {
    /// Hash the client's port too, not only its address.
    pub port: bool,
    /// When the hashed server cannot take the connection, try others.
    pub fallback: bool,
}

/// Persistence: a client network sticks to one real server across connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Seconds a client keeps its real server after its last new connection.
    pub timeout: u32,
    /// Netmask applied to an IPv4 client address (255.255.255.255: per client).
    pub netmask: u32,
    /// The same over an IPv6 client address: the prefix length as a mask (IPVS's `-M`
    /// for `-6` services; all ones: per client).
    pub netmask6: u128,
}

impl Persistence {
    /// Per client of either family, for `timeout` seconds.
    pub fn per_client(timeout: u32) -> Self {
        Persistence {
            timeout,
            netmask: u32::MAX,
            netmask6: u128::MAX,
        }
    }
}

/// Maglev's default lookup table size, a prime.
pub const MH_DEFAULT_TABLE_SIZE: u32 = 65537;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// Direct routing: only the destination MAC changes.
    Dr,
    /// IP-in-IP tunnel to the real server (its MAC field holds the next hop's).
    Tun,
    /// Masquerading: destination VIP:vport → RIP:rport; the steering program translates
    /// the replies back.
    Nat,
    /// Full NAT: source client → a local address and port of the service's pool,
    /// destination VIP:vport → RIP:rport; the steering program translates the replies
    /// (to the local address) back.
    FullNat,
}

/// A FullNAT service's local addresses and ports: the sources its requests leave with.
/// Services with equal pools share one (their flows never hand out the same pair).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalPool {
    /// The director's own addresses, of the service's family.
    pub addrs: Vec<IpAddr>,
    /// The ports handed out, inclusive.
    pub ports: (u16, u16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dest {
    /// Of the family of its services' VIPs.
    pub addr: IpAddr,
    /// NAT's destination port; 0 keeps the packet's (multi-port services).
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
    /// Address, first port and protocol: the service's identity.
    pub key: ServiceKey,
    /// More ports of the same address served as one service (persistence spans them, as
    /// IPVS's firewall-mark services do).
    pub extra_ports: Vec<u16>,
    pub scheduler: SchedulerKind,
    pub sched_flags: SchedFlags,
    /// Maglev lookup table size (a prime); used by mh only.
    pub mh_table_size: u32,
    pub forwarding: Forwarding,
    /// FullNAT's local addresses and ports (`None` for the other methods).
    pub local: Option<LocalPool>,
    pub persistence: Option<Persistence>,
    /// One-packet scheduling: every UDP datagram is scheduled on its own, no flow kept.
    pub ops: bool,
    /// IPVS's `sloppy_tcp`: any TCP packet may open a flow, not only a SYN (a backup can
    /// then carry on connections begun on another director).
    pub sloppy_tcp: bool,
    pub dests: Vec<DestId>,
    /// The service's slot in the per-worker service counters: stable across snapshots
    /// (control never reuses one), so the counts carry over a reload.
    pub stats_id: u32,
}

impl Service {
    /// The service's real servers in order, with what `dests` (its snapshot's table)
    /// holds for each: `None` for one that left.
    pub fn members<'a>(
        &'a self,
        dests: &'a [Option<Dest>],
    ) -> impl Iterator<Item = (DestId, Option<&'a Dest>)> + 'a {
        self.dests
            .iter()
            .map(move |&id| (id, dests.get(id as usize).and_then(Option::as_ref)))
    }

    /// A service with no persistence, flags or extra ports.
    pub fn new(
        name: impl Into<String>,
        key: ServiceKey,
        scheduler: SchedulerKind,
        forwarding: Forwarding,
        dests: Vec<DestId>,
    ) -> Self {
        Service {
            name: name.into(),
            key,
            extra_ports: Vec::new(),
            scheduler,
            sched_flags: SchedFlags::default(),
            mh_table_size: MH_DEFAULT_TABLE_SIZE,
            forwarding,
            local: None,
            persistence: None,
            ops: false,
            sloppy_tcp: scheduler.same_pick_on_every_director(),
            dests,
            stats_id: 0,
        }
    }

    /// Every port the service answers on.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        std::iter::once(self.key.port).chain(self.extra_ports.iter().copied())
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("service {0}: real server id {1} has no entry in the snapshot")]
    UnknownDest(String, DestId),
    #[error("{0} real server ids exceed the limit of {MAX_DESTS}")]
    TooManyDests(usize),
    #[error("service {addr} proto {proto} is listed twice", addr = std::net::SocketAddr::new(.0.addr, .0.port), proto = .0.proto)]
    DuplicateService(ServiceKey),
}

#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every published snapshot; workers rebuild their scheduler state when
    /// it changes.
    pub generation: u64,
    /// The director's MAC on the interface (the source MAC of forwarded frames).
    pub local_mac: Mac,
    /// The director's address on the interface: the tunnel's outer source, and the
    /// source of the ICMP errors it sends.
    pub local_addr: Ipv4Addr,
    /// The director's IPv6 address on the interface: the IPv6 tunnel's outer source and
    /// the source of its Packet Too Big (`None`: it has none; no IPv6 TUN service then).
    pub local_addr6: Option<std::net::Ipv6Addr>,
    /// Path MTU towards tunnelled real servers (TUN packets above MTU − 20 get ICMP; over
    /// IPv6, above MTU − 40, Packet Too Big).
    pub mtu: u16,
    /// Two-arm NAT: the director's MAC on the internal interface, where NAT requests
    /// leave (`None`: one arm, they leave where they came in).
    pub internal_mac: Option<Mac>,
    pub services: Vec<Service>,
    /// Indexed by `DestId`; `None` for an id not in use.
    pub dests: Vec<Option<Dest>>,
    /// Per service: lookup tables of the hashing schedulers, built with the snapshot.
    pub tables: Vec<SchedTable>,
    /// The XDP fast path's generation for this snapshot (0: fast path off): workers write
    /// it into the entries they hand over; the steering program ignores older ones.
    pub fast_generation: u32,
    /// NAT flows may take the fast path too (with `fast_generation`): false on a two-arm
    /// director unless `fast_path: xdp` says its internal interface takes what XDP
    /// redirects there (`auto` cannot see those losses).
    pub fast_nat: bool,
    /// The steering program hands NAT replies it translated to the workers to send
    /// (`XDP_TX` does not deliver on this link, or the fast path is off): a frame from a
    /// NAT service's VIP:port is one of those, sent on as it is.
    pub nat_relay: bool,
    /// The link may hand frames over with TCP and UDP checksums left partial (a veth):
    /// completed before they are forwarded (`rewrite::partial`).
    pub complete_partial: bool,
    /// How the SYN guard is set (`syn_guard`): with `Auto`, a worker whose RX ring backs
    /// up turns its queue's on.
    pub syn_guard: crate::syn_guard::SynGuard,
    /// FullNAT's local addresses, indexed by the id flows hold (`fullnat::LocalPort`):
    /// control keeps an address's id for the life of the process.
    pub local_addrs: Vec<IpAddr>,
    /// Per family, keyed as the packet gives it: per packet, IPv4's is one word to hash.
    index4: HashMap<Key4, usize, MixBuildHasher>,
    index6: HashMap<Key6, usize, MixBuildHasher>,
    /// The VIPs and the director's own addresses, sorted: martian as a source.
    own: Box<[u32]>,
    /// The same for IPv6.
    own6: Box<[u128]>,
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
        let mut index4 = HashMap::with_capacity_and_hasher(services.len(), MixBuildHasher);
        let mut index6 = HashMap::with_hasher(MixBuildHasher);
        for (i, s) in services.iter().enumerate() {
            if let Some(&id) = s
                .dests
                .iter()
                .find(|&&id| dests.get(id as usize).is_none_or(Option::is_none))
            {
                return Err(SnapshotError::UnknownDest(s.name.clone(), id));
            }
            for port in s.ports() {
                let key = ServiceKey { port, ..s.key };
                let twice = match key.addr {
                    IpAddr::V4(a) => index4.insert(Key4::new(u32::from(a), port, key.proto), i),
                    IpAddr::V6(a) => index6.insert(Key6::new(u128::from(a), port, key.proto), i),
                };
                if twice.is_some() {
                    return Err(SnapshotError::DuplicateService(key));
                }
            }
        }
        let tables = services
            .iter()
            .map(|s| SchedTable::build(s, &dests))
            .collect();
        let mut local_addrs: Vec<IpAddr> = Vec::new();
        for a in services
            .iter()
            .filter_map(|s| s.local.as_ref())
            .flat_map(|p| &p.addrs)
        {
            if !local_addrs.contains(a) {
                local_addrs.push(*a);
            }
        }
        let mut snap_own = Own::default();
        snap_own.extend(services.iter().map(|s| s.key.addr));
        snap_own.extend(local_addrs.iter().copied());
        Ok(Snapshot {
            generation,
            local_mac,
            local_addr: Ipv4Addr::UNSPECIFIED,
            local_addr6: None,
            mtu: 1500,
            internal_mac: None,
            services,
            dests,
            tables,
            fast_generation: 0,
            fast_nat: true,
            nat_relay: false,
            complete_partial: false,
            syn_guard: crate::syn_guard::SynGuard::default(),
            local_addrs,
            index4,
            index6,
            own: snap_own.v4.into(),
            own6: snap_own.v6.into(),
        })
    }

    /// A FullNAT local address's id (its index in `local_addrs`).
    pub fn local_id(&self, addr: IpAddr) -> Option<u16> {
        let i = self.local_addrs.iter().position(|a| *a == addr)?;
        u16::try_from(i).ok()
    }

    /// Whether any service forwards by FullNAT.
    pub fn has_fullnat(&self) -> bool {
        self.services.iter().any(|s| s.local.is_some())
    }

    /// An empty snapshot: every packet is `NoService`.
    pub fn empty(local_mac: Mac) -> Self {
        Snapshot::new(0, local_mac, Vec::new(), Vec::new()).expect("empty is valid")
    }

    /// The service for a packet to `addr:port`: an exact port first, then a port-0 service.
    #[inline]
    pub fn lookup(&self, addr: IpAddr, port: u16, proto: u8) -> Option<usize> {
        match addr {
            IpAddr::V4(a) => self.lookup4(u32::from(a), port, proto),
            IpAddr::V6(a) => self.lookup6(u128::from(a), port, proto),
        }
    }

    /// `lookup` for an IPv4 packet (its destination as the integer the header holds).
    #[inline(always)]
    pub fn lookup4(&self, addr: u32, port: u16, proto: u8) -> Option<usize> {
        self.index4
            .get(&Key4::new(addr, port, proto))
            .or_else(|| self.index4.get(&Key4::new(addr, 0, proto)))
            .copied()
    }

    /// `lookup` for an IPv6 packet.
    #[inline(always)]
    pub fn lookup6(&self, addr: u128, port: u16, proto: u8) -> Option<usize> {
        self.index6
            .get(&Key6::new(addr, port, proto))
            .or_else(|| self.index6.get(&Key6::new(addr, 0, proto)))
            .copied()
    }

    /// Adds the director's own addresses to the VIPs a packet may not come from.
    pub fn add_own_addrs(&mut self, addrs: impl IntoIterator<Item = IpAddr>) {
        let mut own = Own {
            v4: self.own.to_vec(),
            v6: self.own6.to_vec(),
        };
        own.extend(addrs);
        self.own = own.v4.into();
        self.own6 = own.v6.into();
    }

    /// Whether a service is IPv6's (the workers then allocate their IPv6 flow table).
    pub fn has_ipv6(&self) -> bool {
        self.services.iter().any(|s| s.key.addr.is_ipv6())
    }

    /// Whether `addr` is a VIP or one of the director's IPv4 addresses.
    #[inline]
    pub fn is_own(&self, addr: u32) -> bool {
        self.own.binary_search(&addr).is_ok()
    }

    /// Whether `addr` is a VIP or one of the director's IPv6 addresses.
    #[inline]
    pub fn is_own6(&self, addr: u128) -> bool {
        self.own6.binary_search(&addr).is_ok()
    }

    #[inline]
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        self.dests.get(id as usize).and_then(Option::as_ref)
    }
}

/// A service's IPv4 address, port and protocol as the index holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key4(u64);

impl Key4 {
    #[inline(always)]
    fn new(addr: u32, port: u16, proto: u8) -> Self {
        Key4(u64::from(addr) << 24 | u64::from(port) << 8 | u64::from(proto))
    }
}

impl std::hash::Hash for Key4 {
    #[inline(always)]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// The same for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key6 {
    addr: u128,
    port_proto: u32,
}

impl Key6 {
    #[inline(always)]
    fn new(addr: u128, port: u16, proto: u8) -> Self {
        Key6 {
            addr,
            port_proto: u32::from(port) << 8 | u32::from(proto),
        }
    }
}

impl std::hash::Hash for Key6 {
    #[inline(always)]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let a = self.addr;
        state.write_u64(
            crate::hash::mix64(a as u64 ^ u64::from(self.port_proto)) ^ (a >> 64) as u64,
        );
    }
}

/// The director's own addresses and VIPs, by family, sorted and deduplicated.
#[derive(Default)]
struct Own {
    v4: Vec<u32>,
    v6: Vec<u128>,
}

impl Own {
    fn extend(&mut self, addrs: impl IntoIterator<Item = IpAddr>) {
        for a in addrs {
            match a {
                IpAddr::V4(a) => self.v4.push(u32::from(a)),
                IpAddr::V6(a) => self.v6.push(u128::from(a)),
            }
        }
        self.v4.sort_unstable();
        self.v4.dedup();
        self.v6.sort_unstable();
        self.v6.dedup();
    }
}

/// Where control publishes snapshots and workers read them.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(last: u8) -> Option<Dest> {
        Some(Dest {
            addr: Ipv4Addr::new(10, 0, 0, last).into(),
            port: 80,
            weight: 1,
            mac: Some([2, 0, 0, 0, 0, last]),
        })
    }

    fn svc(port: u16, dests: Vec<DestId>) -> Service {
        let key = ServiceKey {
            addr: Ipv4Addr::new(10, 0, 0, 100).into(),
            port,
            proto: 6,
        };
        Service::new(
            format!("s{port}"),
            key,
            SchedulerKind::Rr,
            Forwarding::Dr,
            dests,
        )
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
        let vip = IpAddr::from(Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(s.lookup(vip, 80, 6), Some(0));
        assert_eq!(s.lookup(vip, 443, 6), Some(1));
        assert_eq!(s.lookup(vip, 80, 17), None);
        assert_eq!(s.lookup(Ipv4Addr::new(10, 0, 0, 1).into(), 80, 6), None);
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
        let mut multi = svc(80, vec![]);
        multi.extra_ports = vec![443];
        assert!(matches!(
            Snapshot::new(1, [0; 6], vec![multi, svc(443, vec![])], vec![]).unwrap_err(),
            SnapshotError::DuplicateService(k) if k.port == 443
        ));
    }

    #[test]
    fn extra_ports_share_the_service() {
        let mut multi = svc(80, vec![]);
        multi.extra_ports = vec![443];
        let s = Snapshot::new(1, [0; 6], vec![multi], vec![]).unwrap();
        let vip = IpAddr::from(Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(s.lookup(vip, 443, 6), Some(0));
        assert_eq!(s.lookup(vip, 80, 6), Some(0));
        assert_eq!(s.lookup(vip, 8080, 6), None);
    }
}
