//! Turning the configuration and what the kernel knows (neighbour MACs) into a dataplane
//! snapshot, with real-server ids that stay the same from one snapshot to the next.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use xvs_dataplane::syn_guard::SynGuard;

use anyhow::{Context, Result};
use xvs_config::{Config, Forwarding as CfgForwarding, Scheduler as CfgScheduler};
use xvs_dataplane::snapshot::{Dest, DestId, Forwarding, SchedulerKind, Service, Snapshot};
use xvs_dataplane::snapshot::{LocalPool, Persistence, SchedFlags};

use super::drain::Drains;
use super::overload::Overload;
use crate::health::{Health, HealthMap};
use crate::ids::{service_key, DestKey, DestRegistry};

fn scheduler(s: CfgScheduler) -> SchedulerKind {
    match s {
        CfgScheduler::Rr => SchedulerKind::Rr,
        CfgScheduler::Wrr => SchedulerKind::Wrr,
        CfgScheduler::Lc => SchedulerKind::Lc,
        CfgScheduler::Wlc => SchedulerKind::Wlc,
        CfgScheduler::Sed => SchedulerKind::Sed,
        CfgScheduler::Nq => SchedulerKind::Nq,
        CfgScheduler::Sh => SchedulerKind::Sh,
        CfgScheduler::Dh => SchedulerKind::Dh,
        CfgScheduler::Lblc => SchedulerKind::Lblc,
        CfgScheduler::Lblcr => SchedulerKind::Lblcr,
        CfgScheduler::Mh => SchedulerKind::Mh,
        CfgScheduler::Fo => SchedulerKind::Fo,
        CfgScheduler::Ovf => SchedulerKind::Ovf,
        CfgScheduler::Twos => SchedulerKind::Twos,
    }
}

/// The dataplane's view of a virtual server (its real servers' ids filled in by `build`).
fn service(cfg: &Config, vs: &xvs_config::VirtualServer, dests: Vec<DestId>) -> Service {
    let forwarding = match vs.forwarding {
        CfgForwarding::Dr => Forwarding::Dr,
        CfgForwarding::Tun => Forwarding::Tun,
        CfgForwarding::Nat => Forwarding::Nat,
        CfgForwarding::FullNat => Forwarding::FullNat,
    };
    let mut s = Service::new(
        vs.name.clone(),
        service_key(vs),
        scheduler(vs.scheduler),
        forwarding,
        dests,
    );
    s.extra_ports = vs.ports[1..].to_vec();
    s.sched_flags = SchedFlags {
        port: vs.scheduler_flags.port,
        fallback: vs.scheduler_flags.fallback,
    };
    s.mh_table_size = vs.mh_table_size;
    s.persistence = vs.persistence.map(|p| Persistence {
        timeout: p.timeout,
        netmask: u32::from(p.granularity),
        netmask6: u128::MAX
            .checked_shl(128 - u32::from(p.prefix6))
            .unwrap_or(0),
    });
    s.local = vs.local.as_ref().map(|l| LocalPool {
        addrs: l.addresses.clone(),
        ports: l.ports,
    });
    s.ops = vs.ops;
    s.sloppy_tcp = cfg.sloppy_tcp.applies_to(vs.scheduler);
    s
}

/// The director's side of the interface, as the dataplane needs it.
#[derive(Clone, Copy, Debug)]
pub struct Local {
    pub mac: [u8; 6],
    /// The director's address on the interface (tunnel source, ICMP source).
    pub addr: Ipv4Addr,
    /// Its IPv6 address there, if any (the IPv6 tunnel's source, Packet Too Big's).
    pub addr6: Option<Ipv6Addr>,
    /// Path MTU towards tunnelled real servers.
    pub mtu: u16,
    /// Two-arm NAT: the director's MAC on the internal interface.
    pub internal_mac: Option<[u8; 6]>,
    /// What the steering program sends with `XDP_TX` is delivered (false once
    /// `fast_path: auto` saw the driver count it lost: `daemon::xdp_tx`).
    pub xdp_tx: bool,
    /// The interface is a veth, whose frames may carry partial checksums.
    pub partial_csums: bool,
}

#[cfg(test)]
impl Local {
    /// The tests' director: 10.0.0.2, MAC 01:01:01:01:01:01, MTU 1500, one arm.
    pub fn for_tests() -> Local {
        Local {
            mac: [1; 6],
            addr: Ipv4Addr::new(10, 0, 0, 2),
            addr6: None,
            mtu: 1500,
            internal_mac: None,
            xdp_tx: true,
            partial_csums: false,
        }
    }
}

