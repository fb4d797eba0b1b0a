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

use crate::publish::{service_key, DestKey, DestRegistry};

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
}

/// A parsed `status` command line: `status [--stats|--rate] [--json]`.
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
                "--stats" | "--rate" if req.view != View::Table => {
                    return Err("status: --stats and --rate are exclusive\n".into())
                }
                "--stats" => req.view = View::Stats,
                "--rate" => req.view = View::Rate,
                "--json" => req.json = true,
                other => {
                    return Err(format!(
                        "status: unknown option {other:?} (--stats, --rate, --json)\n"
                    ))
                }
            }
        }
        Ok(req)
    }
}

/// Connections, packets and bytes sent to a real server (or a virtual server: the sum).
/// Only the client-to-server direction passes xvs in DR and TUN, so "in" is all there is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub conns: u64,
    pub in_packets: u64,
    pub in_bytes: u64,
}

impl Totals {
    fn add(self, o: Totals) -> Totals {
        Totals {
            conns: self.conns + o.conns,
            in_packets: self.in_packets + o.in_packets,
            in_bytes: self.in_bytes + o.in_bytes,
        }
    }
}

/// Per second, over the sampled window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rate {
    pub cps: f64,
    pub in_pps: f64,
    pub in_bps: f64,
}

impl Rate {
    fn add(self, o: Rate) -> Rate {
        Rate {
            cps: self.cps + o.cps,
            in_pps: self.in_pps + o.in_pps,
            in_bps: self.in_bps + o.in_bps,
        }
    }
}

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

fn totals(workers: &[Arc<WorkerCounters>], id: usize) -> Totals {
    workers
        .iter()
        .filter_map(|w| w.dests.get(id))
        .fold(Totals::default(), |t, d| {
            t.add(Totals {
                conns: d.conns.get(),
                in_packets: d.packets.get(),
                in_bytes: d.bytes.get(),
            })
        })
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
    ) {
        let all = (0..registry.issued())
            .map(|id| totals(workers, id))
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
            in_bps: per(current.in_bytes * 8, before.in_bytes * 8),
        })
    }
}

/// The rows, in configuration order.
pub fn rows(
    cfg: &Config,
    snap: &xvs_dataplane::Snapshot,
    registry: &mut DestRegistry,
    workers: &[Arc<WorkerCounters>],
    rates: &Rates,
    now: Instant,
) -> Vec<VirtualServerRow> {
    cfg.virtual_servers
        .iter()
        .map(|vs| {
            let key = service_key(vs);
            let real_servers: Vec<RealServerRow> = vs
                .real_servers
                .iter()
                .map(|rs| {
                    let id = registry.id(DestKey {
                        service: key,
                        addr: rs.address,
                        port: rs.port,
                    });
                    let weight = snap.dest(id).map(|d| d.weight);
                    let idx = id as usize;
                    let t = totals(workers, idx);
                    let sum = |f: fn(&xvs_dataplane::counters::DestCounters) -> u64| -> u64 {
                        workers.iter().filter_map(|w| w.dests.get(idx)).map(f).sum()
                    };
                    RealServerRow {
                        address: rs.address,
                        port: rs.port,
                        in_pool: weight.is_some(),
                        weight,
                        active_conns: sum(|d| d.active.get()),
                        inactive_conns: sum(|d| d.inactive.get()),
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
        View::Stats => writeln!(s, "Prot LocalAddress:Port               Conns   InPkts  InBytes\n  -> RemoteAddress:Port"),
        View::Rate => writeln!(s, "Prot LocalAddress:Port                 CPS    InPPS    InBPS\n  -> RemoteAddress:Port"),
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
                    "{proto:<4} {local:<28} {:>8} {:>8} {:>8}",
                    t.conns, t.in_packets, t.in_bytes
                );
                for rs in &vs.real_servers {
                    let name = format!("{}:{}", rs.address, rs.port);
                    let t = rs.totals;
                    let _ = writeln!(
                        s,
                        "  -> {name:<28} {:>8} {:>8} {:>8}",
                        t.conns, t.in_packets, t.in_bytes
                    );
                }
            }
            View::Rate => {
                let r = vs.rate.unwrap_or_default();
                let _ = writeln!(
                    s,
                    "{proto:<4} {local:<28} {:>8.0} {:>8.0} {:>8.0}",
                    r.cps, r.in_pps, r.in_bps
                );
                for rs in &vs.real_servers {
                    let name = format!("{}:{}", rs.address, rs.port);
                    let r = rs.rate.unwrap_or_default();
                    let _ = writeln!(
                        s,
                        "  -> {name:<28} {:>8.0} {:>8.0} {:>8.0}",
                        r.cps, r.in_pps, r.in_bps
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
                in_bytes: 1000,
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
                    in_bytes: 3000,
                },
            )
            .unwrap();
        assert_eq!(
            r,
            Rate {
                cps: 5.0,
                in_pps: 100.0,
                in_bps: 4000.0
            }
        );
        // A real server unknown at the sample counts from zero.
        let r = rates
            .rate(
                now,
                7,
                Totals {
                    conns: 8,
                    in_packets: 8,
                    in_bytes: 8,
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
            rates.sample(t0 + Duration::from_secs(i), &registry, &workers);
        }
        assert_eq!(rates.samples.len(), RATE_SAMPLES);
        // The oldest kept sample is from t0 + 5 s; both workers count.
        workers[0].dests[id].conns.add(3);
        workers[1].dests[id].conns.add(7);
        workers[1].dests[id].bytes.add(100);
        let now = t0 + Duration::from_secs(10);
        let r = rates.rate(now, id, totals(&workers, id)).unwrap();
        assert_eq!(r.cps, 2.0);
        assert_eq!(r.in_bps, 160.0);
    }
}
