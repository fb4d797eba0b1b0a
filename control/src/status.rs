//! `xvs status`: the virtual and real servers as `ipvsadm -Ln` shows them, with the
//! `--stats` (totals) and `--rate` (per second, over the last seconds) views, as text or JSON.
//! Everything is summed over the workers' own counters at the moment of asking.

use std::collections::VecDeque;
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use xvs_config::{Config, Forwarding};
use xvs_dataplane::WorkerCounters;

use xvs_bpf::abi::NatOut;

use crate::publish::{DestKey, DestRegistry};

/// How often the daemon samples the counters for `--rate`.
pub const RATE_SAMPLE: Duration = Duration::from_secs(2);
/// Samples kept: the rate is over the last 8 to 10 seconds.
const RATE_SAMPLES: usize = 5;

/// Which table the text shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Table,
    Stats,
    Rate,
    Connections,
}

/// A parsed `status` command line: `status [--stats|--rate|--connections] [--json]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub view: View,
    pub json: bool,
}

impl Request {
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        if words.next() != Some("status") {
            return Err(format!("not a status command: {line:?}"));
        }
        let mut req = Request {
            view: View::Table,
            json: false,
        };
        for w in words {
            match w {
                "--stats" | "--rate" | "--connections" if req.view != View::Table => {
                    return Err("status: --stats, --rate and --connections are exclusive\n".into())
                }
                "--stats" => req.view = View::Stats,
                "--rate" => req.view = View::Rate,
                "--connections" => req.view = View::Connections,
                "--json" => req.json = true,
                other => {
                    return Err(format!(
                    "status: unknown option {other:?} (--stats, --rate, --connections, --json)\n"
                ))
                }
            }
        }
        Ok(req)
    }
}

/// Connections, packets and bytes of a real server (or a virtual server: the sum). "In"
/// is client to server (the workers count it); "out" is server to client, which crosses
/// the director only in NAT (the steering program counts it). DR and TUN replies go
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
    fn add(self, o: Totals) -> Totals {
        Totals {
            conns: self.conns + o.conns,
            in_packets: self.in_packets + o.in_packets,
            out_packets: self.out_packets + o.out_packets,
            in_bytes: self.in_bytes + o.in_bytes,
            out_bytes: self.out_bytes + o.out_bytes,
        }
    }
}

/// Per second, over the sampled window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rate {
    pub cps: f64,
    pub in_pps: f64,
    pub out_pps: f64,
    pub in_bps: f64,
    pub out_bps: f64,
}

impl Rate {
    fn add(self, o: Rate) -> Rate {
        Rate {
            cps: self.cps + o.cps,
            in_pps: self.in_pps + o.in_pps,
            out_pps: self.out_pps + o.out_pps,
            in_bps: self.in_bps + o.in_bps,
            out_bps: self.out_bps + o.out_bps,
        }
    }
}

/// What the director sent out for each real server (by id; NAT only), read from the
/// steering program at the moment of asking. Ids past its end sent nothing.
pub type Outbound = [NatOut];

#[derive(Debug, Serialize)]
pub struct RealServerRow {
    pub address: Ipv4Addr,
    pub port: u16,
    /// False while its health check has it out of the pool.
    pub in_pool: bool,
    /// The weight scheduled now (0 when a failed check inhibits it).
    pub weight: Option<u32>,
    pub active_conns: u64,
    pub inactive_conns: u64,
    pub totals: Totals,
    pub rate: Option<Rate>,
}

#[derive(Debug, Serialize)]
pub struct VirtualServerRow {
    pub name: String,
    pub protocol: &'static str,
    pub address: Ipv4Addr,
    pub ports: Vec<u16>,
    pub scheduler: &'static str,
    pub persistence_timeout: Option<u32>,
    pub forwarding: &'static str,
    pub totals: Totals,
    pub rate: Option<Rate>,
    pub real_servers: Vec<RealServerRow>,
}

/// One counter of real server `id`, summed over the workers.
fn dest_sum(
    workers: &[Arc<WorkerCounters>],
    id: usize,
    f: fn(&xvs_dataplane::counters::DestCounters) -> u64,
) -> u64 {
    workers.iter().filter_map(|w| w.dests.get(id)).map(f).sum()
}

fn totals(workers: &[Arc<WorkerCounters>], out: &Outbound, id: usize) -> Totals {
    let o = out.get(id).copied().unwrap_or_default();
    Totals {
        conns: dest_sum(workers, id, |d| d.conns.get()),
        in_packets: dest_sum(workers, id, |d| d.packets.get()),
        out_packets: o.packets,
        in_bytes: dest_sum(workers, id, |d| d.bytes.get()),
        out_bytes: o.bytes,
    }
}

/// Counter samples, a few seconds apart, for the per-second view. Real-server ids are
/// never reused, so a sample's index is the same real server at every sample.
#[derive(Debug, Default)]
pub struct Rates {
    samples: VecDeque<(Instant, Vec<Totals>)>,
}