/// Real servers that are up but take no new connection: drained by the operator, or
/// overloaded (past their connection threshold).
#[derive(Clone, Copy)]
pub struct Quiet<'a> {
    pub drains: &'a Drains,
    pub overload: &'a Overload,
}

impl Quiet<'_> {
    fn holds(&self, vs: &xvs_config::VirtualServer, rs: &xvs_config::RealServer) -> bool {
        self.drains.contains(vs, rs) || self.overload.contains(&DestKey::of(vs, rs))
    }
}

/// Builds snapshot `generation`. `macs` holds each real server's next-hop MAC; one that
/// has none is present but not schedulable. A quiet (drained or overloaded) real server
/// keeps its place (its flows go on) with weight 0.
pub fn build(
    generation: u64,
    cfg: &Config,
    local: Local,
    macs: &HashMap<IpAddr, [u8; 6]>,
    health: &HealthMap,
    quiet: Quiet<'_>,
    registry: &mut DestRegistry,
) -> Result<Snapshot> {
    let mut dests: Vec<Option<Dest>> = Vec::new();
    let mut services = Vec::with_capacity(cfg.virtual_servers.len());
    for vs in &cfg.virtual_servers {
        let key = service_key(vs);
        let ids = pool(vs, macs, health, quiet, registry, &mut dests);
        let mut svc = service(cfg, vs, ids);
        svc.stats_id = registry.service_id(key);
        services.push(svc);
    }
    let mut snap = Snapshot::new(generation, local.mac, services, dests)
        .context("building the service snapshot")?;
    snap.local_addrs = registry.local_addrs(cfg)?;
    snap.local_addr = local.addr;
    snap.local_addr6 = local.addr6;
    snap.add_own_addrs(std::iter::once(local.addr.into()).chain(vrrp_vips(cfg)));
    snap.mtu = local.mtu;
    snap.internal_mac = local.internal_mac;
    snap.fast_generation = fast_generation(cfg, generation, local.xdp_tx);
    snap.fast_nat = fast_nat(cfg);
    snap.nat_relay = nat_relay(cfg, local.xdp_tx);
    snap.complete_partial = local.partial_csums;
    snap.syn_guard = match cfg.syn_guard {
        xvs_config::SynGuardMode::Auto => SynGuard::Auto,
        xvs_config::SynGuardMode::On => SynGuard::On,
        xvs_config::SynGuardMode::Off => SynGuard::Off,
    };
    Ok(snap)
}

/// A virtual server's pool: its real servers put in `dests`, their ids in order; the
/// sorry server's alone when none of them is up.
fn pool(
    vs: &xvs_config::VirtualServer,
    macs: &HashMap<IpAddr, [u8; 6]>,
    health: &HealthMap,
    quiet: Quiet<'_>,
    registry: &mut DestRegistry,
    dests: &mut Vec<Option<Dest>>,
) -> Vec<DestId> {
    let mut ids = Vec::with_capacity(vs.real_servers.len());
    let mut alive = 0;
    for rs in &vs.real_servers {
        let dk = DestKey::of(vs, rs);
        let h = health.get(&dk).copied().unwrap_or(Health {
            up: true,
            weight: None,
        });
        // keepalived: a failed real server leaves the pool (its flows then follow
        // expire_nodest_conn), or stays with weight 0 under inhibit_on_failure.
        if !h.up && !rs.inhibit_on_failure {
            continue;
        }
        let weight = if h.up && !quiet.holds(vs, rs) {
            h.weight.unwrap_or(rs.weight)
        } else {
            0
        };
        alive += usize::from(h.up);
        let id = registry.id(dk);
        put(
            dests,
            id,
            Dest {
                addr: rs.address,
                port: rs.port,
                weight,
                mac: macs.get(&rs.address).copied(),
            },
        );
        ids.push(id);
    }
    if let (0, Some((addr, port))) = (alive, vs.sorry_server) {
        // No real server is up: the sorry server takes every new connection.
        ids = vec![sorry_server(vs, addr, port, macs, registry, dests)];
    }
    ids
}

/// A virtual server's sorry server, put in `dests`; its id.
fn sorry_server(
    vs: &xvs_config::VirtualServer,
    addr: IpAddr,
    port: u16,
    macs: &HashMap<IpAddr, [u8; 6]>,
    registry: &mut DestRegistry,
    dests: &mut Vec<Option<Dest>>,
) -> DestId {
    let id = registry.id(DestKey {
        service: service_key(vs),
        addr,
        port,
    });
    put(
        dests,
        id,
        Dest {
            addr,
            port,
            weight: 1,
            mac: macs.get(&addr).copied(),
        },
    );
    id
}

