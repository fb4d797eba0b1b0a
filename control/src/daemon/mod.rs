//! `xvs run`: the daemon. `run` wires the parts and runs the event loop on the control
//! thread; each event's handling is a method of `Daemon`. VRRP runs on a thread of its
//! own (`crate::vrrp::VrrpThread`), the workers on theirs; blocking netlink calls and
//! file reads go to tokio's blocking pool.
//!
//! - `bringup.rs`: steering program, maps, attach, workers
//! - `lb.rs`: the running load balancer (snapshot, ids, MACs, health, quorum)
//! - `workers.rs`: the worker threads
//! - `reload.rs`: reload and what waits for a restart
//! - `publish.rs`: configuration + MACs + health → snapshot and steering maps
//! - `resolve.rs`: neighbours and routes
//! - `translate.rs`: configuration → dataplane settings
//! - `command.rs`: the control socket's commands, typed; `drain.rs`: drained real servers
//! - `overload.rs`: connection thresholds (uthreshold, lthreshold)
//! - `privilege.rs`: the capabilities a configuration needs, checked first
//! - `watch.rs`: the file watch; `hostcheck.rs`: host-side warnings; `ifaces.rs`
//! - `xdp_tx.rs`: `fast_path: auto`'s watch over what XDP sends
//! - `systemd.rs`: readiness, status and the watchdog (`Type=notify`)

mod bringup;
mod command;
pub mod drain;
pub mod hostcheck;
mod ifaces;
mod lb;
pub mod limits;
pub mod overload;
mod privilege;
pub mod publish;
mod reload;
mod resolve;
mod steer_maps;
mod systemd;
mod translate;
mod watch;
mod workers;
pub mod xdp_tx;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};
use xvs_config::Config;

pub use ifaces::Ifaces;

use self::command::Command;
use self::lb::{Lb, RESOLVE_REFRESH};
use crate::control_socket;
use crate::health::quorum::Crossing;
use crate::health::{self, health_targets};
use crate::observe::counters::AllWorkers;
use crate::observe::{explain, flows, metrics, status};
use crate::vrrp::{SyncGate, VrrpThread};

/// Everything the event loop owns.
struct Daemon<'p> {
    path: &'p Path,
    cfg: Config,
    ifaces: Ifaces,
    /// None when the configuration has no virtual servers (VRRP only).
    lb: Option<Lb>,
    monitors: health::Monitors,
    vrrp: VrrpThread,
    /// Counter samples for `xvs status --rate`.
    rates: status::Rates,
    reloads: u64,
    reload_failures: u64,
    systemd: systemd::Systemd,
}