impl Rates {
    pub fn sample(
        &mut self,
        now: Instant,
        registry: &DestRegistry,
        workers: &[Arc<WorkerCounters>],
        out: &Outbound,
    ) {
        let all = (0..registry.issued())
            .map(|id| totals(workers, out, id))
            .collect();
        if self.samples.len() == RATE_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((now, all));
    }

    /// The rate from the oldest kept sample to `current` at `now`; None before any sample.
    pub fn rate(&self, now: Instant, id: usize, current: Totals) -> Option<Rate> {
        let (t0, first) = self.samples.front()?;
        let secs = now.saturating_duration_since(*t0).as_secs_f64();
        // A real server added since that sample started from zero.
        let before = first.get(id).copied().unwrap_or_default();
        if secs < 0.1 {
            return Some(Rate::default());
        }
        let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        Some(Rate {
            cps: per(current.conns, before.conns),
            in_pps: per(current.in_packets, before.in_packets),
            out_pps: per(current.out_packets, before.out_packets),
            in_bps: per(current.in_bytes * 8, before.in_bytes * 8),
            out_bps: per(current.out_bytes * 8, before.out_bytes * 8),
        })
    }
}

/// The rows, in configuration order.
pub fn rows(
    cfg: &Config,
    snap: &xvs_dataplane::Snapshot,
    registry: &mut DestRegistry,
    workers: &[Arc<WorkerCounters>],
    out: &Outbound,
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
                    let weight = snap.dest(id).map(|d| d.weight);
                    let idx = id as usize;
                    let t = totals(workers, out, idx);
                    RealServerRow {
                        address: rs.address,
                        port: rs.port,
                        in_pool: weight.is_some(),
                        weight,
                        active_conns: dest_sum(workers, idx, |d| d.active.get()),
                        inactive_conns: dest_sum(workers, idx, |d| d.inactive.get()),
                        totals: t,
                        rate: rates.rate(now, idx, t),
                    }
                })
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
                forwarding: match vs.forwarding {
                    Forwarding::Dr => "Route",
                    Forwarding::Tun => "Tunnel",
                    Forwarding::Nat => "Masq",
                },
                totals,
                rate,
                real_servers,
            }
        })
        .collect()
}

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
}