/// Puts `d` in its slot `id`, making room for it.
fn put(dests: &mut Vec<Option<Dest>>, id: DestId, d: Dest) {
    if dests.len() <= id as usize {
        dests.resize(id as usize + 1, None);
    }
    dests[id as usize] = Some(d);
}

/// The addresses of every VRRP instance (VIPs with no virtual server among them).
fn vrrp_vips(cfg: &Config) -> impl Iterator<Item = IpAddr> + '_ {
    cfg.vrrp_instances
        .iter()
        .flat_map(|v| v.virtual_ipaddresses.iter())
        .map(|&(a, _)| a)
}

/// What the steering program takes for the director's own addresses, by family: `addrs`
/// (the interfaces') and every VIP. A packet to one is no NAT reply; one from one is
/// martian.
pub fn own_addrs(
    cfg: &Config,
    addrs: impl IntoIterator<Item = IpAddr>,
) -> (Vec<Ipv4Addr>, Vec<Ipv6Addr>) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for a in addrs
        .into_iter()
        .chain(cfg.virtual_servers.iter().map(|vs| vs.address))
        .chain(vrrp_vips(cfg))
    {
        match a {
            IpAddr::V4(a) => v4.push(a),
            IpAddr::V6(a) => v6.push(a),
        }
    }
    v4.sort_unstable();
    v4.dedup();
    v6.sort_unstable();
    v6.dedup();
    (v4, v6)
}

/// The fast path's generation for snapshot `generation`: never 0 (which means off), so
/// each snapshot's differs from the one before; 0 when it is off, or `auto` and `XDP_TX`
/// is not delivered (`xdp_tx` false).
pub fn fast_generation(cfg: &Config, generation: u64, xdp_tx: bool) -> u32 {
    match cfg.fast_path {
        xvs_config::FastPath::Off => 0,
        xvs_config::FastPath::Auto if !xdp_tx => 0,
        xvs_config::FastPath::Auto | xvs_config::FastPath::Xdp => (generation as u32).max(1),
    }
}

/// Whether NAT flows may take the fast path (besides `fast_generation`): on one arm,
/// where the requests leave by `XDP_TX` as DR's do; on two only with `fast_path: xdp`,
/// the user saying the internal interface takes what XDP redirects to it. `auto` cannot
/// find that out: a veth whose peer runs no XDP, a VLAN or a macvlan (no
/// `ndo_xdp_xmit`) lose the frames without a count in any XDP statistic.
pub fn fast_nat(cfg: &Config) -> bool {
    cfg.internal_interface.is_none() || cfg.fast_path == xvs_config::FastPath::Xdp
}

/// Whether NAT replies the steering program translates are sent by the workers rather
/// than with `XDP_TX`: with the fast path off, or `auto` and `XDP_TX` not delivered.
/// One-arm only: two-arm replies arrive on the internal interface, where the workers
/// have no socket to receive them, and are redirected to the external one.
pub fn nat_relay(cfg: &Config, xdp_tx: bool) -> bool {
    if cfg.internal_interface.is_some() {
        return false;
    }
    match cfg.fast_path {
        xvs_config::FastPath::Off => true,
        xvs_config::FastPath::Auto => !xdp_tx,
        xvs_config::FastPath::Xdp => false,
    }
}

/// Whether a virtual server's established flows may take the XDP fast path: DR ones,
/// TUN and NAT ones over IPv4 (the steering program tunnels and translates only
/// those), not persistent (templates live by the worker's packets), not one-packet.
fn fast(cfg: &Config, vs: &xvs_config::VirtualServer) -> bool {
    let method = match vs.forwarding {
        CfgForwarding::Dr => true,
        CfgForwarding::Tun => vs.address.is_ipv4(),
        CfgForwarding::Nat => vs.address.is_ipv4() && fast_nat(cfg),
        CfgForwarding::FullNat => false,
    };
    cfg.fast_path != xvs_config::FastPath::Off && method && vs.persistence.is_none() && !vs.ops
}

/// Real servers (and sorry servers) whose MAC xvs needs: every configured address.
pub fn next_hop_addresses(vs: &xvs_config::VirtualServer) -> impl Iterator<Item = IpAddr> + '_ {
    vs.real_servers
        .iter()
        .map(|r| r.address)
        .chain(vs.sorry_server.map(|s| s.0))
}

/// Real servers (address) that have no MAC yet.
pub fn unresolved(cfg: &Config, macs: &HashMap<IpAddr, [u8; 6]>) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = cfg
        .virtual_servers
        .iter()
        .flat_map(next_hop_addresses)
        .filter(|a| !macs.contains_key(a))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A service's flags in the steering maps: NAT and FullNAT ones learn their clients'
