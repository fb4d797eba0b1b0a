//! `/metrics` in the Prometheus text format (0.0.4, or OpenMetrics 1.0 on request),
//! rendered at scrape time from the workers' own counters, the steering program's
//! per-CPU counters, the VRRP and health state: the hot path never touches a registry.
//!
//! - `text.rs`: the exposition writer and the OpenMetrics form
//! - `http.rs`: the listener, `request.rs`: the request head it reads
//! - `dataplane.rs`, `health.rs`, `vrrp.rs`, `sync.rs`: the families, by source

mod announce;
mod dataplane;
mod health;
mod http;
pub mod request;
mod sync;
mod text;
mod vrrp;

use std::sync::Arc;

use xvs_bpf::abi::{NatOut, XdpCounters};
use xvs_config::Config;
use xvs_dataplane::xsk::XskStats;
use xvs_dataplane::WorkerCounters;

pub use http::{bind, serve, Request, View};
pub use sync::{entry_counts, local_connections};
use text::Out;

use crate::daemon::drain::Drains;
use crate::daemon::overload::Overload;
use crate::health::{HealthMap, Monitors};
use crate::ids::DestRegistry;
use crate::observe::counters::AllWorkers;
use crate::vrrp::VrrpStats;

/// What every scrape reads, with or without a load balancer (VRRP only).
pub struct Common<'a> {
    pub cfg: &'a Config,
    pub vrrp: &'a [(String, Arc<VrrpStats>)],
    pub reloads: u64,
    pub reload_failures: u64,
    pub alerts: &'a crate::alert::AlertStats,
    pub announce: Option<&'a crate::announce::Announcer>,
}

/// What a scrape reads of the load balancer.
pub struct Balancer<'a> {
    pub registry: &'a mut DestRegistry,
    pub workers: &'a [Arc<WorkerCounters>],
    /// Per worker: the kernel's counters of its AF_XDP socket.
    pub xsk: &'a [Option<XskStats>],
    /// Per real-server id: what the steering program sent out for it (NAT replies).
    pub out: &'a [NatOut],
    /// Per real-server id: what the XDP fast path forwarded to it (part of "in").
    pub fast_in: &'a [NatOut],
    pub xdp: Option<XdpCounters>,
    pub health: &'a HealthMap,
    pub drains: &'a Drains,
    pub overload: &'a Overload,
    /// The health monitors' probe statistics.
    pub checks: &'a Monitors,
    pub generation: u64,
    /// How packets leave (`fast_path: auto`'s fallback).
    pub fast_path: crate::daemon::xdp_tx::View,
    /// Connection sync, when configured.
    pub sync: Option<&'a crate::sync::SyncStats>,
}

