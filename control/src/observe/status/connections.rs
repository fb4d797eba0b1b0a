//! `--connections` (ipvsadm -Lnc): the workers' flow copies as rows, and their text.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::Serialize;

use crate::ids::DestRegistry;

/// Most connections `--connections` lists (over all workers): the copy is made by the
/// workers between batches, so it stays small.
pub const CONNECTIONS_LIMIT: usize = 1000;

/// One line of `ipvsadm -Lnc`.
#[derive(Debug, Serialize)]
pub struct ConnectionRow {
    pub protocol: &'static str,
    pub expires_in: u32,
    pub state: &'static str,
    pub source: String,
    #[serde(rename = "virtual")]
    pub virtual_: String,
    pub destination: String,
    /// A FullNAT connection's local address and port (the source the real server sees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
}

/// The workers' copies as rows; persistence templates show as ipvsadm shows them
/// (state NONE, the client network, port 0).
pub fn connection_rows(
    answers: &[Arc<xvs_dataplane::flow::dump::Answer>],
    registry: &DestRegistry,
) -> Vec<ConnectionRow> {
    let names: std::collections::HashMap<u32, (IpAddr, u16)> = registry
        .all()
        .map(|(k, id)| (*id, (k.addr, k.port)))
        .collect();
    let mut rows: Vec<ConnectionRow> = answers
        .iter()
        .flat_map(|a| a.flows.iter())
        .map(|f| {
            let k = f.key;
            let proto = k.proto & 0x7f;
            let destination = match names.get(&f.dest) {
                Some((addr, port)) => {
                    let port = if *port == 0 { k.dport } else { *port };
                    SocketAddr::new(*addr, port).to_string()
                }
                None => format!("(real server {})", f.dest),
            };
            ConnectionRow {
                protocol: match proto {
                    6 => "TCP",
                    17 => "UDP",
                    _ => "IP",
                },
                expires_in: f.expires_in,
                state: match (f.template, proto) {
                    (false, 6) => xvs_dataplane::flow::TcpState::from_u8(f.state).name(),
                    (false, 17) => "UDP",
                    _ => "NONE",
                },
                source: SocketAddr::new(k.saddr, k.sport).to_string(),
                virtual_: SocketAddr::new(k.daddr, k.dport).to_string(),
                destination,
                local: f.local.map(|(a, p)| SocketAddr::new(a, p).to_string()),
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.virtual_, &a.source).cmp(&(&b.virtual_, &b.source)));
    rows
}

/// `--connections`: at most `CONNECTIONS_LIMIT` lines, and how many were left out.
pub fn render_connections(rows: &[ConnectionRow], live: usize, json: bool) -> String {
    if json {
        return match serde_json::to_string_pretty(&serde_json::json!({
            "connections": rows,
            "live": live,
            "shown": rows.len(),
        })) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
        };
    }
    // ipvsadm -Lnc's header and columns (ipvsadm.c's list_conn and print_conn):
    // "%-3s %-6s %-11s %-18s %-18s %s".
    let mut s = format!(
        "IPVS connection entries\npro expire {:<11} {:<18} {:<18} destination\n",
        "state", "source", "virtual"
    );
    for r in rows {
        let expire = format!("{:02}:{:02}", r.expires_in / 60, r.expires_in % 60);
        let _ = write!(
            s,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            r.protocol, expire, r.state, r.source, r.virtual_, r.destination
        );
        // FullNAT's local pair, after ipvsadm's columns.
        let _ = match &r.local {
            Some(l) => writeln!(s, " from {l}"),
            None => writeln!(s),
        };
    }
    if live > rows.len() {
        let _ = writeln!(s, "({} more not shown)", live - rows.len());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DestKey;
    use std::net::Ipv4Addr;

    #[test]
    fn connection_rows_read_like_ipvsadm_lnc() {
        use xvs_dataplane::flow::dump::{Answer, DumpedFlow};
        use xvs_dataplane::flow::FlowKey;
        let mut registry = DestRegistry::default();
        let svc = xvs_dataplane::ServiceKey {
            addr: Ipv4Addr::new(10, 0, 0, 100).into(),
            port: 80,
            proto: 6,
        };
        let id = registry.id(DestKey {
            service: svc,
            addr: Ipv4Addr::new(10, 0, 0, 11).into(),
            port: 0,
        });
        let vip = u32::from(Ipv4Addr::new(10, 0, 0, 100));
        let flow = |saddr: [u8; 4], sport, dport, proto, state, template| DumpedFlow {
            key: (&FlowKey::new(u32::from(Ipv4Addr::from(saddr)), vip, sport, dport, proto)).into(),
            dest: id,
            expires_in: 125,
            state,
            template,
            local: None,
        };
        let answers = vec![
            Arc::new(Answer {
                seq: 1,
                flows: vec![flow([10, 0, 0, 1], 40000, 8080, 6, 1, false)],
                live: 1,
            }),
            Arc::new(Answer {
                seq: 1,
                flows: vec![
                    flow([10, 0, 0, 2], 5353, 53, 17, 0, false),
                    flow([10, 0, 0, 0], 0, 80, 0x80 | 6, 0, true),
                ],
                live: 5,
            }),
        ];
        let rows = connection_rows(&answers, &registry);
        let text = render_connections(&rows, 6, false);
        // ipvsadm -Lnc, byte for byte (its header, then "%-3s %-6s %-11s %-18s %-18s
        // %s"); port 0 in the configuration keeps the packet's port.
        assert!(
            text.starts_with(
                "IPVS connection entries\n\
                 pro expire state       source             virtual            destination\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nTCP 02:05  ESTABLISHED 10.0.0.1:40000     10.0.0.100:8080    10.0.0.11:8080\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nUDP 02:05  UDP         10.0.0.2:5353      10.0.0.100:53      10.0.0.11:53\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\nTCP 02:05  NONE        10.0.0.0:0         10.0.0.100:80      10.0.0.11:80\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("(3 more not shown)\n"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&render_connections(&rows, 6, true)).unwrap();
        assert_eq!(json["shown"], 3);
        assert_eq!(json["connections"][1]["virtual"], "10.0.0.100:80");
        assert_eq!(json["connections"][1]["state"], "NONE");
    }
}