/// MACs; DR, TUN and NAT ones may take the fast path (`fast`).
fn service_flags(cfg: &Config, vs: &xvs_config::VirtualServer) -> u32 {
    let mut flags = 0;
    if matches!(vs.forwarding, CfgForwarding::Nat | CfgForwarding::FullNat) {
        flags |= xvs_bpf::abi::SVC_F_NAT;
    }
    if fast(cfg, vs) {
        flags |= xvs_bpf::abi::SVC_F_FAST;
    }
    flags
}

/// The steering program's IPv4 services: every port of every virtual server, NAT ones
/// flagged so their clients' MACs are learned.
pub fn steering_services(cfg: &Config) -> Vec<(xvs_bpf::abi::SvcKey, u32)> {
    cfg.virtual_servers
        .iter()
        .filter_map(|vs| match vs.address {
            IpAddr::V4(a) => Some((vs, a)),
            IpAddr::V6(_) => None,
        })
        .flat_map(|(vs, addr)| {
            let flags = service_flags(cfg, vs);
            vs.ports.iter().map(move |&p| {
                (
                    xvs_bpf::abi::SvcKey::new(addr, p, vs.protocol.number()),
                    flags,
                )
            })
        })
        .collect()
}

/// The steering program's IPv6 services, flagged as IPv4's.
pub fn steering_services6(cfg: &Config) -> Vec<(xvs_bpf::abi::Svc6Key, u32)> {
    cfg.virtual_servers
        .iter()
        .filter_map(|vs| match vs.address {
            IpAddr::V6(a) => Some((vs, a)),
            IpAddr::V4(_) => None,
        })
        .flat_map(|(vs, addr)| {
            vs.ports.iter().map(move |&p| {
                let key = xvs_bpf::abi::Svc6Key::new(addr, p, vs.protocol.number());
                (key, service_flags(cfg, vs))
            })
        })
        .collect()
}

