//! `xvs run`: attach, start the workers, keep the snapshot current, and undo everything
//! on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};
use xvs_bpf::{AttachMode, Steer};
use xvs_config::{Config, Forwarding, XdpMode};
use xvs_dataplane::flow::{TcpState, Timeouts};
use xvs_dataplane::pipeline::NodestPolicy;
use xvs_dataplane::snapshot::MAX_DESTS;
use xvs_dataplane::worker::{Worker, WorkerConfig};
use xvs_dataplane::xsk::{Xsk, XskConfig};
use xvs_dataplane::{PipelineConfig, SharedSnapshot, WorkerCounters};

use crate::health::{self, Health, HealthMap};
use crate::iface::Iface;
use crate::publish::{self, DestKey, DestRegistry};
use crate::vrrp::VrrpThread;
use crate::{control, explain, metrics, netlink, report, status, watch};

/// How often unresolved real servers are retried, and resolved ones re-read.
const RESOLVE_RETRY: Duration = Duration::from_secs(1);
const RESOLVE_REFRESH: Duration = Duration::from_secs(30);

/// The worker threads; dropping this stops and joins them.
struct Workers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<std::io::Result<()>>>,
    counters: Vec<Arc<WorkerCounters>>,
    /// Each worker's AF_XDP socket, for the kernel's counters (the worker owns it).
    fds: Vec<std::os::fd::RawFd>,
}

impl Workers {
    /// The kernel's XDP_STATISTICS of each worker's socket; None for a worker that has
    /// ended (its socket is closed, the descriptor number maybe reused).
    fn xsk_stats(&self) -> Vec<Option<xvs_dataplane::xsk::XskStats>> {
        self.fds
            .iter()
            .zip(&self.handles)
            .map(|(fd, h)| {
                if h.is_finished() {
                    None
                } else {
                    xvs_dataplane::xsk::stats_of(*fd).ok()
                }
            })
            .collect()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for (q, h) in self.handles.drain(..).enumerate() {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => error!("worker for queue {q} failed: {e}"),
                Err(_) => error!("worker for queue {q} panicked"),
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        // Not secret, only unpredictable enough to spread flows: time will do.
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
    }
    u64::from_ne_bytes(b)
}

/// The interfaces xvs runs on: the one facing clients, and for two-arm NAT the one
/// facing the real servers.
pub struct Ifaces {
    pub external: Iface,
    pub internal: Option<Iface>,
}

impl Ifaces {
    /// Where a virtual server's real servers are reached.
    fn towards_real_servers(&self, vs: &xvs_config::VirtualServer) -> &Iface {
        match (&self.internal, vs.forwarding) {
            (Some(int), Forwarding::Nat) => int,
            _ => &self.external,
        }
    }
}

/// The load balancer: the steering program, the workers, and what feeds them.
struct Lb {
    steer: Steer,
    workers: Workers,
    shared: SharedSnapshot,
    registry: DestRegistry,
    local: publish::Local,
    macs: HashMap<Ipv4Addr, [u8; 6]>,
    health: HealthMap,
    /// Per virtual server: whether its quorum is met.
    quorum: HashMap<String, bool>,
    generation: u64,
    queues: u32,
}

impl Lb {
    fn start(path: &Path, cfg: &Config, ifaces: &Ifaces) -> Result<Lb> {
        let iface = &ifaces.external;
        let mut registry = DestRegistry::default();
        let local = local_side(cfg, ifaces)?;
        let macs = resolve(cfg, ifaces, &HashMap::new());
        let generation = 1;
        let health = initial_health(cfg);
        let snap = publish::build(generation, cfg, local, &macs, &health, &mut registry)?;
        let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(snap));

