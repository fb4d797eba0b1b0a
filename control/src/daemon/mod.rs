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

#[cfg(test)]
mod agreement;
mod bringup;
mod command;
pub mod drain;
mod flow_state;
mod handover;
pub mod hostcheck;
mod ifaces;
mod lb;
mod left_vips;
pub mod limits;
pub mod overload;
mod page;
mod privilege;
pub mod publish;
mod reload;
mod resolve;
mod steer_maps;
mod systemd;
mod takeover;
mod translate;
mod watch;
mod workers;
pub mod xdp_tx;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Interval;
use tracing::{error, info, warn};
use xvs_config::{Config, VirtualServer};

pub use ifaces::Ifaces;

use self::command::Command;
use self::lb::{Lb, RESOLVE_REFRESH};
use crate::announce::{self, Announcer};
use crate::control_socket;
use crate::health::quorum::Crossing;
use crate::health::{self, health_targets};
use crate::observe::counters::AllWorkers;
use crate::observe::{explain, flows, metrics, status};
use crate::vrrp::{SyncGate, VrrpThread};

/// How often route health injection plans again besides its events (warmup, retries).
const ANNOUNCE_TICK: Duration = Duration::from_millis(250);
/// How long a process that hands over waits for its VIP routes to be taken over.
const ADOPT_WAIT: Duration = Duration::from_secs(1);

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
    /// The last reload's outcome, for the status page.
    last_reload: Option<page::LastReload>,
    /// Since when each real server is in its state, and its last check.
    notes: status::Notes,
    /// A new xvs asked to take over: the loop ends, and this process with it.
    handing_over: bool,
    /// It takes the VIP routes over: this process waits for that before it exits.
    adopting: bool,
    /// Route health injection (`announce`), when configured.
    announce: Option<Announcer>,
    systemd: systemd::Systemd,
}

