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
use crate::publish::{DestKey, DestRegistry};
use crate::vrrp::VrrpStats;

/// Everything a scrape reads.
pub struct Sources<'a> {
    pub cfg: &'a Config,
    pub registry: Option<&'a mut DestRegistry>,
    pub workers: &'a [Arc<WorkerCounters>],
    /// Per worker: the kernel's counters of its AF_XDP socket.
    pub xsk: &'a [Option<xvs_dataplane::xsk::XskStats>],
    /// Per real-server id: what the steering program sent out for it (NAT replies).
    pub out: &'a crate::status::Outbound,
    pub xdp: Option<XdpCounters>,
    pub health: Option<&'a HealthMap>,
    /// The health monitors' probe statistics.
    pub checks: Option<&'a crate::health::Monitors>,
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
        self.sample_text(name, labels, &value.to_string());
    }

    fn sample_text(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
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

/// The kernel's counters of each worker's AF_XDP socket (XDP_STATISTICS), read at scrape
/// time with getsockopt: frames the kernel could not hand to xvs, and why.
fn xsk_families(o: &mut Out, xsk: &[Option<xvs_dataplane::xsk::XskStats>]) {
    use xvs_dataplane::xsk::XskStats;
    let families: [(&str, &str, Read<XskStats>); 6] = [
        (
            "xvs_xsk_rx_dropped_total",
            "Frames the kernel dropped on the way to the socket (no room in the UMEM).",
            |s| s.rx_dropped,
        ),
        (
            "xvs_xsk_rx_ring_full_total",
            "Frames dropped because the RX ring was full (the worker fell behind).",
            |s| s.rx_ring_full,
        ),
        (
            "xvs_xsk_fill_ring_empty_total",
            "Times the kernel found the fill ring empty (no frame to receive into).",
            |s| s.rx_fill_ring_empty_descs,
        ),
        (
            "xvs_xsk_tx_ring_empty_total",
            "Times the kernel found the TX ring empty when kicked.",
            |s| s.tx_ring_empty_descs,
        ),
        (
            "xvs_xsk_rx_invalid_descs_total",
            "Invalid descriptors on the RX side.",
            |s| s.rx_invalid_descs,
        ),
        (
            "xvs_xsk_tx_invalid_descs_total",
            "Invalid descriptors xvs put on the TX ring.",
            |s| s.tx_invalid_descs,
        ),
    ];
    for (name, help, f) in families {
        o.family(name, "counter", help);
        for (q, s) in xsk.iter().enumerate() {
            if let Some(s) = s {
                o.sample(name, &[("worker", &q.to_string())], f(s));
            }
        }
    }
}

/// One sample of `name` per real server of every virtual server, valued by its id.
fn per_real_server(
    o: &mut Out,
    cfg: &Config,
    registry: &mut DestRegistry,
    name: &str,
    value: impl Fn(usize) -> u64,
) {
    for vs in &cfg.virtual_servers {
        for rs in &vs.real_servers {
            let id = registry.id(DestKey::of(vs, rs)) as usize;
            let rsl = format!("{}:{}", rs.address, rs.port);
            o.sample(
                name,
                &[("virtual_server", &vs.name), ("real_server", &rsl)],
                value(id),
            );
        }
    }
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
            per_real_server(&mut o, src.cfg, registry, name, |id| {
                sum(w, |c| c.dests.get(id).map_or(0, f))
            });
        }
        o.family(
            "xvs_virtual_server_schedule_failures_total",
            "counter",
            "New connections the scheduler could place nowhere (no real server available).",
        );
        for vs in &src.cfg.virtual_servers {
            let id = registry.service_id(crate::publish::service_key(vs)) as usize;
            o.sample(
                "xvs_virtual_server_schedule_failures_total",
                &[("virtual_server", &vs.name)],
                sum(w, |c| c.services.get(id).map_or(0, |s| s.no_dest.get())),
            );
        }
        // Server to client: only NAT replies cross the director (DR and TUN read 0).
        let outbound: [(&str, &str, Read<xvs_bpf::abi::NatOut>); 2] = [
            (
                "xvs_real_server_packets_out_total",
                "Reply packets from the real server sent on to clients (NAT only).",
                |n| n.packets,
            ),
            (
                "xvs_real_server_bytes_out_total",
                "Reply bytes from the real server sent on to clients (NAT only).",
                |n| n.bytes,
            ),
        ];
        for (name, help, f) in outbound {
            o.family(name, "counter", help);
            per_real_server(&mut o, src.cfg, registry, name, |id| {
                src.out.get(id).map_or(0, f)
            });
        }
        if let Some(health) = src.health {
            o.family(
                "xvs_real_server_up",
                "gauge",
                "1 when the real server's health check passes (or it has none).",
            );
            for vs in &src.cfg.virtual_servers {
                for rs in &vs.real_servers {
                    let up = health.get(&DestKey::of(vs, rs)).is_none_or(|h| h.up);
                    let rsl = format!("{}:{}", rs.address, rs.port);
                    o.sample(
                        "xvs_real_server_up",
                        &[("virtual_server", &vs.name), ("real_server", &rsl)],
                        u64::from(up),
                    );
                }
            }
        }
        if let Some(checks) = src.checks {
            checks_families(&mut o, src.cfg, checks);
        }
        let per_worker: [(&str, &str, Read<WorkerCounters>); 10] = [
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
                "xvs_flows_rescheduled_total",
                "Connections moved to another real server: theirs left (expire_nodest_conn).",
                |c| c.flows_rescheduled.get(),
            ),
            (
                "xvs_worker_tx_ring_full_total",
                "Frames dropped because the TX ring had no room.",
                |c| c.drops(DropReason::TxRingFull),
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
            "xvs_flow_table_connections",
            "gauge",
            "Connections the worker's flow table holds now (persistence templates aside).",
        );
        for (q, c) in w.iter().enumerate() {
            let live: u64 = c
                .dests
                .iter()
                .map(|d| d.active.get() + d.inactive.get())
                .sum();
            o.sample(
                "xvs_flow_table_connections",
                &[("worker", &q.to_string())],
                live,
            );
        }
        o.family(
            "xvs_flow_table_capacity",
            "gauge",
            "Flows each worker's table can hold (flow_table_size).",
        );
        for q in 0..w.len() {
            o.sample(
                "xvs_flow_table_capacity",
                &[("worker", &q.to_string())],
                src.cfg.flow_table_size as u64,
            );
        }
        xsk_families(&mut o, src.xsk);
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
                    &[("vrrp_instance", name), ("state", state)],
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
                &[("vrrp_instance", name)],
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
                &[("vrrp_instance", name), ("outcome", "sent")],
                s.sent.load(Relaxed),
            );
            o.sample(
                "xvs_vrrp_adverts_total",
                &[("vrrp_instance", name), ("outcome", "received")],
                s.received.load(Relaxed),
            );
            for (r, n) in crate::vrrp::packet::Reject::ALL.iter().zip(&s.rejected) {
                let outcome = format!("rejected_{}", r.label());
                o.sample(
                    "xvs_vrrp_adverts_total",
                    &[("vrrp_instance", name), ("outcome", &outcome)],
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
    let request = std::str::from_utf8(&buf[..n]).unwrap_or("");
    let line = request.lines().next().unwrap_or("");
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let open = wants_openmetrics(request);
    let (status, body) =
        if line.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
            let (tx, rx) = oneshot::channel();
            if ask.send(tx).await.is_err() {
                return Ok(());
            }
            let text = rx.await.unwrap_or_default();
            ("200 OK", if open { to_openmetrics(&text) } else { text })
        } else {
            ("404 Not Found", "try /metrics\n".to_string())
        };
    let kind = if open && status.starts_with("200") {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await
}

/// Whether the request's Accept header names OpenMetrics (Prometheus sends it first).
fn wants_openmetrics(request: &str) -> bool {
    request.lines().skip(1).any(|h| {
        h.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("accept")
                && v.to_ascii_lowercase()
                    .contains("application/openmetrics-text")
        })
    })
}