/// The steering program's NAT map: which service each NAT real server's replies answer
/// for, and what they become. Each counts its outbound frames in the slot of its id.
pub fn nat_backends(
    cfg: &Config,
    local_mac: [u8; 6],
    out_ifindex: u32,
    registry: &mut DestRegistry,
) -> Vec<(xvs_bpf::abi::NatKey, xvs_bpf::abi::NatValue)> {
    let mut out = Vec::new();
    for vs in cfg
        .virtual_servers
        .iter()
        .filter(|v| v.forwarding == CfgForwarding::Nat)
    {
        // A virtual server and its real servers are of one family (the configuration).
        let vip = vs.address;
        for rs in vs
            .real_servers
            .iter()
            .filter(|r| r.address.is_ipv6() == vip.is_ipv6())
        {
            let rip = rs.address;
            let id = registry.id(DestKey::of(vs, rs));
            for &vport in &vs.ports {
                let rport = if rs.port == 0 { vport } else { rs.port };
                out.push((
                    xvs_bpf::abi::NatKey {
                        addr: rip,
                        port: rport,
                        proto: vs.protocol.number(),
                    },
                    xvs_bpf::abi::NatValue {
                        vip,
                        vport,
                        src_mac: local_mac,
                        out_ifindex,
                        stats_slot: id,
                    },
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "interface: eth0
virtual_servers:
  - { name: web, address: 10.0.0.100, port: 80, protocol: tcp, real_servers: [ { address: 10.0.0.11 }, { address: 10.0.0.12, weight: 2 } ] }
  - { name: dns, address: 10.0.0.100, port: 53, protocol: udp, scheduler: rr, real_servers: [ { address: 10.0.0.11 } ] }
";

    #[test]
    fn ids_are_stable_and_unresolved_not_schedulable() {
        let cfg = xvs_config::parse("t", CFG).unwrap();
        let mut reg = DestRegistry::default();
        let mut macs = HashMap::new();
        macs.insert(Ipv4Addr::new(10, 0, 0, 11).into(), [2, 0, 0, 0, 0, 11]);
        let local = Local::for_tests();
        let none = Overload::default();
        let snap = |g, macs: &HashMap<_, _>, drains: &Drains, reg: &mut DestRegistry| {
            let quiet = Quiet {
                drains,
                overload: &none,
            };
            build(g, &cfg, local, macs, &HealthMap::new(), quiet, reg).unwrap()
        };
        let s1 = snap(1, &macs, &Drains::default(), &mut reg);
        assert_eq!(s1.services.len(), 2);
        assert_eq!(
            (s1.services[0].stats_id, s1.services[1].stats_id),
            (0, 1),
            "each service its own counter slot"
        );
        assert_eq!(s1.services[0].dests, vec![0, 1]);
        assert_eq!(
            s1.services[1].dests,
            vec![2],
            "same address in another service is another dest"
        );
        assert!(s1.dest(0).unwrap().schedulable());
        assert!(!s1.dest(1).unwrap().schedulable(), "no MAC yet");
        assert_eq!(
            unresolved(&cfg, &macs),
            vec![IpAddr::from(Ipv4Addr::new(10, 0, 0, 12))]
        );
        macs.insert(Ipv4Addr::new(10, 0, 0, 12).into(), [2, 0, 0, 0, 0, 12]);
        let s2 = snap(2, &macs, &Drains::default(), &mut reg);
        assert_eq!(s2.services[0].dests, vec![0, 1]);
        assert_eq!(s2.services[1].stats_id, 1, "kept across snapshots");
        assert!(s2.dest(1).unwrap().schedulable());
        assert_eq!(reg.key_of(2).unwrap().port, 53);
        // Drained: the same id, still in the pool, weight 0.
        let mut drains = Drains::default();
        let rs = super::super::drain::Target::parse("10.0.0.12 --virtual web")
            .unwrap()
            .resolve(&cfg)
            .unwrap();
        drains.set(rs, true);
        let s3 = snap(3, &macs, &drains, &mut reg);
        assert_eq!(s3.services[0].dests, vec![0, 1]);
        assert_eq!(s3.dest(1).unwrap().weight, 0);
        assert_eq!(s3.dest(0).unwrap().weight, 1);
    }

    /// NAT flows take the fast path on one arm, and on two only when the user said
    /// `xdp`; the service flag and the snapshot agree.
    #[test]
    fn nat_takes_the_fast_path_where_redirects_are_delivered() {
        let cfg = |extra: &str| {
            let y = format!("interface: eth0\n{extra}virtual_servers:\n  - {{ name: n, address: 10.0.0.100, port: 80, protocol: tcp, forwarding: nat, real_servers: [ {{ address: 10.0.0.11 }} ] }}\n");
            xvs_config::parse("t", &y).unwrap()
        };
        for (extra, on) in [
            ("", true),
            ("internal_interface: eth1\n", false),
            ("internal_interface: eth1\nfast_path: xdp\n", true),
        ] {
            let c = cfg(extra);
            assert_eq!(fast_nat(&c), on, "{extra}");
            let flag = service_flags(&c, &c.virtual_servers[0]) & xvs_bpf::abi::SVC_F_FAST;
            assert_eq!(flag != 0, on, "{extra}");
        }
    }

    /// The steering flags: NAT and FullNAT learn clients' MACs; DR, and TUN and NAT over
    /// IPv4, may take the fast path, unless it is off or the service persistent.
    #[test]
    fn fast_path_flags_follow_what_the_program_can_rewrite() {
        use xvs_bpf::abi::{SVC_F_FAST as FAST, SVC_F_NAT as NAT};
        let vs = |fwd: &str, addr: &str, rs: &str, extra: &str| {
            format!("  - {{ name: s{}, address: \"{addr}\", port: 80, protocol: tcp, forwarding: {fwd}{extra}, real_servers: [ {{ address: \"{rs}\" }} ] }}\n", fwd.len() + addr.len() + extra.len())
        };
        let flags = |fast_path: &str, server: String| {
            let y = format!("interface: eth0\nfast_path: {fast_path}\nvirtual_servers:\n{server}");
            let cfg = xvs_config::parse("t", &y).unwrap();
            service_flags(&cfg, &cfg.virtual_servers[0])
        };
        let v4 = ("10.0.0.100", "10.0.0.11");
        let v6 = ("2001:db8::100", "2001:db8::11");
        assert_eq!(flags("auto", vs("dr", v4.0, v4.1, "")), FAST);
        assert_eq!(flags("auto", vs("dr", v6.0, v6.1, "")), FAST);
        assert_eq!(flags("auto", vs("tun", v4.0, v4.1, "")), FAST);
        assert_eq!(flags("auto", vs("tun", v6.0, v6.1, "")), 0);
        assert_eq!(flags("xdp", vs("nat", v4.0, v4.1, "")), NAT | FAST);
        assert_eq!(flags("auto", vs("nat", v6.0, v6.1, "")), NAT);
        assert_eq!(flags("off", vs("nat", v4.0, v4.1, "")), NAT);
        assert_eq!(
            flags("auto", vs("nat", v4.0, v4.1, ", persistence_timeout: 300")),
            NAT
        );
    }
}