        let mut steer = Steer::load().context("loading the steering program")?;
        steer.set_services(&publish::steering_services(cfg))?;
        // Answers to the director's own probes are not NAT replies.
        let own: Vec<Ipv4Addr> = netlink::addresses()
            .context("reading the director's addresses")?
            .into_iter()
            .map(|(_, a, _)| a)
            .collect();
        steer.set_local_addrs(&own)?;
        let reply_out = if ifaces.internal.is_some() {
            iface.ifindex
        } else {
            0
        };
        steer.set_nat_backends(&publish::nat_backends(
            cfg,
            iface.mac,
            reply_out,
            &mut registry,
        ))?;
        let mode = match cfg.xdp_mode {
            XdpMode::Auto => AttachMode::Auto,
            XdpMode::Native => AttachMode::Native,
            XdpMode::Generic => AttachMode::Generic,
        };
        let mut queues = cfg.workers.unwrap_or(iface.rx_queues).min(iface.rx_queues);
        for i in std::iter::once(iface).chain(&ifaces.internal) {
            steer.set_local_mac(i.ifindex, i.mac)?;
            let got = steer.attach(i.ifindex as i32, mode)?;
            info!(
                "attached xvs_steer to {} (ifindex {}) in {} mode",
                i.name,
                i.ifindex,
                got.as_str()
            );
        }
        if let Some(int) = &ifaces.internal {
            // Services on the clients' side only; the internal side gets NAT replies.
            steer.set_external_ifindex(iface.ifindex)?;
            // Each worker's internal socket needs a queue of its own there.
            if int.rx_queues < queues {
                warn!(
                    "{} has {} queue(s): running {} worker(s) instead of {queues}",
                    int.name, int.rx_queues, int.rx_queues
                );
                queues = int.rx_queues;
            }
        }
        let cpus = xvs_dataplane::sys::allowed_cpus();
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Workers {
            stop: Arc::clone(&stop),
            handles: Vec::new(),
            counters: Vec::new(),
            fds: Vec::new(),
        };
        let hash_seed = seed();
        for q in 0..queues {
            let xsk = Xsk::open(iface.ifindex, q, &XskConfig::default())?;
            info!(
                "queue {q}: AF_XDP socket bound in {} mode",
                xsk.mode().as_str()
            );
            let counters = Arc::new(WorkerCounters::new(MAX_DESTS));
            let wc = WorkerConfig {
                queue: q,
                cpu: cpus.get(q as usize % cpus.len().max(1)).copied(),
                pipeline: PipelineConfig {
                    flow_capacity: cfg.flow_table_size,
                    hash_seed,
                    timeouts: timeouts(&cfg.timeouts),
                    nodest: match cfg.expire_nodest_conn {
                        xvs_config::NodestPolicy::Reschedule => NodestPolicy::Reschedule,
                        xvs_config::NodestPolicy::Expire => NodestPolicy::Expire,
                        xvs_config::NodestPolicy::Drop => NodestPolicy::Drop,
                    },
                },
            };
            let fd = xsk.fd();
            let internal = match &ifaces.internal {
                Some(int) => {
                    Some(xsk.open_shared_tx(int.ifindex, q, XskConfig::default().tx_size)?)
                }
                None => None,
            };
            let mut worker = Worker::new(
                xsk,
                &wc,
                Arc::clone(&shared),
                Arc::clone(&stop),
                Arc::clone(&counters),
            );
            if let (Some(tx), Some(int)) = (internal, &ifaces.internal) {
                info!(
                    "queue {q}: NAT requests leave by {} queue {q} (shared UMEM, no copy)",
                    int.name
                );
                worker = worker.with_internal(tx);
            }
            workers.handles.push(
                worker
                    .spawn(q, wc.cpu)
                    .context("starting a worker thread")?,
            );
            workers.counters.push(counters);
            workers.fds.push(fd);
            // Registered after the worker owns the socket: from here its queue's VIP traffic
            // goes to the worker instead of the kernel.
            steer.register_xsk(q, fd)?;
        }
        info!(
            "xvs running: {} virtual server(s), {} worker(s), config {}",
            cfg.virtual_servers.len(),
            queues,
            path.display()
        );
        let quorum = cfg
            .virtual_servers
            .iter()
            .map(|v| (v.name.clone(), true))
            .collect();
        Ok(Lb {
            steer,
            workers,
            shared,
            registry,
            local,
            macs,
            health,
            quorum,
            generation,
            queues,
        })
    }