impl Daemon<'_> {
    /// One line on how the director is, for `systemctl status` (STATUS=).
    fn status_line(&self) -> String {
        let mut s = format!("{} virtual server(s)", self.cfg.virtual_servers.len());
        if let Some(l) = &self.lb {
            let total = l.health.len();
            let up = l.health.values().filter(|h| h.up).count();
            s += &format!(", {up}/{total} checked real server(s) up");
            if l.shared.load().fast_generation == 0 {
                s += ", fast path off";
            }
        }
        for (name, st) in self.vrrp.stats() {
            s += &format!("; VRRP {name} {}", st.state().as_str());
        }
        s += &format!(
            "; {} reload(s), {} failed",
            self.reloads, self.reload_failures
        );
        s
    }

    /// The watchdog's ping: only while every worker's loop turns.
    fn ping_watchdog(&mut self) {
        let turns = self
            .lb
            .as_ref()
            .map(|l| l.workers.counters().iter().map(|c| c.turns.get()).collect())
            .unwrap_or_default();
        self.systemd.ping(turns);
        let line = self.status_line();
        self.systemd.status(&line);
    }

    /// A reload, from SIGHUP, the file watch or the control socket; its answer for the
    /// socket.
    async fn reload(&mut self) -> Result<String, String> {
        self.systemd.reloading();
        let done = self.reload_now().await;
        let line = self.status_line();
        self.systemd.reloaded(&line);
        done
    }

    async fn reload_now(&mut self) -> Result<String, String> {
        match reload::reload(
            self.path,
            &self.cfg,
            &self.ifaces,
            self.lb.as_mut(),
            &mut self.monitors,
        )
        .await
        {
            Ok(new) => {
                self.cfg = new;
                crate::alert::configure(self.cfg.email_alerts.as_ref());
                self.reloads += 1;
                info!(
                    event = "reload",
                    result = "done",
                    "reload {} done",
                    self.reloads
                );
                Ok(format!("reload {} done\n", self.reloads))
            }
            Err(e) => {
                self.reload_failures += 1;
                error!(
                    event = "reload",
                    result = "failed",
                    "reload failed ({} so far); the running configuration is unchanged:\n{e:#}",
                    self.reload_failures
                );
                Err(format!("{e:#}\n"))
            }
        }
    }

    async fn command(&mut self, line: &str) -> Result<String, String> {
        match Command::parse(line)? {
            Command::Reload => self.reload().await,
            Command::Status(req) => match self.lb.as_mut() {
                Some(l) if req.view == status::View::Connections => {
                    let per_worker = status::CONNECTIONS_LIMIT / l.workers.counters().len().max(1);
                    let answers =
                        flows::ask(l.workers.counters(), |d| d.request(per_worker)).await?;
                    let live = answers.iter().map(|a| a.live).sum();
                    let rows = status::connection_rows(&answers, &l.registry);
                    Ok(status::render_connections(&rows, live, req.json))
                }
                Some(l) if req.view == status::View::Sync => match &l.sync {
                    Some(s) => Ok(status::render_sync(
                        &s.thread.stats,
                        AllWorkers(l.workers.counters()),
                        req.json,
                    )),
                    None => Err("connection sync is off: add a `connection_sync:` section to the configuration (docs/configuration.md)\n".into()),
                },
                Some(l) if req.view == status::View::Dataplane => {
                    let v = l.fast_path_view(&self.cfg);
                    Ok(if req.json {
                        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
                    } else {
                        v.render()
                    })
                }
                Some(l) if req.view == status::View::Drops => Ok(status::render_drops(
                    l.steer.counters().ok().as_ref(),
                    AllWorkers(l.workers.counters()),
                    req.json,
                )),
                Some(l) => {
                    let snap = l.shared.load();
                    let (out, fast_in) = (l.outbound(&self.cfg), l.fast_in());
                    let pool = status::Pool {
                        snap: &snap,
                        drains: &l.drains,
                        overload: &l.overload,
                    };
                    let rows = status::rows(
                        &self.cfg,
                        pool,
                        &mut l.registry,
                        l.workers.counters(),
                        status::Steered {
                            out: &out,
                            fast_in: &fast_in,
                        },
                        &self.rates,
                        Instant::now(),
                    );
                    Ok(status::render(&rows, req, self.cfg.flow_table_size))
                }
                None => Ok(status::render(&[], req, self.cfg.flow_table_size)),
            },
            Command::Drain { target, on } => match self.lb.as_mut() {
                Some(l) => l.drain(&self.cfg, &target, on),
                None => Err("no virtual servers (VRRP only): nothing to drain\n".into()),
            },
            Command::Explain(args) => match self.lb.as_ref() {
                Some(l) => {
                    explain::explain(&l.shared.load_full(), l.workers.counters(), &args).await
                }
                None => Ok("no virtual servers (VRRP only)\n".into()),
            },
        }
    }

    /// `/metrics`, read now from the workers' own counters: nothing is pushed anywhere.
    fn scrape(&mut self) -> String {
        let common = metrics::Common {
            cfg: &self.cfg,
            vrrp: self.vrrp.stats(),
            reloads: self.reloads,
            reload_failures: self.reload_failures,
            alerts: crate::alert::stats(),
        };
        match self.lb.as_mut() {
            Some(l) => {
                let xdp = l.steer.counters().ok();
                let (out, fast_in) = (l.outbound(&self.cfg), l.fast_in());
                let xsk = l.workers.xsk_stats();
                let fast_path = l.fast_path_view(&self.cfg);
                metrics::render(
                    &common,
                    Some(metrics::Balancer {
                        registry: &mut l.registry,
                        workers: l.workers.counters(),
                        xsk: &xsk,
                        out: &out,
                        fast_in: &fast_in,
                        xdp,
                        health: &l.health,
                        drains: &l.drains,
                        overload: &l.overload,
                        checks: &self.monitors,
                        generation: l.generation,
                        fast_path,
                        sync: l.sync.as_ref().map(|s| &*s.thread.stats),
                    }),
                )
            }
            None => metrics::render(&common, None),
        }
    }

    fn on_health(&mut self, ev: health::task::Event) {
        let Some(l) = self.lb.as_mut() else { return };
        for (vs, crossing) in l.on_health(&self.cfg, ev) {
            // Below quorum, the director offers its VIPs to a healthier peer.
            if let Some((instance, low)) = &vs.quorum_vrrp {
                let p = match crossing {
                    Crossing::Lost => Some(*low),
                    Crossing::Regained => None,
                };
                self.vrrp.set_priority(instance, p);
            }
        }
    }

    fn sample_rates(&mut self) {
        if let Some(l) = self.lb.as_mut() {
            let (out, fast_in) = (l.outbound(&self.cfg), l.fast_in());
            let bpf = status::Steered {
                out: &out,
                fast_in: &fast_in,
            };
            self.rates
                .sample(Instant::now(), &l.registry, l.workers.counters(), bpf);
        }
    }
}