impl<'p> Daemon<'p> {
    fn new(
        path: &'p Path,
        cfg: Config,
        ifaces: Ifaces,
        lb: Option<Lb>,
        monitors: health::Monitors,
        vrrp: VrrpThread,
        announce: Option<Announcer>,
    ) -> Self {
        Daemon {
            path,
            cfg,
            ifaces,
            lb,
            monitors,
            vrrp,
            rates: status::Rates::default(),
            reloads: 0,
            reload_failures: 0,
            last_reload: None,
            notes: status::Notes::default(),
            handing_over: false,
            adopting: false,
            announce,
            systemd: systemd::Systemd::new(),
        }
    }

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
        let done = self.reload_outcome().await;
        self.last_reload = Some(page::LastReload {
            at: page::unix_now(),
            ok: done.is_ok(),
            // A failure's diagnostics stay with `xvs reload` and the journal: the page is
            // for whoever reaches the listener, and they quote the file.
            message: match &done {
                Ok(m) => m.trim().to_string(),
                Err(_) => "the file was refused (`xvs reload` or the journal says why)".into(),
            },
        });
        done
    }

    async fn reload_outcome(&mut self) -> Result<String, String> {
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
                if let Some(a) = self.announce.as_mut() {
                    a.reconfigure(&self.cfg);
                }
                // Changed checks or quorums: decided now, not at the next health event.
                if let Some(l) = self.lb.as_mut() {
                    let crossed = owned(l.requorum(&self.cfg));
                    self.on_quorum(crossed);
                }
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
            Command::Status(req) => self.status(req).await,
            Command::Drain { target, on } => {
                let done = match self.lb.as_mut() {
                    Some(l) => l.drain(&self.cfg, &target, on),
                    None => Err("no virtual servers (VRRP only): nothing to drain\n".into()),
                };
                // A drained real server may leave a VIP short of `min_healthy`.
                self.announce();
                done
            }
            Command::DrainDirector { on } => {
                let Some(a) = self.announce.as_mut() else {
                    return Err("the configuration has no `announce`: this director announces no VIP to withdraw (docs/scale-out.md)\n".into());
                };
                let said = a.drain_director(on);
                self.announce();
                Ok(said)
            }
            Command::HandOver { adopting } => {
                // Answered now; the loop ends after the answer is sent (`serve`).
                self.handing_over = true;
                self.adopting = adopting;
                // No new process to adopt the routes: systemd keeps their device.
                if let (Some(a), false) = (&self.announce, adopting) {
                    a.keep_for_restart();
                }
                let stats = self.vrrp.stats();
                let masters: Vec<String> = stats
                    .iter()
                    .filter(|(_, s)| s.state() == crate::vrrp::machine::State::Master)
                    .map(|(name, _)| name.clone())
                    .collect();
                let reply = handover::reply(
                    stats
                        .iter()
                        .map(|(name, s)| (name.clone(), s.state().as_str())),
                    &left_vips::of_masters(&self.cfg, &masters),
                    self.announce.as_ref().map(Announcer::device),
                );
                // For a next process that did not ask itself (a systemd restart).
                handover::record(&handover_path(&self.ifaces), &reply);
                Ok(reply)
            }
            Command::Explain(args) => match self.lb.as_ref() {
                Some(l) => {
                    explain::explain(&l.shared.load_full(), l.workers.counters(), &args).await
                }
                None => Ok("no virtual servers (VRRP only)\n".into()),
            },
        }
    }

    /// `xvs status`, in the view asked for.
    async fn status(&mut self, req: status::Request) -> Result<String, String> {
        let Some(l) = self.lb.as_mut() else {
            return Ok(status::render(&[], req, self.cfg.flow_table_size));
        };
        match req.view {
            status::View::Connections => connections(l, req.json).await,
            status::View::Sync => sync_status(l, req.json),
            status::View::Dataplane => Ok(dataplane_status(l, &self.cfg, req.json)),
            status::View::Announce => announce_status(self.announce.as_ref(), req.json),
            status::View::Drops => Ok(status::render_drops(
                l.steer.counters().ok().as_ref(),
                AllWorkers(l.workers.counters()),
                req.json,
            )),
            _ => {
                let mut rows = server_rows(l, &self.cfg, &self.rates);
                self.notes.annotate(&self.cfg, &l.health, &mut rows);
                Ok(status::render(&rows, req, self.cfg.flow_table_size))
            }
        }
    }

    /// A command from the control socket, answered.
    async fn answer(&mut self, cmd: control_socket::Incoming) {
        // A handover ends this process: for root only (the unit's ExecStop, an admin's
        // `xvs run --takeover`), not for the scripts that run as xvs's own user.
        let handover = matches!(Command::parse(&cmd.line), Ok(Command::HandOver { .. }));
        let answer = if cmd.uid != 0 && handover {
            Err(
                "handover is for root: `systemctl restart xvs`, or `xvs run --takeover` as root\n"
                    .into(),
            )
        } else {
            self.command(&cmd.line).await
        };
        let _ = cmd.reply.send(answer);
    }

    /// `/metrics`, read now from the workers' own counters: nothing is pushed anywhere.
    fn scrape(&mut self) -> String {
        let common = metrics::Common {
            cfg: &self.cfg,
            vrrp: self.vrrp.stats(),
            reloads: self.reloads,
            reload_failures: self.reload_failures,
            alerts: crate::alert::stats(),
            announce: self.announce.as_ref(),
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
        self.notes.checked(ev.key, ev.up, &ev.reason);
        let Some(l) = self.lb.as_mut() else { return };
        let crossed = owned(l.on_health(&self.cfg, ev));
        self.on_quorum(crossed);
    }

    /// Quorum crossings (each with its `quorum_vrrp`): below quorum, the director offers
    /// its VIPs to a healthier peer, and its routes are planned again (`announce`).
    fn on_quorum(&mut self, crossed: Vec<(Option<(String, u8)>, Crossing)>) {
        for (quorum_vrrp, crossing) in crossed {
            if let Some((instance, low)) = &quorum_vrrp {
                let p = match crossing {
                    Crossing::Lost => Some(*low),
                    Crossing::Regained => None,
                };
                self.vrrp.set_priority(instance, p);
            }
        }
        self.announce();
    }

    /// Route health injection planned again from health, drains and time.
    fn announce(&mut self) {
        if let (Some(a), Some(l)) = (self.announce.as_mut(), self.lb.as_ref()) {
            a.update(&self.cfg, &l.health, &l.drains, &l.quorum);
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
        // Each real server's state is noted at every sample, looked at or not, so the
        // page's "since" is never more than a sample late.
        self.note_states();
    }

    fn check_xdp_tx(&mut self) {
        if let Some(l) = self.lb.as_mut() {
            l.check_xdp_tx(&self.cfg);
        }
    }

    fn check_thresholds(&mut self) {
        if let Some(l) = self.lb.as_mut() {
            l.check_thresholds(&self.cfg);
        }
    }

    /// Neighbours and routes read again.
    async fn refresh(&mut self) {
        if let Some(l) = self.lb.as_mut() {
            l.refresh(&self.cfg, &self.ifaces).await;
        }
    }

    /// When neighbours and routes are next read, the last time being `refreshed`.
    fn refresh_due(&self, refreshed: Instant) -> tokio::time::Instant {
        let next = self
            .lb
            .as_ref()
            .map_or(RESOLVE_REFRESH, |l| l.next_refresh(&self.cfg));
        tokio::time::Instant::from_std(refreshed + next)
    }

    /// When the connection thresholds are next read, if they are, the last time being
    /// `thresholds_read`.
    fn threshold_due(&self, thresholds_read: Instant) -> Option<tokio::time::Instant> {
        Lb::threshold_tick(&self.cfg)
            .filter(|_| self.lb.is_some())
            .map(|t| tokio::time::Instant::from_std(thresholds_read + t))
    }

    /// The event loop, until SIGTERM or SIGINT; each event's handling is a method.
    async fn serve(&mut self, events: &mut Events, mut watchdog: Option<Interval>) {
        let Events {
            term,
            int,
            hup,
            changes,
            commands,
            scrapes,
            health,
            rate_tick,
            xdp_tx_tick,
            announce_tick,
        } = events;
        // Deadlines from the last run, not sleeps from now: every other event restarts the
        // loop, and a sleep begun anew each time would never end.
        let (mut refreshed, mut thresholds_read) = (Instant::now(), Instant::now());
        loop {
            let refresh_due = self.refresh_due(refreshed);
            let threshold_due = self.threshold_due(thresholds_read);
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
                _ = int.recv() => { info!("SIGINT: shutting down"); break; }
                _ = rate_tick.tick() => self.sample_rates(),
                _ = announce_tick.tick(), if self.announce.is_some() => self.announce(),
                _ = async { watchdog.as_mut().unwrap().tick().await }, if watchdog.is_some() => {
                    self.ping_watchdog();
                }
                _ = xdp_tx_tick.tick(), if self.lb.as_ref().is_some_and(Lb::watching_xdp_tx) => {
                    self.check_xdp_tx();
                }
                _ = hup.recv() => {
                    info!("SIGHUP: reloading {}", self.path.display());
                    let _ = self.reload().await;
                }
                Some(()) = changes.recv() => {
                    info!("{} changed: reloading", self.path.display());
                    let _ = self.reload().await;
                }
                Some(cmd) = commands.recv() => {
                    self.answer(cmd).await;
                    if self.handing_over {
                        info!("handing over to a new xvs");
                        break;
                    }
                }
                Some((view, reply)) = scrapes.recv() => {
                    // A client that has gone costs no rendering.
                    if !reply.is_closed() {
                        let _ = reply.send(self.render_view(view));
                    }
                }
                Some(ev) = health.recv() => self.on_health(ev),
                _ = sleep_until(threshold_due) => {
                    thresholds_read = Instant::now();
                    self.check_thresholds();
                }
                _ = tokio::time::sleep_until(refresh_due) => {
                    self.refresh().await;
                    refreshed = Instant::now();
                }
            }
        }
    }

    /// The end of a handover: the workers stop, so their flow-state files hold every
    /// connection, and the process exits at once — nothing detached, no VRRP goodbye,
    /// the VIPs left on the interface for the new process, which is waiting for this
    /// one's `locks`.
    fn hand_over(mut self, locks: crate::sys::instance::InstanceLock) -> ! {
        // Not dropped: the steering program's handle would detach it.
        if let Some(l) = self.lb.as_mut() {
            l.quiesce();
        }
        // The new process moves the VIP routes onto its own device; this one's exit
        // would otherwise delete them with its device.
        if let (Some(a), true) = (&self.announce, self.adopting) {
            let (table, oif, _) = a.device();
            announce::wait_adopted(table, oif, ADOPT_WAIT);
        }
        // The workers and their sockets are gone: the new process may go on while the
        // kernel tears this one down (tens of milliseconds with a large flow table).
        // Adverts this one's VRRP thread still sends meanwhile are from the same router
        // and address as the new master's.
        drop(locks);
        info!(
            "handed over after {} reload(s); exiting without detaching",
            self.reloads
        );
        std::process::exit(handover::HANDED_OVER)
    }

    /// The end: VRRP steps down, the monitors and the load balancer stop, and the run's
    /// reloads and VRRP summaries are printed.
    fn shut_down(mut self, socket_path: &Path) {
        self.systemd.stopping();
        // The routers first: they move new flows away while the workers still serve.
        if let Some(a) = self.announce.as_mut() {
            let delay = a.withdraw_all(&self.cfg);
            info!(
                "announce: every VIP withdrawn from table {}; serving on for {delay:?} while the routers move the flows",
                a.table()
            );
            std::thread::sleep(delay);
        }
        // VRRP first: a master says goodbye (priority 0) so its backup takes over at once.
        let summaries = self.vrrp.stop();
        self.monitors.stop_all();
        let _ = std::fs::remove_file(socket_path);
        println!(
            "reloads: {} done, {} failed",
            self.reloads, self.reload_failures
        );
        for line in summaries {
            println!("{line}");
        }
        if let Some(l) = self.lb.take() {
            l.stop(&self.cfg, &self.ifaces);
        }
        if let Some(a) = self.announce.as_mut() {
            a.release();
        }
        info!("bye");
    }
}