/// The text format as OpenMetrics 1.0: a counter family is named without its `_total`
/// (its samples keep it), and the exposition ends with `# EOF`.
fn to_openmetrics(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = match name.strip_suffix("_total") {
                    Some(base) if counters.contains(name) => base,
                    _ => name,
                };
                let _ = writeln!(out, "{p}{name} {tail}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("# EOF\n");
    out
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

/// Probe durations (a histogram), failed probes and up/down transitions of every
/// checked real server.
fn checks_families(o: &mut Out, cfg: &Config, checks: &crate::health::Monitors) {
    use crate::health::stats::{Read as CheckRead, BUCKETS_MS};
    let mut reads = Vec::new();
    for vs in &cfg.virtual_servers {
        for rs in &vs.real_servers {
            let dest = DestKey::of(vs, rs);
            if let Some(s) = checks.stats(&dest) {
                reads.push((
                    vs.name.as_str(),
                    format!("{}:{}", rs.address, rs.port),
                    s.read(),
                ));
            }
        }
    }
    const H: &str = "xvs_health_check_duration_seconds";
    o.family(
        H,
        "histogram",
        "How long health-check probes took (retries included).",
    );
    for (vs, rs, r) in &reads {
        let labels = [("virtual_server", *vs), ("real_server", rs.as_str())];
        for (ms, n) in BUCKETS_MS.iter().zip(r.cumulative) {
            let le = format!("{}", *ms as f64 / 1000.0);
            o.sample(
                &format!("{H}_bucket"),
                &[labels[0], labels[1], ("le", &le)],
                n,
            );
        }
        o.sample(
            &format!("{H}_bucket"),
            &[labels[0], labels[1], ("le", "+Inf")],
            r.count,
        );
        o.sample_text(&format!("{H}_sum"), &labels, &format!("{}", r.sum_seconds));
        o.sample(&format!("{H}_count"), &labels, r.count);
    }
    let counters: [(&str, &str, Read<CheckRead>); 2] = [
        (
            "xvs_health_check_failures_total",
            "Probes that failed (retries included).",
            |r| r.failures,
        ),
        (
            "xvs_health_check_transitions_total",
            "Times the real server went up or down.",
            |r| r.transitions,
        ),
    ];
    for (name, help, f) in counters {
        o.family(name, "counter", help);
        for (vs, rs, r) in &reads {
            o.sample(name, &[("virtual_server", vs), ("real_server", rs)], f(r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    /// A scrape with every source present: VRRP, health checks, steering counters.
    fn full_scrape() -> String {
        let yaml = include_str!("../../config/examples/vrrp-dr.yaml").replacen(
            "    forwarding: dr\n",
            "    forwarding: dr\n    health_check: { type: tcp }\n",
            1,
        );
        let cfg = xvs_config::parse("vrrp-dr.yaml", &yaml).expect("the example parses");
        let mut registry = DestRegistry::default();
        let workers = vec![Arc::new(WorkerCounters::new(8))];
        let health = HashMap::new();
        let vrrp = vec![("VI_1".to_string(), Arc::new(VrrpStats::default()))];
        // Monitors need a runtime to be spawned on; nothing awaits here, so no probe runs.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let (tx, _rx) = mpsc::channel(1);
            let mut monitors = crate::health::Monitors::new(tx);
            monitors.sync(crate::daemon::health_targets(&cfg));
            let text = render(Sources {
                cfg: &cfg,
                registry: Some(&mut registry),
                workers: &workers,
                xsk: &[Some(Default::default())],
                out: &[],
                xdp: Some(XdpCounters::default()),
                health: Some(&health),
                checks: Some(&monitors),
                vrrp: &vrrp,
                reloads: 0,
                reload_failures: 0,
                generation: 1,
            });
            monitors.stop_all();
            text
        })
    }

    /// Words made of `[a-z_]` starting at each occurrence of `prefix`.
    fn words_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(tail.len());
            out.push(&tail[..end]);
            rest = &tail[end.max(1)..];
        }
        out
    }

    #[test]
    fn the_grafana_dashboard_queries_only_what_a_scrape_has() {
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../dashboards/xvs-grafana.json"))
                .expect("the dashboard is JSON");
        let scrape = full_scrape();
        let families: BTreeSet<&str> = scrape
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let mut ids = BTreeSet::new();
        let panels = dash["panels"].as_array().expect("panels");
        assert!(panels.len() >= 10);
        for p in panels {
            assert!(ids.insert(p["id"].as_u64().expect("id")), "duplicate id");
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{}: no query", p["title"]);
            for t in targets {
                let expr = t["expr"].as_str().expect("expr");
                let names = words_after(expr, "xvs_");
                assert!(!names.is_empty(), "{expr}: no xvs metric");
                for name in names {
                    // A histogram's series carry a suffix on its family's name.
                    let family = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(f)))
                        .unwrap_or(name);
                    assert!(families.contains(family), "{expr}: {name} is not served");
                }
                // Grouping labels are the metric's own, or Prometheus's target label.
                for by in expr.split("by (").skip(1) {
                    let labels = by.split(')').next().unwrap_or_default();
                    for label in labels.split(',').map(str::trim) {
                        assert!(
                            label == "instance" || scrape.contains(&format!("{label}=\"")),
                            "{expr}: label {label} is never served"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn schedule_failures_are_counted_per_virtual_server() {
        let cfg = xvs_config::parse(
            "t.yaml",
            "interface: lo\nvirtual_servers:\n  - { name: web, address: 10.0.0.100, port: 80, protocol: tcp }\n  - { name: dns, address: 10.0.0.100, port: 53, protocol: udp }\n",
        )
        .unwrap();
        let mut registry = DestRegistry::default();
        // The ids the snapshot gives the two services, in configuration order.
        for vs in &cfg.virtual_servers {
            registry.service_id(crate::publish::service_key(vs));
        }
        let workers = vec![
            Arc::new(WorkerCounters::new(8)),
            Arc::new(WorkerCounters::new(8)),
        ];
        workers[0].services[1].no_dest.add(2);
        workers[1].services[1].no_dest.add(1);
        let text = render(Sources {
            cfg: &cfg,
            registry: Some(&mut registry),
            workers: &workers,
            xsk: &[],
            out: &[],
            xdp: None,
            health: None,
            checks: None,
            vrrp: &[],
            reloads: 0,
            reload_failures: 0,
            generation: 1,
        });
        assert!(
            text.contains("xvs_virtual_server_schedule_failures_total{virtual_server=\"web\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("xvs_virtual_server_schedule_failures_total{virtual_server=\"dns\"} 3\n"),
            "summed over the workers: {text}"
        );
    }

    #[test]
    fn no_label_collides_with_prometheus_target_labels() {
        // A scraped `instance` or `job` label would be renamed `exported_*` by Prometheus.
        let scrape = full_scrape();
        assert!(
            scrape.contains("xvs_vrrp_state{vrrp_instance=\"VI_1\""),
            "{scrape}"
        );
        for line in scrape.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                !line.contains("{instance=") && !line.contains(",instance="),
                "{line}"
            );
            assert!(!line.contains("{job=") && !line.contains(",job="), "{line}");
        }
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        assert!(wants_openmetrics(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n"
        ));
        assert!(!wants_openmetrics(
            "GET /metrics HTTP/1.1\r\nAccept: text/plain\r\n\r\n"
        ));
        let om = to_openmetrics(&full_scrape());
        assert!(om.ends_with("\n# EOF\n"));
        assert!(om.contains("# TYPE xvs_drops counter\n"), "{om}");
        assert!(om.contains("# HELP xvs_drops "), "{om}");
        assert!(om.contains("xvs_drops_total{reason=\"no_destination\"} 0\n"));
        assert!(om.contains("# TYPE xvs_config_generation gauge\n"));
        assert!(om.contains("# TYPE xvs_health_check_duration_seconds histogram\n"));
        assert!(om.contains("le=\"+Inf\"} 0\n"), "{om}");
        // Every family's samples start with its name.
        let mut family = "";
        for line in om.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(family), "{line} outside {family}");
            }
        }
    }
}
