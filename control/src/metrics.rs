//! `/metrics` in the Prometheus text format (0.0.4), rendered at scrape time from the
//! workers' own counters, the steering program's per-CPU counters, the VRRP and health
//! state: the hot path never touches a registry.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use xvs_bpf::abi::XdpCounters;
use xvs_config::Config;
use xvs_dataplane::counters::DestCounters;
use xvs_dataplane::{DropReason, WorkerCounters};

use crate::health::HealthMap;
use crate::publish::{service_key, DestKey, DestRegistry};
use crate::vrrp::VrrpStats;

/// Everything a scrape reads.
pub struct Sources<'a> {
    pub cfg: &'a Config,
    pub registry: Option<&'a mut DestRegistry>,
    pub workers: &'a [Arc<WorkerCounters>],
    pub xdp: Option<XdpCounters>,
    pub health: Option<&'a HealthMap>,
    pub vrrp: &'a [(String, Arc<VrrpStats>)],
    pub reloads: u64,
    pub reload_failures: u64,
    pub generation: u64,
}

/// How one metric is read from a counters struct.
type Read<T> = fn(&T) -> u64;
/// A metric family: name, type, help, and how to read it.
type Family<T> = (&'static str, &'static str, &'static str, Read<T>);

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        if l.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {value}", l.join(","));
        }
    }
}

fn sum(workers: &[Arc<WorkerCounters>], f: impl Fn(&WorkerCounters) -> u64) -> u64 {
    workers.iter().map(|w| f(w)).sum()
}