/// Crossings with what they act on copied out of the configuration.
fn owned(crossed: Vec<(&VirtualServer, Crossing)>) -> Vec<(Option<(String, u8)>, Crossing)> {
    crossed
        .into_iter()
        .map(|(vs, c)| (vs.quorum_vrrp.clone(), c))
        .collect()
}

/// What the event loop hears from besides its deadlines: signals, the file watch, the
/// control socket, `/metrics`, the health checks, and its ticks.
struct Events {
    term: Signal,
    int: Signal,
    hup: Signal,
    changes: mpsc::Receiver<()>,
    commands: mpsc::Receiver<control_socket::Incoming>,
    scrapes: mpsc::Receiver<metrics::Request>,
    health: mpsc::Receiver<health::task::Event>,
    rate_tick: Interval,
    xdp_tx_tick: Interval,
    /// Route health injection's warmup and retries.
    announce_tick: Interval,
}

/// `xvs status --connections`: the flows the workers hold, a sample of each's table.
async fn connections(l: &Lb, json: bool) -> Result<String, String> {
    let per_worker = status::CONNECTIONS_LIMIT / l.workers.counters().len().max(1);
    let answers = flows::ask(l.workers.counters(), |d| d.request(per_worker)).await?;
    let live = answers.iter().map(|a| a.live).sum();
    let rows = status::connection_rows(&answers, &l.registry);
    Ok(status::render_connections(&rows, live, json))
}

