//! The rows of `xvs status`: every virtual server and its real servers, with weights,
//! connection gauges, totals and rates, in configuration order.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use xvs_bpf::abi::NatOut;
use xvs_config::{Config, Forwarding};
use xvs_dataplane::WorkerCounters;

use super::rates::{Rate, Rates};
use crate::daemon::drain::Drains;
use crate::daemon::overload::Overload;
use crate::ids::{DestKey, DestRegistry};
use crate::observe::counters::AllWorkers;

/// Connections, packets and bytes of a real server (or a virtual server: the sum). "In"
/// is client to server (the workers count it); "out" is server to client, which crosses
/// the director only in NAT and FullNAT (the steering program counts it). DR and TUN replies go
/// straight to the client, so their "out" stays 0, as in IPVS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

impl Totals {
    pub(super) fn add(self, o: Totals) -> Totals {
        Totals {
            conns: self.conns + o.conns,
            in_packets: self.in_packets + o.in_packets,
            out_packets: self.out_packets + o.out_packets,
            in_bytes: self.in_bytes + o.in_bytes,
            out_bytes: self.out_bytes + o.out_bytes,
        }
    }
}

/// What the steering program counted for each real server (by id), read at the moment
/// of asking: NAT replies it sent out, and packets its fast path forwarded in (added to
/// the workers' "in"). Ids past an end counted nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Steered<'a> {
    pub out: &'a [NatOut],
    pub fast_in: &'a [NatOut],
}

#[derive(Debug, Serialize)]
pub struct RealServerRow {
    pub address: IpAddr,
    pub port: u16,
    /// False while its health check has it out of the pool.
    pub in_pool: bool,
    /// The weight scheduled now (0 when a failed check inhibits it, or drained).
    pub weight: Option<u32>,
    /// Drained by the operator (`xvs drain`): no new connections until `xvs undrain`;
    /// the connection gauges say how many are still open.
    pub drained: bool,
    /// Past its `uthreshold` (and not yet below its `lthreshold`): no new connections.
    pub overloaded: bool,
    pub active_conns: u64,
    pub inactive_conns: u64,
    /// Its connection thresholds (upper, lower), if set.
    pub thresholds: Option<(u32, u32)>,
    /// The sorry server, in the pool because no real server is.
    pub sorry: bool,
    /// In a word: `up`, `down` (its check failed), `drained`, `overloaded`,
    /// `unresolved` (no MAC address yet) or `sorry`.
    pub state: &'static str,
    /// Since when (seconds since the Unix epoch) it has been in that state, as far as
    /// this process saw (`Notes`).
    pub since: Option<u64>,
    /// Its health check's last verdict, and why.
    pub last_check: Option<String>,
    pub totals: Totals,
    pub rate: Option<Rate>,
}

