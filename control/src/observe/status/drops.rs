//! `xvs status --drops`: what the director refused, and why — the steering program's
//! drops (and what it left to the kernel) and the workers' drops, by reason, since start.

use std::fmt::Write;

use xvs_bpf::abi::XdpCounters;
use xvs_dataplane::DropReason;

use crate::observe::counters::AllWorkers;

/// The text (or JSON) of the drop counters; zero rows are left out of the text.
pub fn render_drops(xdp: Option<&XdpCounters>, workers: AllWorkers<'_>, json: bool) -> String {
    let xdp_rows: Vec<(&str, u64)> = xdp
        .map(|x| {
            x.iter()
                .filter(|(l, _)| l.starts_with("drop_") || l.starts_with("pass_"))
                .collect()
        })
        .unwrap_or_default();
    let worker_rows: Vec<(&str, u64)> = DropReason::ALL
        .iter()
        .map(|r| (r.label(), workers.drops(*r)))
        .collect();
    if json {
        let obj = super::counts_object;
        let v = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "steering_program": obj(&xdp_rows),
            "workers": obj(&worker_rows),
        });
        return serde_json::to_string_pretty(&v)
            .map_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"), |s| s + "\n");
    }
    let mut s = String::new();
    let _ = writeln!(s, "Where            Outcome                        Packets");
    for (where_, rows) in [("steering (XDP)", &xdp_rows), ("workers", &worker_rows)] {
        for (label, n) in rows.iter().filter(|(_, n)| *n > 0) {
            let _ = writeln!(s, "{where_:<16} {label:<30} {n:>8}");
        }
    }
    if xdp_rows.iter().chain(&worker_rows).all(|(_, n)| *n == 0) {
        let _ = writeln!(s, "(nothing dropped or left to the kernel)");
    }
    s
}
