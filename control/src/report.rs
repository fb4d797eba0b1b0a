//! Counters as a table for people: summed over workers at the moment of reading.

use std::fmt::Write;
use std::sync::Arc;

use xvs_bpf::abi::XdpCounters;
use xvs_config::Config;
use xvs_dataplane::{DropReason, WorkerCounters};

use crate::publish::{service_key, DestKey, DestRegistry};

fn sum(workers: &[Arc<WorkerCounters>], f: impl Fn(&WorkerCounters) -> u64) -> u64 {
    workers.iter().map(|w| f(w)).sum()
}

/// The ipvsadm-like table with per-real-server connections, packets and bytes, then the
/// worker and steering counters.
pub fn render(
    cfg: &Config,
    registry: &mut DestRegistry,
    workers: &[Arc<WorkerCounters>],
    xdp: Option<&XdpCounters>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<28} {:>10} {:>9} {:>9} {:>12} {:>14}",
        "virtual server / real server", "conns", "active", "inactive", "packets", "bytes"
    );
    for vs in &cfg.virtual_servers {
        let key = service_key(vs);
        let _ = writeln!(
            s,
            "{} {}:{}/{} {} {}",
            vs.name,
            vs.address,
            vs.ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(","),
            vs.protocol.as_str(),
            vs.scheduler.as_str(),
            vs.forwarding.as_str()
        );
        for rs in &vs.real_servers {
            let id = registry.id(DestKey {
                service: key,
                addr: rs.address,
                port: rs.port,
            }) as usize;
            let get = |f: fn(&xvs_dataplane::counters::DestCounters) -> u64| {
                sum(workers, |w| w.dests.get(id).map_or(0, f))
            };
            let _ = writeln!(
                s,
                "  -> {:<23} {:>10} {:>9} {:>9} {:>12} {:>14}   weight {}",
                format!("{}:{}", rs.address, rs.port),
                get(|d| d.conns.get()),
                get(|d| d.active.get()),
                get(|d| d.inactive.get()),
                get(|d| d.packets.get()),
                get(|d| d.bytes.get()),
                rs.weight
            );
        }
    }
    let _ = writeln!(
        s,
        "workers: {} rx {} tx {} batches {} kicks {} flows created {} expired {} evicted {} rescheduled {}",
        workers.len(),
        sum(workers, |w| w.rx_packets.get()),
        sum(workers, |w| w.tx_packets.get()),
        sum(workers, |w| w.rx_batches.get()),
        sum(workers, |w| w.tx_kicks.get()),
        sum(workers, |w| w.flows_created.get()),
        sum(workers, |w| w.flows_expired.get()),
        sum(workers, |w| w.flows_evicted.get()),
        sum(workers, |w| w.flows_rescheduled.get()),
    );
    let _ = writeln!(
        s,
        "icmp frag needed sent {}",
        sum(workers, |w| w.icmp_frag_needed.get())
    );
    let drops: Vec<String> = DropReason::ALL
        .iter()
        .map(|r| (r, sum(workers, |w| w.drops(*r))))
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{} {n}", r.label()))
        .collect();
    let _ = writeln!(
        s,
        "drops: {}",
        if drops.is_empty() {
            "none".into()
        } else {
            drops.join(", ")
        }
    );
    if let Some(x) = xdp {
        let parts: Vec<String> = x
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(l, n)| format!("{l} {n}"))
            .collect();
        let _ = writeln!(s, "steering (XDP): {}", parts.join(", "));
    }
    s
}

/// `ipvsadm -Ln` (and `--stats`) as xvs's `status`: virtual servers with their scheduler
/// and persistence, real servers with forwarding method, weight (as scheduled now: 0 when
/// a check failed with inhibit_on_failure), active and inactive connections.
pub fn ipvsadm(
    cfg: &Config,
    snap: &xvs_dataplane::Snapshot,
    registry: &mut DestRegistry,
    workers: &[Arc<WorkerCounters>],
    stats: bool,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "xvs {} (IP Virtual Server in XDP)",
        env!("CARGO_PKG_VERSION")
    );
    if stats {
        let _ = writeln!(
            s,
            "Prot LocalAddress:Port               Conns   InPkts  InBytes\n  -> RemoteAddress:Port"
        );
    } else {
        let _ = writeln!(s, "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
    }
    for vs in &cfg.virtual_servers {
        let key = service_key(vs);
        let proto = vs.protocol.as_str().to_uppercase();
        let ports = vs
            .ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let local = format!("{}:{ports}", vs.address);
        let ids: Vec<(String, usize, Option<u32>)> = vs
            .real_servers
            .iter()
            .map(|rs| {
                let id = registry.id(DestKey {
                    service: key,
                    addr: rs.address,
                    port: rs.port,
                });
                let weight = snap.dest(id).map(|d| d.weight);
                (format!("{}:{}", rs.address, rs.port), id as usize, weight)
            })
            .collect();
        let get = |id: usize, f: fn(&xvs_dataplane::counters::DestCounters) -> u64| {
            sum(workers, |w| w.dests.get(id).map_or(0, f))
        };
        if stats {
            let (c, p, b) = ids.iter().fold((0, 0, 0), |(c, p, b), (_, id, _)| {
                (
                    c + get(*id, |d| d.conns.get()),
                    p + get(*id, |d| d.packets.get()),
                    b + get(*id, |d| d.bytes.get()),
                )
            });
            let _ = writeln!(s, "{proto:<4} {local:<28} {c:>8} {p:>8} {b:>8}");
            for (name, id, _) in &ids {
                let _ = writeln!(
                    s,
                    "  -> {name:<28} {:>8} {:>8} {:>8}",
                    get(*id, |d| d.conns.get()),
                    get(*id, |d| d.packets.get()),
                    get(*id, |d| d.bytes.get())
                );
            }
        } else {
            let flags = vs
                .persistence
                .map_or(String::new(), |p| format!(" persistent {}", p.timeout));
            let _ = writeln!(s, "{proto:<4} {local} {}{flags}", vs.scheduler.as_str());
            let fwd = match vs.forwarding {
                xvs_config::Forwarding::Dr => "Route",
                xvs_config::Forwarding::Tun => "Tunnel",
                xvs_config::Forwarding::Nat => "Masq",
            };
            for (name, id, weight) in &ids {
                // A real server out of the pool (its check failed) is not listed, as ipvsadm.
                let Some(w) = weight else { continue };
                let _ = writeln!(
                    s,
                    "  -> {name:<28} {fwd:<7} {w:<6} {:<10} {}",
                    get(*id, |d| d.active.get()),
                    get(*id, |d| d.inactive.get())
                );
            }
        }
    }
    s
}
