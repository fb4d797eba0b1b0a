//! Counters as a table for people: summed over workers at the moment of reading.

use std::fmt::Write;
use std::sync::Arc;

use xvs_bpf::abi::XdpCounters;
use xvs_config::Config;
use xvs_dataplane::{DropReason, WorkerCounters};

use crate::publish::{DestKey, DestRegistry};

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
            let id = registry.id(DestKey::of(vs, rs)) as usize;
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