/// `xvs status --sync`: connection sync, if it is on.
fn sync_status(l: &Lb, json: bool) -> Result<String, String> {
    match &l.sync {
        Some(s) => Ok(status::render_sync(
            &s.thread.stats,
            AllWorkers(l.workers.counters()),
            json,
        )),
        None => Err("connection sync is off: add a `connection_sync:` section to the configuration (docs/configuration.md)\n".into()),
    }
}

/// `xvs status --announce`: each VIP, announced or not and why.
fn announce_status(a: Option<&Announcer>, json: bool) -> Result<String, String> {
    let Some(a) = a else {
        return Err(
            "the configuration has no `announce`: no VIP routes are written (docs/scale-out.md)\n"
                .into(),
        );
    };
    Ok(status::render_announce(a.table(), &a.rows(), json))
}

/// `xvs status --dataplane`: how packets leave.
fn dataplane_status(l: &Lb, cfg: &Config, json: bool) -> String {
    let v = l.fast_path_view(cfg);
    if json {
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    } else {
        v.render()
    }
}

/// The rows of `xvs status` (the table, `--stats`, `--rate`, `--thresholds`) and of
/// the status page.
fn server_rows(l: &mut Lb, cfg: &Config, rates: &status::Rates) -> Vec<status::VirtualServerRow> {
    let snap = l.shared.load();
    let (out, fast_in) = (l.outbound(cfg), l.fast_in());
    let pool = status::Pool {
        snap: &snap,
        drains: &l.drains,
        overload: &l.overload,
    };
    status::rows(
        cfg,
        pool,
        &mut l.registry,
        l.workers.counters(),
        status::Steered {
            out: &out,
            fast_in: &fast_in,
        },
        rates,
        Instant::now(),
    )
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

/// A tick every `period`; one missed is delayed, not made up in a burst.
fn ticker(period: Duration) -> Interval {
    let mut t = tokio::time::interval(period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// Runs the director; `takeover`: take a running xvs's place (`handover.rs`).
pub async fn run(path: &Path, cfg: Config, ifaces: Ifaces, takeover: bool) -> Result<()> {
    // First: a device systemd kept across a restart is this process's from here on, so
    // whatever fails below takes its routes away with this process.
    let mut announcer = Announcer::start(&cfg)?;
    privilege::check(&cfg)?;
    let socket_path = socket_path(&cfg);
    let locks = instance_locks(&ifaces, &socket_path);
    // The verifier's time is spent while the running xvs still serves.
    let preloaded = match takeover && !cfg.virtual_servers.is_empty() {
        true => Some(takeover::Preloaded::load(&cfg, &ifaces)?),
        false => None,
    };
    // The running xvs's VIP routes are moved onto this one's device (`adopt`).
    let handed = match takeover {
        true => handover::ask(&socket_path, announcer.is_some())?,
        false => None,
    };
    if let (Some(a), Some((table, oif, _))) =
        (announcer.as_mut(), handed.as_ref().and_then(|h| h.routes))
    {
        a.adopt(&cfg, table, oif);
    }
    // Before anything is touched: another xvs on one of these keeps them (one that
    // agreed to hand over is waited for).
    let _instance = match &handed {
        Some(_) => handover::wait_for_locks(&locks)?,
        None => crate::sys::instance::acquire(&locks)?,
    };
    crate::script::init(&cfg)?;
    crate::alert::start(cfg.email_alerts.as_ref());
    for w in hostcheck::warnings(&cfg, &ifaces) {
        warn!("{w}");
    }
    // Asked ourselves, or a restart whose ExecStop asked: the last process's masters.
    // The record is taken either way, so no later start resumes from it.
    let recorded = match _instance.complete() {
        true => handover::take(&handover_path(&ifaces)),
        false => None,
    };
    let handed_over = handed.is_some() || recorded.is_some();
    let last_routes = handed
        .as_ref()
        .and_then(|h| h.routes)
        .or(recorded.as_ref().and_then(|(h, _)| h.routes));
    if let (Some(a), Some((table, oif, drained))) = (announcer.as_mut(), last_routes) {
        a.carry_on(drained);
        // A restart under the unit: the kept device's routes in the last process's
        // table (another, if the file changed it) come under this configuration.
        if recorded.is_some() && a.device().1 == oif {
            a.adopt(&cfg, table, oif);
        }
    }
    let (masters, left) = match (handed, recorded) {
        (Some(h), _) => (h.masters, h.vips),
        (None, Some((h, age))) => (handover::resumable(&cfg, h.masters, age), h.vips),
        (None, None) => (Vec::new(), Vec::new()),
    };
    // What the last process held for instances this configuration does not have.
    left_vips::release_orphans(&cfg, &left);
    let prior = takeover::Prior {
        locked: _instance.complete(),
        preloaded,
    };
    let (lb, vrrp) = match start_parts(path, &cfg, &ifaces, prior, &masters) {
        Ok(parts) => parts,
        Err(e) => {
            if handed_over {
                handover::abandon(&cfg);
            }
            return Err(e);
        }
    };
    let (health_tx, health_rx) = mpsc::channel(64);
    let mut monitors = health::Monitors::new(health_tx);
    if lb.is_some() {
        monitors.sync(health_targets(&cfg));
    }
    let (ask_metrics, scrapes) = mpsc::channel::<metrics::Request>(16);
    // A process that handed over may hold the port until it has exited.
    let patience = match handed_over {
        true => Duration::from_secs(2),
        false => Duration::ZERO,
    };
    serve_metrics(&cfg, &ask_metrics, patience).await;
    let (command_tx, commands) = mpsc::channel::<control_socket::Incoming>(16);
    serve_control_socket(&socket_path, &command_tx);
    let mut events = Events {
        changes: watch_file(path, &cfg),
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        hup: signal(SignalKind::hangup())?,
        // Counter samples for `xvs status --rate`; the first tick is immediate.
        rate_tick: ticker(status::RATE_SAMPLE),
        xdp_tx_tick: ticker(xdp_tx::SAMPLE),
        announce_tick: ticker(ANNOUNCE_TICK),
        commands,
        scrapes,
        health: health_rx,
    };
    let mut d = Daemon::new(path, cfg, ifaces, lb, monitors, vrrp, announcer);
    d.announce();
    let watchdog = d.systemd.ping_every().map(ticker);
    // Attached, workers running, sockets bound: ready.
    let line = d.status_line();
    d.systemd.ready(&line);
    d.serve(&mut events, watchdog).await;
    if d.handing_over {
        // Let the control socket's task send the answer before the loop stops for good.
        tokio::time::sleep(Duration::from_millis(20)).await;
        d.hand_over(_instance);
    }
    d.shut_down(&socket_path);
    Ok(())
}

/// The load balancer and VRRP. VRRP after the load balancer, so a director that becomes
/// master can forward at once; but first when instances resume as master after a
/// handover (`masters`), so their adverts go on while the load balancer starts. What a
/// killed (or handed-over) xvs left is taken over only when no other can be running
/// (`prior`).
fn start_parts(
    path: &Path,
    cfg: &Config,
    ifaces: &Ifaces,
    prior: takeover::Prior,
    masters: &[String],
) -> Result<(Option<Lb>, VrrpThread)> {
    if masters.is_empty() {
        let lb = start_lb(path, cfg, ifaces, prior)?;
        let vrrp = start_vrrp(cfg, lb.as_ref(), &[])?;
        return Ok((lb, vrrp));
    }
    let vrrp = start_vrrp(cfg, None, masters)?;
    let lb = start_lb(path, cfg, ifaces, prior)?;
    Ok((lb, vrrp))
}

/// Where a process that hands over records what it handed (`handover::record`).
fn handover_path(ifaces: &Ifaces) -> PathBuf {
    control_socket::interface_state_path(ifaces.external.ifindex, "handover")
}

pub use handover::{systemd_restarting, wait_gone};

/// The control socket's path: the configured one, or the default.
fn socket_path(cfg: &Config) -> PathBuf {
    cfg.control_socket
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(control_socket::default_path)
}

/// The load balancer, attached and running; none when there are no virtual servers.
fn start_lb(
    path: &Path,
    cfg: &Config,
    ifaces: &Ifaces,
    prior: takeover::Prior,
) -> Result<Option<Lb>> {
    Ok(if cfg.virtual_servers.is_empty() {
        info!("no virtual servers: VRRP only, nothing attached");
        None
    } else {
        Some(Lb::start(path, cfg, ifaces, prior)?)
    })
}

/// The VRRP thread, running every instance.
/// VRRP on its own thread (nothing the loop does can delay an advert); `resume`: the
/// instances that start as master (a handover).
fn start_vrrp(cfg: &Config, lb: Option<&Lb>, resume: &[String]) -> Result<VrrpThread> {
    // With connection sync, a preempting instance waits for this director's resync.
    let gate = lb.and_then(|l| l.sync.as_ref()).map(|s| SyncGate {
        ready: s.ready.clone(),
        wait: s.resync_timeout,
    });
    VrrpThread::spawn(
        &cfg.vrrp_instances,
        cfg.vrrp_realtime_priority,
        gate,
        resume,
    )
}

/// Serves `/metrics` when configured, asking the event loop through `ask`.
async fn serve_metrics(cfg: &Config, ask: &mpsc::Sender<metrics::Request>, patience: Duration) {
    if let Some(addr) = cfg.metrics_listen {
        if let Some(listener) = metrics::bind(&addr.to_string(), patience).await {
            info!("serving /metrics on http://{addr}/metrics");
            tokio::spawn(metrics::serve(listener, ask.clone()));
        }
    }
}

/// Serves the control socket, its commands sent to the event loop through `tx`; the
/// daemon runs without one it cannot bind.
fn serve_control_socket(socket_path: &PathBuf, tx: &mpsc::Sender<control_socket::Incoming>) {
    match control_socket::bind(socket_path) {
        Ok(l) => {
            info!("control socket {}", socket_path.display());
            tokio::spawn(control_socket::serve(l, tx.clone()));
        }
        Err(e) => warn!("no control socket: {e:#}"),
    }
}

/// The optional file watch: a closed channel (never ready) when it is off.
fn watch_file(path: &Path, cfg: &Config) -> mpsc::Receiver<()> {
    if cfg.watch_config {
        match watch::spawn(path) {
            Ok(rx) => {
                info!("watching {} for changes", path.display());
                rx
            }
            Err(e) => {
                warn!("no file watch: {e:#}");
                mpsc::channel(1).1
            }
        }
    } else {
        mpsc::channel(1).1
    }
}