    /// Builds and publishes a new snapshot from the config, MACs and health.
    fn publish(&mut self, cfg: &Config, why: &str) {
        self.generation += 1;
        match publish::build(
            self.generation,
            cfg,
            self.local,
            &self.macs,
            &self.health,
            &mut self.registry,
        ) {
            Ok(s) => {
                self.shared.store(Arc::new(s));
                info!("published snapshot generation {} ({why})", self.generation);
            }
            Err(e) => error!("{e:#}"),
        }
    }

    /// Re-reads the neighbour tables; publishes a new snapshot if a MAC changed.
    fn refresh(&mut self, cfg: &Config, ifaces: &Ifaces) {
        let fresh = resolve(cfg, ifaces, &self.macs);
        if fresh != self.macs {
            self.macs = fresh;
            self.publish(cfg, "neighbours changed");
        }
    }

    /// A real server's health changed: log it, publish, and watch each quorum. Returns
    /// the virtual servers whose quorum changed, and whether it is met now.
    fn on_health<'c>(
        &mut self,
        cfg: &'c Config,
        ev: health::monitor::Event,
    ) -> Vec<(&'c xvs_config::VirtualServer, bool)> {
        let mut changed = Vec::new();
        if ev.up {
            info!("{} up: {}", ev.label, ev.reason);
        } else {
            warn!("{} down: {}", ev.label, ev.reason);
        }
        self.health.insert(
            ev.key,
            Health {
                up: ev.up,
                weight: ev.weight,
            },
        );
        self.publish(cfg, "health changed");
        for vs in &cfg.virtual_servers {
            let alive: u32 = vs
                .real_servers
                .iter()
                .map(|rs| {
                    let dk = DestKey::of(vs, rs);
                    match self.health.get(&dk) {
                        Some(h) if !h.up => 0,
                        Some(h) => h.weight.unwrap_or(rs.weight),
                        None => rs.weight,
                    }
                })
                .sum();
            let was = self.quorum.get(&vs.name).copied().unwrap_or(true);
            // keepalived: lost below quorum − hysteresis, regained at quorum + hysteresis.
            let now = if was {
                alive + vs.hysteresis >= vs.quorum
            } else {
                alive >= vs.quorum + vs.hysteresis
            };
            if now != was {
                self.quorum.insert(vs.name.clone(), now);
                let (what, script) = if now {
                    ("regained", &vs.quorum_up)
                } else {
                    ("lost", &vs.quorum_down)
                };
                warn!(
                    "virtual server {} {what} its quorum: live weight {alive}, quorum {}",
                    vs.name, vs.quorum
                );
                if let Some(s) = script {
                    crate::notify::spawn(format!("virtual server {}", vs.name), s.clone());
                }
                changed.push((vs, now));
            }
        }
        changed
    }

    /// What the steering program sent out for each NAT real server, by id (the rest: 0).
    fn outbound(&mut self, cfg: &Config) -> Vec<xvs_bpf::abi::NatOut> {
        let mut out = vec![xvs_bpf::abi::NatOut::default(); self.registry.issued()];
        for vs in cfg
            .virtual_servers
            .iter()
            .filter(|v| v.forwarding == Forwarding::Nat)
        {
            for rs in &vs.real_servers {
                let id = self.registry.id(publish::DestKey::of(vs, rs));
                if let (Some(slot), Ok(n)) = (out.get_mut(id as usize), self.steer.nat_out(id)) {
                    *slot = n;
                }
            }
        }
        out
    }

    fn next_refresh(&self, cfg: &Config) -> Duration {
        if publish::unresolved(cfg, &self.macs).is_empty() {
            RESOLVE_REFRESH
        } else {
            RESOLVE_RETRY
        }
    }

    /// Gives the kernel its traffic back first, then stops the workers; prints the counters.
    fn stop(mut self, cfg: &Config, ifaces: &Ifaces) {
        self.steer.detach();
        for q in 0..self.queues {
            self.steer.unregister_xsk(q);
        }
        self.workers.stop();
        let xdp = self.steer.counters().ok();
        print!(
            "{}",
            report::render(
                cfg,
                &mut self.registry,
                &self.workers.counters,
                xdp.as_ref()
            )
        );
        info!("detached from {}", ifaces.external.name);
    }
}