/// The workers' copies as rows; persistence templates show as ipvsadm shows them
/// (state NONE, the client network, port 0).
pub fn connection_rows(
    answers: &[Arc<xvs_dataplane::flow::dump::Answer>],
    registry: &DestRegistry,
) -> Vec<ConnectionRow> {
    let names: std::collections::HashMap<u32, (Ipv4Addr, u16)> = registry
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
                    format!("{addr}:{port}")
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
                source: format!("{}:{}", Ipv4Addr::from(k.saddr), k.sport),
                virtual_: format!("{}:{}", Ipv4Addr::from(k.daddr), k.dport),
                destination,
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
    let mut s = String::from(
        "xvs connection entries\npro expire state       source                virtual               destination\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<3} {:02}:{:02}  {:<11} {:<21} {:<21} {}",
            r.protocol,
            r.expires_in / 60,
            r.expires_in % 60,
            r.state,
            r.source,
            r.virtual_,
            r.destination
        );
    }
    if live > rows.len() {
        let _ = writeln!(s, "({} more not shown)", live - rows.len());
    }
    s
}

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
        // Answered by `render_connections`.
        View::Connections => Ok(()),
    };
    for vs in rows {
        let proto = vs.protocol.to_uppercase();
        let ports: Vec<String> = vs.ports.iter().map(u16::to_string).collect();
        let local = format!("{}:{}", vs.address, ports.join(","));
        match req.view {
            View::Table => {
                let flags = vs
                    .persistence_timeout
                    .map_or(String::new(), |t| format!(" persistent {t}"));
                let _ = writeln!(s, "{proto:<4} {local} {}{flags}", vs.scheduler);
                for rs in &vs.real_servers {
                    // A real server out of the pool (its check failed) is not listed, as ipvsadm.
                    let Some(w) = rs.weight else { continue };
                    let name = format!("{}:{}", rs.address, rs.port);
                    let _ = writeln!(
                        s,
                        "  -> {name:<28} {:<7} {w:<6} {:<10} {}",
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
                    let name = format!("{}:{}", rs.address, rs.port);
                    let t = rs.totals;
                    let _ = writeln!(
                        s,
                        "  -> {name:<28} {:>8} {:>8} {:>8} {:>8} {:>8}",
                        t.conns, t.in_packets, t.out_packets, t.in_bytes, t.out_bytes
                    );
                }
            }
            View::Connections => {}
            View::Rate => {
                let r = vs.rate.unwrap_or_default();
                let _ = writeln!(
                    s,
                    "{proto:<4} {local:<28} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
                    r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps
                );
                for rs in &vs.real_servers {
                    let name = format!("{}:{}", rs.address, rs.port);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_options() {
        assert_eq!(
            Request::parse("status").unwrap(),
            Request {
                view: View::Table,
                json: false
            }
        );
        assert_eq!(
            Request::parse("status --rate --json").unwrap(),
            Request {
                view: View::Rate,
                json: true
            }
        );
        assert_eq!(Request::parse("status --stats").unwrap().view, View::Stats);
        assert!(Request::parse("status --stats --rate").is_err());
        assert_eq!(
            Request::parse("status --connections --json").unwrap(),
            Request {
                view: View::Connections,
                json: true
            }
        );
        assert!(Request::parse("status --bogus").is_err());
        assert!(Request::parse("stats").is_err());
    }

    #[test]
    fn rate_is_the_difference_over_the_window() {
        let mut rates = Rates::default();
        assert_eq!(rates.rate(Instant::now(), 0, Totals::default()), None);
        let t0 = Instant::now();
        rates.samples.push_back((
            t0,
            vec![Totals {
                conns: 10,
                in_packets: 100,
                out_packets: 50,
                in_bytes: 1000,
                out_bytes: 9000,
            }],
        ));
        let now = t0 + Duration::from_secs(4);
        let r = rates
            .rate(
                now,
                0,
                Totals {
                    conns: 30,
                    in_packets: 500,
                    out_packets: 250,
                    in_bytes: 3000,
                    out_bytes: 29000,
                },
            )
            .unwrap();
        assert_eq!(
            r,
            Rate {
                cps: 5.0,
                in_pps: 100.0,
                out_pps: 50.0,
                in_bps: 4000.0,
                out_bps: 40000.0,
            }
        );
        // A real server unknown at the sample counts from zero.
        let r = rates
            .rate(
                now,
                7,
                Totals {
                    conns: 8,
                    ..Totals::default()
                },
            )
            .unwrap();
        assert_eq!(r.cps, 2.0);
    }

    #[test]
    fn samples_the_workers_and_keeps_a_bounded_window() {
        let mut registry = DestRegistry::default();
        let id = registry.id(DestKey {
            service: xvs_dataplane::ServiceKey {
                addr: Ipv4Addr::new(10, 0, 0, 100),
                port: 80,
                proto: 6,
            },
            addr: Ipv4Addr::new(10, 0, 0, 11),
            port: 80,
        }) as usize;
        let workers = vec![
            Arc::new(WorkerCounters::new(4)),
            Arc::new(WorkerCounters::new(4)),
        ];
        let t0 = Instant::now();
        let mut rates = Rates::default();
        for i in 0..10 {
            rates.sample(t0 + Duration::from_secs(i), &registry, &workers, &[]);
        }
        assert_eq!(rates.samples.len(), RATE_SAMPLES);
        // The oldest kept sample is from t0 + 5 s; both workers count.
        workers[0].dests[id].conns.add(3);
        workers[1].dests[id].conns.add(7);
        workers[1].dests[id].bytes.add(100);
        let now = t0 + Duration::from_secs(10);
        // The steering program's outbound count joins in (a NAT real server's replies).
        let out = vec![
            NatOut {
                packets: 20,
                bytes: 2000
            };
            id + 1
        ];
        let r = rates.rate(now, id, totals(&workers, &out, id)).unwrap();
        assert_eq!(r.cps, 2.0);
        assert_eq!(r.in_bps, 160.0);
        assert_eq!((r.out_pps, r.out_bps), (4.0, 3200.0));
    }

    #[test]
    fn connection_rows_read_like_ipvsadm_lnc() {
        use xvs_dataplane::flow::dump::{Answer, DumpedFlow};
        use xvs_dataplane::flow::FlowKey;
        let mut registry = DestRegistry::default();
        let svc = xvs_dataplane::ServiceKey {
            addr: Ipv4Addr::new(10, 0, 0, 100),
            port: 80,
            proto: 6,
        };
        let id = registry.id(DestKey {
            service: svc,
            addr: Ipv4Addr::new(10, 0, 0, 11),
            port: 0,
        });
        let vip = u32::from(Ipv4Addr::new(10, 0, 0, 100));
        let flow = |saddr: [u8; 4], sport, dport, proto, state, template| DumpedFlow {
            key: FlowKey::new(u32::from(Ipv4Addr::from(saddr)), vip, sport, dport, proto),
            dest: id,
            expires_in: 125,
            state,
            template,
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
        // Port 0 in the configuration keeps the packet's port.
        assert!(
            text.contains(
                "TCP 02:05  ESTABLISHED 10.0.0.1:40000        10.0.0.100:8080       10.0.0.11:8080"
            ),
            "{text}"
        );
        assert!(
            text.contains("UDP 02:05  UDP         10.0.0.2:5353"),
            "{text}"
        );
        assert!(text.contains("TCP 02:05  NONE        10.0.0.0:0"), "{text}");
        assert!(text.ends_with("(3 more not shown)\n"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&render_connections(&rows, 6, true)).unwrap();
        assert_eq!(json["shown"], 3);
        assert_eq!(json["connections"][1]["virtual"], "10.0.0.100:80");
        assert_eq!(json["connections"][1]["state"], "NONE");
    }
}