/// The locks a running xvs holds: each interface it serves, and its control socket.
fn instance_locks(ifaces: &Ifaces, socket: &Path) -> Vec<(PathBuf, String)> {
    let mut v: Vec<(PathBuf, String)> = ifaces
        .all()
        .map(|i| {
            (
                control_socket::interface_lock_path(i.ifindex),
                format!("interface {}", i.name),
            )
        })
        .collect();
    let mut lock = socket.as_os_str().to_owned();
    lock.push(".lock");
    v.push((
        PathBuf::from(lock),
        format!("the control socket {}", socket.display()),
    ));
    v
}

/// Sleeps until `at`, or forever when there is none.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub async fn run(path: &Path, cfg: Config, ifaces: Ifaces) -> Result<()> {
    privilege::check(&cfg)?;
    let socket_path = cfg
        .control_socket
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(control_socket::default_path);
    // Before anything is touched: another xvs on one of these keeps them.
    let _instance = crate::sys::instance::acquire(&instance_locks(&ifaces, &socket_path))?;
    crate::script::init(&cfg)?;
    crate::alert::start(cfg.email_alerts.as_ref());
    for w in hostcheck::warnings(&cfg, &ifaces) {
        warn!("{w}");
    }
    let lb = if cfg.virtual_servers.is_empty() {
        info!("no virtual servers: VRRP only, nothing attached");
        None
    } else {
        Some(Lb::start(path, &cfg, &ifaces)?)
    };
    // VRRP after the load balancer: a director that becomes master can forward at once.
    // Its own thread: nothing this loop does can delay an advert.
    // With connection sync, a preempting instance waits for this director's resync.
    let gate = lb.as_ref().and_then(|l| l.sync.as_ref()).map(|s| SyncGate {
        ready: s.ready.clone(),
        wait: s.resync_timeout,
    });
    let vrrp = VrrpThread::spawn(&cfg.vrrp_instances, cfg.vrrp_realtime_priority, gate)?;
    let (health_tx, mut health_rx) = tokio::sync::mpsc::channel(64);
    let mut monitors = health::Monitors::new(health_tx);
    if lb.is_some() {
        monitors.sync(health_targets(&cfg));
    }

    let (ask_metrics, mut scrapes) = tokio::sync::mpsc::channel::<metrics::Request>(16);
    if let Some(addr) = cfg.metrics_listen {
        if let Some(listener) = metrics::bind(&addr.to_string()).await {
            info!("serving /metrics on http://{addr}/metrics");
            tokio::spawn(metrics::serve(listener, ask_metrics));
        }
    }
    let (command_tx, mut commands) = tokio::sync::mpsc::channel::<control_socket::Incoming>(16);
    match control_socket::bind(&socket_path) {
        Ok(l) => {
            info!("control socket {}", socket_path.display());
            tokio::spawn(control_socket::serve(l, command_tx));
        }
        Err(e) => warn!("no control socket: {e:#}"),
    }
    // The optional file watch: a closed channel (never ready) when it is off.
    let mut changes = if cfg.watch_config {
        match watch::spawn(path) {
            Ok(rx) => {
                info!("watching {} for changes", path.display());
                rx
            }
            Err(e) => {
                warn!("no file watch: {e:#}");
                tokio::sync::mpsc::channel(1).1
            }
        }
    } else {
        tokio::sync::mpsc::channel(1).1
    };
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // Counter samples for `xvs status --rate`; the first tick is immediate.
    let mut rate_tick = tokio::time::interval(status::RATE_SAMPLE);
    rate_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut xdp_tx_tick = tokio::time::interval(xdp_tx::SAMPLE);
    xdp_tx_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut d = Daemon {
        path,
        cfg,
        ifaces,
        lb,
        monitors,
        vrrp,
        rates: status::Rates::default(),
        reloads: 0,
        reload_failures: 0,
        systemd: systemd::Systemd::new(),
    };
    let mut watchdog = d.systemd.ping_every().map(|p| {
        let mut t = tokio::time::interval(p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    // Attached, workers running, sockets bound: ready.
    let line = d.status_line();
    d.systemd.ready(&line);
    // Deadlines from the last run, not sleeps from now: every other event restarts the
    // loop, and a sleep begun anew each time would never end.
    let (mut refreshed, mut thresholds_read) = (Instant::now(), Instant::now());
    loop {
        let next =
            d.lb.as_ref()
                .map_or(RESOLVE_REFRESH, |l| l.next_refresh(&d.cfg));
        let refresh_due = tokio::time::Instant::from_std(refreshed + next);
        let threshold_due = Lb::threshold_tick(&d.cfg)
            .filter(|_| d.lb.is_some())
            .map(|t| tokio::time::Instant::from_std(thresholds_read + t));
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            _ = rate_tick.tick() => d.sample_rates(),
            _ = async { watchdog.as_mut().unwrap().tick().await }, if watchdog.is_some() => {
                d.ping_watchdog();
            }
            _ = xdp_tx_tick.tick(), if d.lb.as_ref().is_some_and(Lb::watching_xdp_tx) => {
                if let Some(l) = d.lb.as_mut() {
                    l.check_xdp_tx(&d.cfg);
                }
            }
            _ = hup.recv() => {
                info!("SIGHUP: reloading {}", path.display());
                let _ = d.reload().await;
            }
            Some(()) = changes.recv() => {
                info!("{} changed: reloading", path.display());
                let _ = d.reload().await;
            }
            Some(cmd) = commands.recv() => {
                let answer = d.command(&cmd.line).await;
                let _ = cmd.reply.send(answer);
            }
            Some(reply) = scrapes.recv() => {
                let _ = reply.send(d.scrape());
            }
            Some(ev) = health_rx.recv() => d.on_health(ev),
            _ = sleep_until(threshold_due) => {
                thresholds_read = Instant::now();
                if let Some(l) = d.lb.as_mut() {
                    l.check_thresholds(&d.cfg);
                }
            }
            _ = tokio::time::sleep_until(refresh_due) => {
                if let Some(l) = d.lb.as_mut() {
                    l.refresh(&d.cfg, &d.ifaces).await;
                }
                refreshed = Instant::now();
            }
        }
    }

    d.systemd.stopping();
    // VRRP first: a master says goodbye (priority 0) so its backup takes over at once.
    let summaries = d.vrrp.stop();
    d.monitors.stop_all();
    let _ = std::fs::remove_file(&socket_path);
    println!("reloads: {} done, {} failed", d.reloads, d.reload_failures);
    for line in summaries {
        println!("{line}");
    }
    if let Some(l) = d.lb.take() {
        l.stop(&d.cfg, &d.ifaces);
    }
    info!("bye");
    Ok(())
}