/// The health of checked real servers when their monitor starts: up, or down with
/// `alpha` (keepalived's meaning).
fn initial_health(cfg: &Config) -> HealthMap {
    cfg.virtual_servers
        .iter()
        .flat_map(|vs| vs.real_servers.iter().map(move |rs| (vs, rs)))
        .filter_map(|(vs, rs)| {
            let hc = rs.health_check.as_ref()?;
            let key = DestKey::of(vs, rs);
            Some((
                key,
                Health {
                    up: !hc.alpha,
                    weight: None,
                },
            ))
        })
        .collect()
}

/// What a reload cannot change live, named for the log.
fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut v = Vec::new();
    if old.xdp_mode != new.xdp_mode {
        v.push("xdp_mode");
    }
    if old.workers != new.workers {
        v.push("workers");
    }
    if old.flow_table_size != new.flow_table_size {
        v.push("flow_table_size");
    }
    if old.timeouts != new.timeouts {
        v.push("timeouts");
    }
    if old.expire_nodest_conn != new.expire_nodest_conn {
        v.push("expire_nodest_conn");
    }
    if old.tun_mtu != new.tun_mtu {
        v.push("tun_mtu");
    }
    if old.vrrp_instances != new.vrrp_instances {
        v.push("vrrp_instances and vrrp_sync_groups");
    }
    if old.metrics_listen != new.metrics_listen {
        v.push("metrics_listen");
    }
    if old.control_socket != new.control_socket {
        v.push("control_socket");
    }
    if old.watch_config != new.watch_config {
        v.push("watch_config");
    }
    v
}