pub fn render(c: &Common<'_>, lb: Option<Balancer<'_>>) -> String {
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
    o.sample(
        "xvs_config_generation",
        &[],
        lb.as_ref().map_or(0, |l| l.generation),
    );
    o.family(
        "xvs_config_reloads_total",
        "counter",
        "Configuration reloads, by result.",
    );
    o.sample(
        "xvs_config_reloads_total",
        &[("result", "success")],
        c.reloads,
    );
    o.sample(
        "xvs_config_reloads_total",
        &[("result", "failure")],
        c.reload_failures,
    );
    o.family(
        "xvs_email_alerts_total",
        "counter",
        "E-mail alerts (email_alerts), by result: sent, failed (the SMTP server refused or did not answer; logged), dropped (more than 64 waiting).",
    );
    for (result, n) in [
        ("sent", &c.alerts.sent),
        ("failed", &c.alerts.failed),
        ("dropped", &c.alerts.dropped),
    ] {
        o.sample(
            "xvs_email_alerts_total",
            &[("result", result)],
            n.load(std::sync::atomic::Ordering::Relaxed),
        );
    }
    if let Some(lb) = lb {
        let w = AllWorkers(lb.workers);
        dataplane::servers(&mut o, c.cfg, lb.registry, w, lb.out, lb.fast_in);
        health::up(&mut o, c.cfg, lb.health);
        health::drained(&mut o, c.cfg, lb.drains);
        health::overloaded(&mut o, c.cfg, lb.overload);
        health::checks(&mut o, c.cfg, lb.checks);
        dataplane::workers(&mut o, c.cfg, w);
        dataplane::fullnat_locals(&mut o, c.cfg, lb.registry, w);
        dataplane::xsk(&mut o, lb.xsk);
        dataplane::fast_path(&mut o, &lb.fast_path);
        if let Some(x) = &lb.xdp {
            dataplane::xdp(&mut o, x);
        }
        if let Some(s) = lb.sync {
            sync::families(&mut o, s, w);
        }
    }
    vrrp::instances(&mut o, c.vrrp);
    if let Some(a) = c.announce {
        announce::families(&mut o, a);
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::text::to_openmetrics;
    use super::*;
    use std::collections::{BTreeSet, HashMap};
    use tokio::sync::mpsc;

    /// A scrape with every source present: VRRP, health checks, steering counters.
    fn full_scrape() -> String {
        let yaml = include_str!("../../../../config/examples/vrrp-dr.yaml").replacen(
            "    forwarding: dr\n",
            "    forwarding: dr\n    health_check: { type: tcp }\n",
            1,
        );
        let cfg = xvs_config::parse("vrrp-dr.yaml", &yaml).expect("the example parses");
        let mut registry = DestRegistry::default();
        let workers = vec![Arc::new(WorkerCounters::new(8))];
        let health = HashMap::new();
        let vrrp = vec![("VI_1".to_string(), Arc::new(VrrpStats::default()))];
        let sync = crate::sync::SyncStats::default();
        sync.peers
            .store(Arc::new(vec![crate::sync::stats::PeerView {
                addr: std::net::Ipv4Addr::new(10, 0, 0, 3),
                last_heard: std::time::Instant::now(),
                live: true,
                flows: 7,
            }]));
        // Monitors need a runtime to be spawned on; nothing awaits here, so no probe runs.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let (tx, _rx) = mpsc::channel(1);
            let mut monitors = crate::health::Monitors::new(tx);
            monitors.sync(crate::health::health_targets(&cfg));
            let text = render(
                &Common {
                    cfg: &cfg,
                    vrrp: &vrrp,
                    reloads: 0,
                    reload_failures: 0,
                    alerts: crate::alert::stats(),
                    announce: None,
                },
                Some(Balancer {
                    registry: &mut registry,
                    workers: &workers,
                    xsk: &[Some(Default::default())],
                    out: &[],
                    fast_in: &[],
                    xdp: Some(XdpCounters::default()),
                    health: &health,
                    drains: &Drains::default(),
                    overload: &Overload::default(),
                    checks: &monitors,
                    generation: 1,
                    fast_path: crate::daemon::xdp_tx::View {
                        configured: "auto",
                        active: false,
                        nat_relay: true,
                        complete_partial: true,
                        fell_back: Some("a test".into()),
                        undelivered: [("eth0".to_string(), 3)].into(),
                    },
                    sync: Some(&sync),
                }),
            );
            monitors.stop_all();
            text
        })
    }

    /// A unit, when a name has one, is its last word (before `_total` for a counter),
    /// as Prometheus' naming guidelines ask (promtool does not check this one).
    #[test]
    fn units_come_last() {
        let scrape = full_scrape();
        let names: Vec<&str> = scrape
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert!(names.len() > 40, "{names:?}");
        for n in names {
            let words: Vec<&str> = n.trim_end_matches("_total").split('_').collect();
            for unit in ["bytes", "seconds", "packets", "frames"] {
                if let Some(at) = words.iter().position(|w| *w == unit) {
                    assert_eq!(at, words.len() - 1, "{n}: the unit `{unit}` is not last");
                }
            }
        }
    }

    /// Prometheus' own linter finds nothing to say of a full scrape: units last
    /// (`_bytes_total`, `_seconds`), counters `_total`, help and type for each family.
    #[test]
    fn promtool_has_no_warning_on_a_full_scrape() {
        let path = std::env::temp_dir().join(format!("xvs-scrape-{}.txt", std::process::id()));
        std::fs::write(&path, full_scrape()).unwrap();
        let out = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .expect("promtool (Debian's prometheus package; `make setup` installs it)");
        let _ = std::fs::remove_file(&path);
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "promtool: {said}"
        );
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
            serde_json::from_str(include_str!("../../../dashboards/xvs-grafana.json"))
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
            registry.service_id(crate::ids::service_key(vs));
        }
        let workers = vec![
            Arc::new(WorkerCounters::new(8)),
            Arc::new(WorkerCounters::new(8)),
        ];
        workers[0].services[1].no_dest.add(2);
        workers[1].services[1].no_dest.add(1);
        let (tx, _rx) = mpsc::channel(1);
        let monitors = crate::health::Monitors::new(tx);
        let text = render(
            &Common {
                cfg: &cfg,
                vrrp: &[],
                reloads: 0,
                reload_failures: 0,
                alerts: crate::alert::stats(),
                announce: None,
            },
            Some(Balancer {
                registry: &mut registry,
                workers: &workers,
                xsk: &[],
                out: &[],
                fast_in: &[],
                xdp: None,
                health: &HashMap::new(),
                drains: &Drains::default(),
                overload: &Overload::default(),
                checks: &monitors,
                generation: 1,
                fast_path: crate::daemon::xdp_tx::View {
                    configured: "auto",
                    active: true,
                    nat_relay: false,
                    complete_partial: false,
                    fell_back: None,
                    undelivered: Default::default(),
                },
                sync: None,
            }),
        );
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