pub fn render(src: Sources<'_>) -> String {
    let mut o = Out(String::with_capacity(8192));
    o.family("xvs_build_info", "gauge", "xvs version.");
    o.sample(
        "xvs_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    o.family(
        "xvs_config_generation",
        "gauge",
        "Snapshot generation now in use.",
    );
    o.sample("xvs_config_generation", &[], src.generation);
    o.family(
        "xvs_config_reloads_total",
        "counter",
        "Configuration reloads, by result.",
    );
    o.sample(
        "xvs_config_reloads_total",
        &[("result", "success")],
        src.reloads,
    );
    o.sample(
        "xvs_config_reloads_total",
        &[("result", "failure")],
        src.reload_failures,
    );

    if let Some(registry) = src.registry {
        let w = src.workers;
        let per_rs: [Family<DestCounters>; 5] = [
            (
                "xvs_real_server_connections_total",
                "counter",
                "Connections scheduled to the real server.",
                |d| d.conns.get(),
            ),
            (
                "xvs_real_server_active_connections",
                "gauge",
                "ESTABLISHED connections (IPVS ActiveConn).",
                |d| d.active.get(),
            ),
            (
                "xvs_real_server_inactive_connections",
                "gauge",
                "Other connections (IPVS InActConn).",
                |d| d.inactive.get(),
            ),
            (
                "xvs_real_server_packets_in_total",
                "counter",
                "Packets forwarded to the real server.",
                |d| d.packets.get(),
            ),
            (
                "xvs_real_server_bytes_in_total",
                "counter",
                "Bytes forwarded to the real server.",
                |d| d.bytes.get(),
            ),
        ];
        for (name, kind, help, f) in per_rs {
            o.family(name, kind, help);
            for vs in &src.cfg.virtual_servers {
                let key = service_key(vs);
                for rs in &vs.real_servers {
                    let id = registry.id(DestKey {
                        service: key,
                        addr: rs.address,
                        port: rs.port,
                    }) as usize;
                    let rsl = format!("{}:{}", rs.address, rs.port);
                    let v = sum(w, |c| c.dests.get(id).map_or(0, f));
                    o.sample(
                        name,
                        &[("virtual_server", &vs.name), ("real_server", &rsl)],
                        v,
                    );
                }
            }
        }
        if let Some(health) = src.health {
            o.family(
                "xvs_real_server_up",
                "gauge",
                "1 when the real server's health check passes (or it has none).",
            );
            for vs in &src.cfg.virtual_servers {
                let key = service_key(vs);
                for rs in &vs.real_servers {
                    let up = health
                        .get(&DestKey {
                            service: key,
                            addr: rs.address,
                            port: rs.port,
                        })
                        .is_none_or(|h| h.up);
                    let rsl = format!("{}:{}", rs.address, rs.port);
                    o.sample(
                        "xvs_real_server_up",
                        &[("virtual_server", &vs.name), ("real_server", &rsl)],
                        u64::from(up),
                    );
                }
            }
        }
        let per_worker: [(&str, &str, Read<WorkerCounters>); 8] = [
            ("xvs_worker_rx_packets_total", "Frames received.", |c| {
                c.rx_packets.get()
            }),
            ("xvs_worker_tx_packets_total", "Frames sent.", |c| {
                c.tx_packets.get()
            }),
            ("xvs_worker_rx_batches_total", "RX batches.", |c| {
                c.rx_batches.get()
            }),
            (
                "xvs_worker_tx_kicks_total",
                "sendto() kicks of the TX ring.",
                |c| c.tx_kicks.get(),
            ),
            ("xvs_flows_created_total", "Flows created.", |c| {
                c.flows_created.get()
            }),
            ("xvs_flows_expired_total", "Flows that timed out.", |c| {
                c.flows_expired.get()
            }),
            (
                "xvs_flows_evicted_total",
                "Live flows evicted from a full bucket.",
                |c| c.flows_evicted.get(),
            ),
            (
                "xvs_icmp_frag_needed_total",
                "ICMP fragmentation-needed sent (TUN).",
                |c| c.icmp_frag_needed.get(),
            ),
        ];
        for (name, help, f) in per_worker {
            o.family(name, "counter", help);
            for (q, c) in w.iter().enumerate() {
                o.sample(name, &[("worker", &q.to_string())], f(c));
            }
        }
        o.family(
            "xvs_drops_total",
            "counter",
            "Frames dropped by a worker, by reason.",
        );
        for r in DropReason::ALL {
            o.sample(
                "xvs_drops_total",
                &[("reason", r.label())],
                sum(w, |c| c.drops(*r)),
            );
        }
    }
    if let Some(x) = src.xdp {
        o.family(
            "xvs_xdp_packets_total",
            "counter",
            "Packets seen by the steering program, by outcome.",
        );
        for (label, n) in x.iter() {
            o.sample("xvs_xdp_packets_total", &[("outcome", label)], n);
        }
    }
    if !src.vrrp.is_empty() {
        o.family(
            "xvs_vrrp_state",
            "gauge",
            "1 for the instance's current state.",
        );
        for (name, s) in src.vrrp {
            for state in ["INIT", "BACKUP", "MASTER", "FAULT"] {
                o.sample(
                    "xvs_vrrp_state",
                    &[("instance", name), ("state", state)],
                    u64::from(s.state().as_str() == state),
                );
            }
        }
        o.family(
            "xvs_vrrp_transitions_total",
            "counter",
            "State transitions.",
        );
        for (name, s) in src.vrrp {
            o.sample(
                "xvs_vrrp_transitions_total",
                &[("instance", name)],
                s.transitions.load(Relaxed),
            );
        }
        o.family(
            "xvs_vrrp_adverts_total",
            "counter",
            "Advertisements by outcome (rejected ones by reason).",
        );
        for (name, s) in src.vrrp {
            o.sample(
                "xvs_vrrp_adverts_total",
                &[("instance", name), ("outcome", "sent")],
                s.sent.load(Relaxed),
            );
            o.sample(
                "xvs_vrrp_adverts_total",
                &[("instance", name), ("outcome", "received")],
                s.received.load(Relaxed),
            );
            for (r, n) in crate::vrrp::packet::Reject::ALL.iter().zip(&s.rejected) {
                let outcome = format!("rejected_{}", r.label());
                o.sample(
                    "xvs_vrrp_adverts_total",
                    &[("instance", name), ("outcome", &outcome)],
                    n.load(Relaxed),
                );
            }
        }
    }
    o.0
}

/// A scrape waiting for the control loop to render.
pub type Request = oneshot::Sender<String>;

/// Serves `/metrics` on `listener`: each scrape asks the control loop (through `ask`)
/// for a rendering. Requests are bounded in size and time.
pub async fn serve(listener: TcpListener, ask: mpsc::Sender<Request>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let ask = ask.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, ask).await {
                debug!("metrics: {e}");
            }
        });
    }
}

async fn answer(mut s: TcpStream, ask: mpsc::Sender<Request>) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let line = std::str::from_utf8(&buf[..n])
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("");
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) =
        if line.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
            let (tx, rx) = oneshot::channel();
            if ask.send(tx).await.is_err() {
                return Ok(());
            }
            ("200 OK", rx.await.unwrap_or_default())
        } else {
            ("404 Not Found", "try /metrics\n".to_string())
        };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await
}

/// Binds the metrics listener, logging rather than failing: metrics are not worth
/// refusing to balance for.
pub async fn bind(addr: &str) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            warn!("cannot serve /metrics on {addr}: {e}");
            None
        }
    }
}