pub async fn run(path: &Path, mut cfg: Config, ifaces: Ifaces) -> Result<()> {
    for w in crate::hostcheck::warnings(&cfg, &ifaces) {
        warn!("{w}");
    }
    let mut lb = if cfg.virtual_servers.is_empty() {
        info!("no virtual servers: VRRP only, nothing attached");
        None
    } else {
        Some(Lb::start(path, &cfg, &ifaces)?)
    };
    // VRRP after the load balancer: a director that becomes master can forward at once.
    // Its own thread: nothing this loop does can delay an advert.
    let vrrp = VrrpThread::spawn(&cfg.vrrp_instances)?;
    let (health_tx, mut health_rx) = tokio::sync::mpsc::channel(64);
    let mut monitors = health::Monitors::new(health_tx);
    if lb.is_some() {
        monitors.sync(health_targets(&cfg));
    }
    let (mut reloads, mut reload_failures) = (0u64, 0u64);

    let (ask_metrics, mut scrapes) = tokio::sync::mpsc::channel::<metrics::Request>(16);
    if let Some(addr) = cfg.metrics_listen {
        if let Some(listener) = metrics::bind(&addr.to_string()).await {
            info!("serving /metrics on http://{addr}/metrics");
            tokio::spawn(metrics::serve(listener, ask_metrics));
        }
    }

    let socket_path = cfg
        .control_socket
        .as_ref()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(control::default_path);
    let (command_tx, mut commands) = tokio::sync::mpsc::channel::<control::Command>(16);
    match control::bind(&socket_path) {
        Ok(l) => {
            info!("control socket {}", socket_path.display());
            tokio::spawn(control::serve(l, command_tx));
        }
        Err(e) => warn!("no control socket: {e:#}"),
    }
    // A reload, from SIGHUP or the control socket; its answer for the socket.
    macro_rules! do_reload {
        () => {
            match reload(path, &cfg, &ifaces, lb.as_mut(), &mut monitors) {
                Ok(new) => {
                    cfg = new;
                    reloads += 1;
                    info!("reload {reloads} done");
                    Ok(format!("reload {reloads} done\n"))
                }
                Err(e) => {
                    reload_failures += 1;
                    error!("reload failed ({reload_failures} so far); the running configuration is unchanged:\n{e:#}");
                    Err(format!("{e:#}\n"))
                }
            }
        };
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
    let mut rates = status::Rates::default();
    let mut rate_tick = tokio::time::interval(status::RATE_SAMPLE);
    rate_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = lb
            .as_ref()
            .map_or(RESOLVE_REFRESH, |l| l.next_refresh(&cfg));
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            _ = rate_tick.tick() => {
                if let Some(l) = lb.as_mut() {
                    let out = l.outbound(&cfg);
                    rates.sample(Instant::now(), &l.registry, &l.workers.counters, &out);
                }
            }
            _ = hup.recv() => {
                info!("SIGHUP: reloading {}", path.display());
                let _ = do_reload!();
            }
            Some(()) = changes.recv() => {
                info!("{} changed: reloading", path.display());
                let _ = do_reload!();
            }
            Some(cmd) = commands.recv() => {
                let answer = match cmd.line.as_str() {
                    "reload" => do_reload!(),
                    line if line == "status" || line.starts_with("status ") => {
                        match (status::Request::parse(line), lb.as_mut()) {
                            (Err(e), _) => Err(e),
                            (Ok(req), Some(l)) if req.view == status::View::Connections => {
                                connections(l, req.json).await
                            }
                            (Ok(req), Some(l)) => {
                                let snap = l.shared.load();
                                let out = l.outbound(&cfg);
                                let rows = status::rows(&cfg, &snap, &mut l.registry, &l.workers.counters, &out, &rates, Instant::now());
                                Ok(status::render(&rows, req))
                            }
                            (Ok(req), None) => Ok(status::render(&[], req)),
                        }
                    }
                    line if line.starts_with("explain ") => match lb.as_ref() {
                        Some(l) => {
                            let snap = l.shared.load();
                            let conns = l.workers.counters.first().map_or(&[][..], |w| &w.dests[..]);
                            explain::explain(&snap, conns, &line["explain ".len()..])
                        }
                        None => Ok("no virtual servers (VRRP only)\n".into()),
                    },
                    other => Err(format!("unknown command {other:?}: status [--stats|--rate|--connections] [--json], reload, explain\n")),
                };
                let _ = cmd.reply.send(answer);
            }
            Some(reply) = scrapes.recv() => {
                // Read now, from the workers' own counters: nothing is pushed anywhere.
                let text = match lb.as_mut() {
                    Some(l) => {
                        let xdp = l.steer.counters().ok();
                        let out = l.outbound(&cfg);
                        let xsk = l.workers.xsk_stats();
                        metrics::render(metrics::Sources {
                            cfg: &cfg,
                            registry: Some(&mut l.registry),
                            workers: &l.workers.counters,
                            xsk: &xsk,
                            out: &out,
                            xdp,
                            health: Some(&l.health),
                            checks: Some(&monitors),
                            vrrp: vrrp.stats(),
                            reloads,
                            reload_failures,
                            generation: l.generation,
                        })
                    }
                    None => metrics::render(metrics::Sources {
                        cfg: &cfg,
                        registry: None,
                        workers: &[],
                        xsk: &[],
                        out: &[],
                        xdp: None,
                        health: None,
                        checks: None,
                        vrrp: vrrp.stats(),
                        reloads,
                        reload_failures,
                        generation: 0,
                    }),
                };
                let _ = reply.send(text);
            }
            Some(ev) = health_rx.recv() => {
                if let Some(l) = lb.as_mut() {
                    for (vs, met) in l.on_health(&cfg, ev) {
                        // Below quorum, the director offers its VIPs to a healthier peer.
                        if let Some((instance, low)) = &vs.quorum_vrrp {
                            vrrp.set_priority(instance, if met { None } else { Some(*low) });
                        }
                    }
                }
            }
            _ = tokio::time::sleep(next) => {
                if let Some(l) = lb.as_mut() {
                    l.refresh(&cfg, &ifaces);
                }
            }
        }
    }

    // VRRP first: a master says goodbye (priority 0) so its backup takes over at once.
    let summaries = vrrp.stop();
    monitors.stop_all();
    let _ = std::fs::remove_file(&socket_path);
    println!("reloads: {reloads} done, {reload_failures} failed");
    for line in summaries {
        println!("{line}");
    }
    if let Some(l) = lb.take() {
        l.stop(&cfg, &ifaces);
    }
    info!("bye");
    Ok(())
}