impl RealServerRow {
    /// The state word from the flags (see `state`).
    fn state_of(&self, resolved: bool) -> &'static str {
        if self.sorry {
            "sorry"
        } else if !self.in_pool {
            "down"
        } else if self.drained {
            "drained"
        } else if self.overloaded {
            "overloaded"
        } else if !resolved {
            "unresolved"
        } else {
            "up"
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VirtualServerRow {
    pub name: String,
    pub protocol: &'static str,
    pub address: IpAddr,
    pub ports: Vec<u16>,
    pub scheduler: &'static str,
    pub persistence_timeout: Option<u32>,
    /// The persistence granularity as ipvsadm shows it (`mask`): an IPv4 netmask or an
    /// IPv6 prefix length, when not a single address.
    pub persistence_mask: Option<String>,
    /// Scheduler flags as ipvsadm names them (`sh-port`, `mh-fallback`, ...).
    pub scheduler_flags: Vec<&'static str>,
    /// One-packet scheduling.
    pub ops: bool,
    pub forwarding: &'static str,
    /// FullNAT: each local address, with the pairs its connections hold now and how
    /// many its pool has (empty for the other methods).
    pub local_addresses: Vec<LocalRow>,
    pub totals: Totals,
    pub rate: Option<Rate>,
    pub real_servers: Vec<RealServerRow>,
}

/// One FullNAT local address: `ports_in_use` of its `ports` (every worker's). New
/// connections are dropped (`fullnat_no_port`) when the two meet.
#[derive(Debug, Serialize)]
pub struct LocalRow {
    pub address: IpAddr,
    pub ports_in_use: u64,
    pub ports: u64,
}

/// A FullNAT virtual server's local addresses as `LocalRow`s.
fn local_rows(
    vs: &xvs_config::VirtualServer,
    registry: &DestRegistry,
    workers: &[Arc<WorkerCounters>],
) -> Vec<LocalRow> {
    let Some(l) = &vs.local else {
        return Vec::new();
    };
    l.addresses
        .iter()
        .map(|a| {
            let id = registry.local_ids().iter().position(|x| x == a);
            let in_use = id.map_or(0, |id| {
                AllWorkers(workers).sum(|c| c.local_ports.get(id).map_or(0, |g| g.get()))
            });
            LocalRow {
                address: *a,
                ports_in_use: in_use,
                ports: u64::from(l.ports.1 - l.ports.0) + 1,
            }
        })
        .collect()
}

/// Real server `id`'s totals: in summed over the workers, out from the steering program.
pub(super) fn totals(workers: &[Arc<WorkerCounters>], bpf: Steered<'_>, id: usize) -> Totals {
    let w = AllWorkers(workers);
    let o = bpf.out.get(id).copied().unwrap_or_default();
    let f = bpf.fast_in.get(id).copied().unwrap_or_default();
    Totals {
        conns: w.dest(id, |d| d.conns.get()),
        in_packets: w.dest(id, |d| d.packets.get()) + f.packets,
        out_packets: o.packets,
        in_bytes: w.dest(id, |d| d.bytes.get()) + f.bytes,
        out_bytes: o.bytes,
    }
}

/// What is scheduled now: the published snapshot, the operator's drains, and the real
/// servers past their connection threshold.
#[derive(Clone, Copy)]
pub struct Pool<'a> {
    pub snap: &'a xvs_dataplane::Snapshot,
    pub drains: &'a Drains,
    pub overload: &'a Overload,
}

/// The rows, in configuration order.
pub fn rows(
    cfg: &Config,
    pool: Pool<'_>,
    registry: &mut DestRegistry,
    workers: &[Arc<WorkerCounters>],
    bpf: Steered<'_>,
    rates: &Rates,
    now: Instant,
) -> Vec<VirtualServerRow> {
    cfg.virtual_servers
        .iter()
        .map(|vs| {
            let real_servers: Vec<RealServerRow> = vs
                .real_servers
                .iter()
                .map(|rs| {
                    let id = registry.id(DestKey::of(vs, rs));
                    let weight = pool.snap.dest(id).map(|d| d.weight);
                    let resolved = pool.snap.dest(id).is_some_and(|d| d.mac.is_some());
                    let idx = id as usize;
                    let t = totals(workers, bpf, idx);
                    let mut row = RealServerRow {
                        address: rs.address,
                        port: rs.port,
                        in_pool: weight.is_some(),
                        weight,
                        drained: pool.drains.contains(vs, rs),
                        overloaded: pool.overload.contains(&DestKey::of(vs, rs)),
                        active_conns: AllWorkers(workers).dest(idx, |d| d.active.get()),
                        inactive_conns: AllWorkers(workers).dest(idx, |d| d.inactive.get()),
                        thresholds: rs.thresholds.map(|t| (t.upper, t.lower)),
                        sorry: false,
                        state: "",
                        since: None,
                        last_check: None,
                        totals: t,
                        rate: rates.rate(now, idx, t),
                    };
                    row.state = row.state_of(resolved);
                    row
                })
                .chain(sorry_row(vs, pool.snap, workers, bpf, rates, now))
                .collect();
            let totals = real_servers
                .iter()
                .fold(Totals::default(), |a, r| a.add(r.totals));
            let rate = real_servers
                .iter()
                .map(|r| r.rate)
                .try_fold(Rate::default(), |a, r| r.map(|r| a.add(r)));
            VirtualServerRow {
                name: vs.name.clone(),
                protocol: vs.protocol.as_str(),
                address: vs.address,
                ports: vs.ports.clone(),
                scheduler: vs.scheduler.as_str(),
                persistence_timeout: vs.persistence.map(|p| p.timeout),
                persistence_mask: vs.persistence.and_then(|p| mask(vs.address, p)),
                scheduler_flags: scheduler_flags(vs),
                ops: vs.ops,
                forwarding: match vs.forwarding {
                    Forwarding::Dr => "Route",
                    Forwarding::Tun => "Tunnel",
                    Forwarding::Nat => "Masq",
                    // As Alibaba's ipvsadm names it.
                    Forwarding::FullNat => "FullNat",
                },
                local_addresses: local_rows(vs, registry, workers),
                totals,
                rate,
                real_servers,
            }
        })
        .collect()
}

/// ipvsadm's `mask`: shown when persistence groups more than one address.
fn mask(vip: IpAddr, p: xvs_config::Persistence) -> Option<String> {
    match vip {
        IpAddr::V4(_) => {
            (p.granularity != std::net::Ipv4Addr::BROADCAST).then(|| p.granularity.to_string())
        }
        IpAddr::V6(_) => (p.prefix6 != 128).then(|| p.prefix6.to_string()),
    }
}

/// The scheduler flags as ipvsadm prints them: sh's and mh's by name, in its order.
fn scheduler_flags(vs: &xvs_config::VirtualServer) -> Vec<&'static str> {
    let f = vs.scheduler_flags;
    let (fallback, port) = match vs.scheduler {
        xvs_config::Scheduler::Sh => ("sh-fallback", "sh-port"),
        xvs_config::Scheduler::Mh => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    [(f.fallback, fallback), (f.port, port)]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
}

/// The sorry server's row while it takes the service's connections (no real server up),
/// as keepalived puts it in the IPVS table then.
fn sorry_row(
    vs: &xvs_config::VirtualServer,
    snap: &xvs_dataplane::Snapshot,
    workers: &[Arc<WorkerCounters>],
    bpf: Steered<'_>,
    rates: &Rates,
    now: Instant,
) -> Option<RealServerRow> {
    let (addr, port) = vs.sorry_server?;
    let key = crate::ids::service_key(vs);
    let svc = snap.services.iter().find(|s| s.key == key)?;
    let id = *svc.dests.iter().find(|&&id| {
        snap.dest(id)
            .is_some_and(|d| d.addr == addr && d.port == port)
    })?;
    let d = snap.dest(id)?;
    let idx = id as usize;
    let t = totals(workers, bpf, idx);
    Some(RealServerRow {
        address: addr,
        port,
        in_pool: true,
        weight: Some(d.weight),
        drained: false,
        overloaded: false,
        active_conns: AllWorkers(workers).dest(idx, |c| c.active.get()),
        inactive_conns: AllWorkers(workers).dest(idx, |c| c.inactive.get()),
        thresholds: None,
        sorry: true,
        state: "sorry",
        since: None,
        last_check: None,
        totals: t,
        rate: rates.rate(now, idx, t),
    })
}
