//! Counters as a table for people: summed over workers at the moment of reading.

use std::fmt::Write;
use std::sync::Arc;

use xvs_bpf::abi::{NatOut, XdpCounters};
use xvs_config::{Config, RealServer, VirtualServer};
use xvs_dataplane::{DropReason, WorkerCounters};

use super::counters::AllWorkers;
use crate::ids::{DestKey, DestRegistry};

/// The ipvsadm-like table with per-real-server connections, packets and bytes, then the
/// worker and steering counters.
pub fn render(
    cfg: &Config,
    registry: &mut DestRegistry,
    workers: &[Arc<WorkerCounters>],
    xdp: Option<&XdpCounters>,
    fast_in: &[NatOut],
) -> String {
    let all = AllWorkers(workers);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<28} {:>10} {:>9} {:>9} {:>12} {:>14}",
        "virtual server / real server", "conns", "active", "inactive", "packets", "bytes"
    );
    for vs in &cfg.virtual_servers {
        virtual_server(&mut s, vs);
        for rs in &vs.real_servers {
            let id = registry.id(DestKey::of(vs, rs)) as usize;
            real_server(&mut s, rs, all, id, fast_in);
        }
    }
    worker_lines(&mut s, all);
    drops_line(&mut s, all);
    if let Some(x) = xdp {
        steering_line(&mut s, x);
    }
    s
}

/// A virtual server's line: name, address and ports, protocol, scheduler, forwarding.
fn virtual_server(s: &mut String, vs: &VirtualServer) {
    let _ = writeln!(
        s,
        "{} {}/{} {} {}",
        vs.name,
        crate::ids::endpoint(
            vs.address,
            vs.ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        vs.protocol.as_str(),
        vs.scheduler.as_str(),
        vs.forwarding.as_str()
    );
}

/// Real server `id`'s row, with what the XDP fast path forwarded added to its traffic.
fn real_server(
    s: &mut String,
    rs: &RealServer,
    all: AllWorkers<'_>,
    id: usize,
    fast_in: &[NatOut],
) {
    let get = |f: fn(&xvs_dataplane::counters::DestCounters) -> u64| all.dest(id, f);
    let _ = writeln!(
        s,
        "  -> {:<23} {:>10} {:>9} {:>9} {:>12} {:>14}   weight {}",
        crate::ids::endpoint(rs.address, rs.port),
        get(|d| d.conns.get()),
        get(|d| d.active.get()),
        get(|d| d.inactive.get()),
        get(|d| d.packets.get()) + fast_in.get(id).map_or(0, |n| n.packets),
        get(|d| d.bytes.get()) + fast_in.get(id).map_or(0, |n| n.bytes),
        rs.weight
    );
}

/// The workers' counters, summed.
fn worker_lines(s: &mut String, all: AllWorkers<'_>) {
    let _ = writeln!(
        s,
        "workers: {} rx {} tx {} batches {} kicks {} flows created {} expired {} evicted {} rescheduled {}",
        all.0.len(),
        all.sum(|w| w.rx_packets.get()),
        all.sum(|w| w.tx_packets.get()),
        all.sum(|w| w.rx_batches.get()),
        all.sum(|w| w.tx_kicks.get()),
        all.sum(|w| w.flows_created.get()),
        all.sum(|w| w.flows_expired.get()),
        all.sum(|w| w.flows_evicted.get()),
        all.sum(|w| w.flows_rescheduled.get()),
    );
    let _ = writeln!(
        s,
        "icmp frag needed sent {}",
        all.sum(|w| w.icmp_frag_needed.get())
    );
}

/// The reasons frames were dropped for, those that happened only.
fn drops_line(s: &mut String, all: AllWorkers<'_>) {
    let drops: Vec<String> = DropReason::ALL
        .iter()
        .map(|r| (r, all.drops(*r)))
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
}

/// What the steering program did, the outcomes that happened only.
fn steering_line(s: &mut String, x: &XdpCounters) {
    let parts: Vec<String> = x
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(l, n)| format!("{l} {n}"))
        .collect();
    let _ = writeln!(s, "steering (XDP): {}", parts.join(", "));
}