/// Parses and checks the file again and, if it is valid, makes it the running one:
/// services and NAT maps, health monitors (unchanged ones keep their state), and a new
/// snapshot whose real-server ids are the old ones, so established flows and counters
/// carry on. Anything wrong: nothing changes.
fn reload(
    path: &Path,
    old: &Config,
    ifaces: &Ifaces,
    lb: Option<&mut Lb>,
    monitors: &mut health::Monitors,
) -> Result<Config> {
    let new = xvs_config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    if new.interface.value != old.interface.value
        || new.internal_interface.as_ref().map(|i| &i.value)
            != old.internal_interface.as_ref().map(|i| &i.value)
    {
        anyhow::bail!(
            "{}: the interfaces cannot change while running; restart xvs",
            path.display()
        );
    }
    if old.virtual_servers.is_empty() != new.virtual_servers.is_empty() {
        anyhow::bail!(
            "{}: going from VRRP only to load balancing (or back) needs a restart",
            path.display()
        );
    }
    for w in crate::hostcheck::warnings(&new, ifaces) {
        warn!("{w}");
    }
    let later = restart_only(old, &new);
    if !later.is_empty() {
        warn!(
            "reload: {} take effect at the next restart",
            later.join(", ")
        );
    }
    if let Some(lb) = lb {
        let kept = monitors.sync(health_targets(&new));
        let fresh = initial_health(&new);
        lb.health.retain(|k, _| kept.contains(k));
        for (k, h) in fresh {
            lb.health.entry(k).or_insert(h);
        }
        lb.macs = resolve(&new, ifaces, &lb.macs);
        // The snapshot first: a worker must know a service before packets are steered to it.
        lb.publish(&new, "reload");
        lb.steer.set_services(&publish::steering_services(&new))?;
        let reply_out = if ifaces.internal.is_some() {
            ifaces.external.ifindex
        } else {
            0
        };
        lb.steer.set_nat_backends(&publish::nat_backends(
            &new,
            ifaces.external.mac,
            reply_out,
            &mut lb.registry,
        ))?;
        lb.quorum = new
            .virtual_servers
            .iter()
            .map(|v| {
                (
                    v.name.clone(),
                    lb.quorum.get(&v.name).copied().unwrap_or(true),
                )
            })
            .collect();
    }
    Ok(new)
}

/// Every checked real server, with where its probes go (connect_ip/connect_port, else
/// the real server's address and port, else the service's port).
pub(crate) fn health_targets(cfg: &Config) -> Vec<health::monitor::Target> {
    let mut out = Vec::new();
    for vs in &cfg.virtual_servers {
        for rs in &vs.real_servers {
            let Some(hc) = &rs.health_check else { continue };
            let port = hc
                .connect_port
                .unwrap_or(if rs.port == 0 { vs.port() } else { rs.port });
            let ip = hc.connect_ip.unwrap_or(rs.address);
            out.push(health::monitor::Target {
                key: DestKey::of(vs, rs),
                label: format!("{}:{} of {}", rs.address, rs.port, vs.name),
                addr: std::net::SocketAddr::new(ip.into(), port),
                check: hc.clone(),
                notify_up: rs.notify_up.clone(),
                notify_down: rs.notify_down.clone(),
            });
        }
    }
    out
}

/// The configuration's timeouts in the dataplane's per-state form.
fn timeouts(t: &xvs_config::Timeouts) -> Timeouts {
    let mut out = Timeouts {
        udp: t.udp,
        ..Timeouts::default()
    };
    for (state, secs) in [
        (TcpState::Established, t.tcp),
        (TcpState::FinWait, t.tcpfin),
        (TcpState::SynSent, t.syn_sent),
        (TcpState::SynRecv, t.syn_recv),
        (TcpState::TimeWait, t.time_wait),
        (TcpState::Close, t.close),
        (TcpState::CloseWait, t.close_wait),
        (TcpState::LastAck, t.last_ack),
        (TcpState::Listen, t.listen),
        (TcpState::SynAck, t.synack),
    ] {
        out.set_tcp(state, secs);
    }
    out
}

