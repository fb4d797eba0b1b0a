//! The text (as ipvsadm prints it) and JSON of the table, `--stats` and `--rate` views.

use std::fmt::Write;

use super::request::{Request, View};
use super::rows::VirtualServerRow;

/// The answer to a `status` request.
pub fn render(rows: &[VirtualServerRow], req: Request) -> String {
    if req.json {
        return match serde_json::to_string_pretty(&serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "virtual_servers": rows,
        })) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
        };
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "xvs {} (IP Virtual Server in XDP)",
        env!("CARGO_PKG_VERSION")
    );
    let _ = match req.view {
        View::Table => writeln!(s, "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"),
        View::Stats => writeln!(s, "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port"),
        View::Rate => writeln!(s, "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port"),
        // Answered by `render_connections`, `render_drops` and `render_sync`.
        View::Connections | View::Drops | View::Sync | View::Dataplane => Ok(()),
    };
    for vs in rows {
        let proto = vs.protocol.to_uppercase();
        let ports: Vec<String> = vs.ports.iter().map(u16::to_string).collect();
        let local = crate::ids::endpoint(vs.address, ports.join(","));
        match req.view {
            View::Table => {
                let flags = vs
                    .persistence_timeout
                    .map_or(String::new(), |t| format!(" persistent {t}"));
                let _ = writeln!(s, "{proto:<4} {local} {}{flags}", vs.scheduler);
                for rs in &vs.real_servers {
                    // A real server out of the pool (its check failed) is not listed, as ipvsadm.
                    let Some(w) = rs.weight else { continue };
                    let name = crate::ids::endpoint(rs.address, rs.port);
                    let drained = if rs.drained { " drained" } else { "" };
                    let over = if rs.overloaded { " overloaded" } else { "" };
                    let _ = writeln!(
                        s,
                        "  -> {name:<28} {:<7} {w:<6} {:<10} {}{drained}{over}",
                        vs.forwarding, rs.active_conns, rs.inactive_conns
                    );
                }
            }
            View::Stats => {
                let t = vs.totals;
                let _ = writeln!(
                    s,
                    "{proto:<4} {local:<28} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    t.conns, t.in_packets, t.out_packets, t.in_bytes, t.out_bytes
                );
                for rs in &vs.real_servers {
                    let name = crate::ids::endpoint(rs.address, rs.port);
                    let t = rs.totals;
                    let _ = writeln!(
                        s,
                        "  -> {name:<28} {:>8} {:>8} {:>8} {:>8} {:>8}",
                        t.conns, t.in_packets, t.out_packets, t.in_bytes, t.out_bytes
                    );
                }
            }
            View::Connections | View::Drops | View::Sync | View::Dataplane => {}
            View::Rate => {
                let r = vs.rate.unwrap_or_default();
                let _ = writeln!(
                    s,
                    "{proto:<4} {local:<28} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
                    r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps
                );
                for rs in &vs.real_servers {
                    let name = crate::ids::endpoint(rs.address, rs.port);
                    let r = rs.rate.unwrap_or_default();
                    let _ = writeln!(
                        s,
                        "  -> {name:<28} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
                        r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps
                    );
                }
            }
        }
    }
    s
}