/// The director's address on the interface and the tunnel MTU.
fn local_side(cfg: &Config, ifaces: &Ifaces) -> Result<publish::Local> {
    let iface = &ifaces.external;
    let addr = netlink::addresses()
        .context("reading the interface's addresses")?
        .into_iter()
        .find(|(i, a, p)| *i == iface.ifindex && *p < 32 && !a.is_loopback())
        .map(|(_, a, _)| a);
    let tun = cfg
        .virtual_servers
        .iter()
        .any(|vs| vs.forwarding == Forwarding::Tun);
    let addr = match addr {
        Some(a) => a,
        None if tun => anyhow::bail!(
            "{} has no IPv4 address of its own (other than /32s): TUN needs one as the tunnel source",
            iface.name
        ),
        None => Ipv4Addr::UNSPECIFIED,
    };
    let mtu = cfg
        .tun_mtu
        .unwrap_or(iface.mtu.min(u32::from(u16::MAX)) as u16);
    Ok(publish::Local {
        internal_mac: ifaces.internal.as_ref().map(|i| i.mac),
        mac: iface.mac,
        addr,
        mtu,
    })
}

/// The address whose MAC a real server's frames go to: itself for DR (it must be on the
/// segment), the kernel's next hop towards it for TUN (it may sit behind a router).
fn next_hop(forwarding: Forwarding, rs: Ipv4Addr, iface: &Iface) -> Ipv4Addr {
    if forwarding == Forwarding::Dr {
        return rs;
    }
    match netlink::route_get(rs) {
        Ok(r) => {
            if r.oif != iface.ifindex {
                warn!("TUN real server {rs} is routed out of another interface than {}; xvs sends it out of {} anyway", iface.name, iface.name);
            }
            r.gateway.unwrap_or(rs)
        }
        Err(e) => {
            warn!("no route to TUN real server {rs}: {e}");
            rs
        }
    }
}

/// Reads the neighbour tables: each real server's next-hop MAC. Nudges and logs the ones
/// still unresolved. `known` is kept when netlink fails for a moment.
fn resolve(
    cfg: &Config,
    ifaces: &Ifaces,
    known: &HashMap<Ipv4Addr, [u8; 6]>,
) -> HashMap<Ipv4Addr, [u8; 6]> {
    let mut tables = HashMap::new();
    for i in std::iter::once(&ifaces.external).chain(&ifaces.internal) {
        match netlink::neighbours(i.ifindex) {
            Ok(m) => {
                tables.insert(i.ifindex, m);
            }
            Err(e) => {
                warn!(
                    "reading the neighbour table of {} failed: {e}; keeping the last one",
                    i.name
                );
                return known.clone();
            }
        }
    }
    let mut macs = HashMap::new();
    for vs in &cfg.virtual_servers {
        let iface = ifaces.towards_real_servers(vs);
        for addr in publish::next_hop_addresses(vs) {
            let hop = next_hop(vs.forwarding, addr, iface);
            match tables.get(&iface.ifindex).and_then(|t| t.get(&hop)) {
                Some(m) => {
                    macs.insert(addr, *m);
                }
                None => {
                    let via = if hop == addr {
                        String::new()
                    } else {
                        format!(" (next hop {hop})")
                    };
                    if known.contains_key(&addr) {
                        warn!("real server {}{via} lost its neighbour entry on {}: not scheduled until it answers ARP", addr, iface.name);
                    } else {
                        info!(
                            "real server {}{via}: no MAC on {} yet; not scheduled, resolving",
                            addr, iface.name
                        );
                    }
                    netlink::nudge(hop);
                }
            }
        }
    }
    macs
}

/// `status --connections`: each worker copies its flows between two batches (an idle
/// worker looks every `IDLE_POLL_MS`); a worker that does not answer within a second is
/// an error, not a short list.
async fn connections(l: &Lb, json: bool) -> Result<String, String> {
    let workers = &l.workers.counters;
    let per_worker = status::CONNECTIONS_LIMIT / workers.len().max(1);
    let asked: Vec<u64> = workers
        .iter()
        .map(|w| w.flow_dump.request(per_worker))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let answers: Vec<_> = workers
            .iter()
            .zip(&asked)
            .filter_map(|(w, seq)| w.flow_dump.answer(*seq))
            .collect();
        if answers.len() == workers.len() {
            let live = answers.iter().map(|a| a.live).sum();
            let rows = status::connection_rows(&answers, &l.registry);
            return Ok(status::render_connections(&rows, live, json));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} of {} workers did not answer within 1 s\n",
                workers.len() - answers.len(),
                workers.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
