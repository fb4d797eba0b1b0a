//! One VRRP instance at the edge: its socket, its VIPs (netlink), gratuitous ARPs,
//! tracked links, notify scripts, and the state machine in between. A task on the VRRP
//! thread's runtime (`thread.rs`); everything it decides, the machine decides.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::{debug, info, warn};
use xvs_config::VrrpInstance;

use super::advert::{self, Advert, Expect, Version, MULTICAST_GROUP, MULTICAST_GROUP_V6};
use super::garp::{self, Burst};
use super::machine::{Action, Machine, Params, State};
use super::socket::{Incoming, VrrpSocket};
use super::stats::VrrpStats;
use crate::notify;
use crate::sys::caps::{self, Cap};
use crate::sys::iface::Iface;
use crate::sys::netlink;

/// How often tracked interfaces are looked at.
const LINK_POLL: Duration = Duration::from_millis(200);

/// A sync-group member's transition, told to the other members.
#[derive(Clone, Debug)]
pub struct SyncMsg {
    pub group: String,
    pub from: String,
    pub state: State,
}

/// The channel all instances share for their sync groups.
pub type SyncBus = tokio::sync::broadcast::Sender<SyncMsg>;

/// Connection sync, as VRRP sees it: whether this director's table is in step with
/// its peers', and how long a preemption may wait for that.
#[derive(Clone)]
pub struct SyncGate {
    pub ready: watch::Receiver<bool>,
    pub wait: Duration,
}

struct Edge<'a> {
    cfg: &'a VrrpInstance,
    iface: &'a Iface,
    /// Adverts' source: the interface's IPv4 address, or its IPv6 link-local one.
    src: IpAddr,
    sock: VrrpSocket,
    version: Version,
    stats: &'a VrrpStats,
    bus: &'a SyncBus,
    /// Gratuitous ARPs still to send, spaced by `garp_interval`.
    garp: Option<Burst>,
}

impl Edge<'_> {
    fn vips(&self) -> Vec<IpAddr> {
        self.cfg
            .virtual_ipaddresses
            .iter()
            .map(|(a, _)| *a)
            .collect()
    }

    /// Carries out the machine's actions, in order.
    fn apply(&mut self, now: Instant, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Advertise { priority } => self.advertise(priority),
                Action::TakeVips => {
                    for &(vip, len) in &self.cfg.virtual_ipaddresses {
                        if let Err(e) = netlink::add_address(self.iface.ifindex, vip, len) {
                            warn!(
                                "VRRP {}: adding {vip}/{len} to {}: {e}{}",
                                self.cfg.name,
                                self.iface.name,
                                caps::hint(&e, Cap::NetAdmin)
                            );
                        }
                    }
                    self.start_garp(now, self.cfg.garp_master_repeat);
                }
                Action::DropVips => {
                    self.garp = None;
                    self.drop_vips();
                }
                Action::Transition { from, to, priority } => {
                    info!(
                        event = "vrrp_transition",
                        instance = %self.cfg.name,
                        from = from.as_str(),
                        to = to.as_str(),
                        priority,
                        "VRRP {}: {} -> {} (priority {priority})",
                        self.cfg.name,
                        from.as_str(),
                        to.as_str(),
                    );
                    self.stats.set_state(to);
                    self.stats.priority.store(priority, Relaxed);
                    self.stats.transitions.fetch_add(1, Relaxed);
                    if to != State::Init {
                        crate::alert::raise(crate::alert::Event::Vrrp {
                            instance: self.cfg.name.clone(),
                            state: to.as_str().to_string(),
                        });
                    }
                    self.notify(to, priority);
                }
                Action::TellGroup { state } => {
                    if let Some(group) = &self.cfg.sync_group {
                        // No receiver yet is fine: nobody to follow.
                        let _ = self.bus.send(SyncMsg {
                            group: group.clone(),
                            from: self.cfg.name.clone(),
                            state,
                        });
                    }
                }
            }
        }
    }

    fn advertise(&self, priority: u8) {
        let advert = Advert {
            vrid: self.cfg.vrid,
            priority,
            interval_cs: self.cfg.advert_int_cs,
            addresses: self.vips(),
        };
        let pw = self.cfg.password.as_deref().map(str::as_bytes);
        let dsts = if self.cfg.unicast_peers.is_empty() {
            vec![match self.src {
                IpAddr::V4(_) => IpAddr::V4(MULTICAST_GROUP),
                IpAddr::V6(_) => IpAddr::V6(MULTICAST_GROUP_V6),
            }]
        } else {
            self.cfg.unicast_peers.clone()
        };
        for dst in dsts {
            let msg = advert::build(self.version, &advert, pw, self.src, dst);
            match self.sock.send_to(&msg, dst) {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Relaxed);
                }
                Err(e) => warn!("VRRP {}: sending an advert to {dst}: {e}", self.cfg.name),
            }
        }
    }

    /// Starts a burst of `repeat` rounds of gratuitous ARPs; the first goes out now.
    fn start_garp(&mut self, now: Instant, repeat: u32) {
        let interval = Duration::from_millis(u64::from(self.cfg.garp_interval_ms));
        self.garp = Some(Burst::new(self.vips(), repeat, interval, now));
        self.send_garp(now);
    }

    /// Sends the gratuitous ARPs that are due.
    fn send_garp(&mut self, now: Instant) {
        let Some(burst) = self.garp.as_mut() else {
            return;
        };
        let due = burst.due(now);
        if burst.deadline().is_none() {
            self.garp = None;
        }
        let link_local = match self.src {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        };
        if let Err(e) = garp::announce(self.iface.ifindex, self.iface.mac, link_local, &due) {
            warn!(
                "VRRP {}: announcing the VIPs on {}: {e}",
                self.cfg.name, self.iface.name
            );
        }
    }

    fn drop_vips(&self) {
        for &(vip, len) in &self.cfg.virtual_ipaddresses {
            if let Err(e) = netlink::del_address(self.iface.ifindex, vip, len) {
                warn!(
                    "VRRP {}: removing {vip}/{len} from {}: {e}",
                    self.cfg.name, self.iface.name
                );
            }
        }
    }

    /// keepalived's notify scripts: the state's own script, then the generic one with
    /// `INSTANCE name STATE priority` — the priority advertised now.
    fn notify(&self, to: State, priority: u8) {
        let own = match to {
            State::Master => self.cfg.notify_master.clone(),
            State::Backup => self.cfg.notify_backup.clone(),
            State::Fault => self.cfg.notify_fault.clone(),
            State::Init => None,
        };
        let who = format!("VRRP {}", self.cfg.name);
        if let Some(s) = own {
            notify::spawn(who.clone(), s, Vec::new());
        }
        if let Some(s) = &self.cfg.notify {
            // As arguments of their own: an instance's name is never split or expanded.
            let args = [
                "INSTANCE",
                &self.cfg.name,
                to.as_str(),
                &priority.to_string(),
            ];
            notify::spawn(who, s.clone(), args.map(str::to_string).to_vec());
        }
    }
}

/// The interface's link-local address, waiting out duplicate address detection (a few
/// seconds after the link comes up).
async fn link_local(name: &str, iface: &Iface) -> Result<Ipv6Addr> {
    for _ in 0..50 {
        if let Some(a) = crate::sys::iface::link_local_v6(iface.ifindex) {
            return Ok(a);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "VRRP {name}: {} has no usable IPv6 link-local address to advertise from (is IPv6 on? `ip -6 addr show dev {}`)",
        iface.name,
        iface.name
    )
}

fn link_up(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/carrier")).is_ok_and(|c| c.trim() == "1")
}

/// Runs one instance until `stop` turns true; then steps down gracefully (priority 0).
/// `priority` carries the priority quorum asks for (None: the configured one); `resume`:
/// it starts as master, taking over from a process that handed over.
pub async fn run(
    cfg: VrrpInstance,
    stats: Arc<VrrpStats>,
    stop: watch::Receiver<bool>,
    bus: SyncBus,
    priority: watch::Receiver<Option<u8>>,
    sync: Option<SyncGate>,
    resume: bool,
) -> Result<()> {
    let group = bus.subscribe();
    let iface = Iface::lookup(&cfg.interface.value)?
        .with_context(|| format!("VRRP {}: no interface {}", cfg.name, cfg.interface.value))?;
    let src = advert_source(&cfg, &iface).await?;
    let version = if cfg.version == 3 {
        Version::V3
    } else {
        Version::V2
    };
    let sock = open_socket(&cfg, &iface, src)?;
    let edge = Edge {
        cfg: &cfg,
        iface: &iface,
        src,
        sock,
        version,
        stats: &stats,
        bus: &bus,
        garp: None,
    };
    let mut machine = new_machine(&cfg, version, src, sync.as_ref());
    if resume {
        // The VIPs on the interface are the master's that handed over: they stay.
        info!("VRRP {}: resuming as master (planned handover)", cfg.name);
        machine.resume_as_master();
    } else {
        remove_leftover_vips(&cfg, &iface);
        explain_start_as_master(&cfg);
    }
    // Without connection sync, a receiver that never changes.
    let (_never, idle) = watch::channel(true);
    let mut synced = sync.map_or(idle, |g| g.ready);
    machine.set_synced(Instant::now(), *synced.borrow_and_update());
    let inputs = Inputs {
        stop,
        priority,
        synced,
        group,
    };
    Instance::start(edge, machine, version).serve(inputs).await
}

/// Where adverts come from: the configured address, else the interface's IPv6
/// link-local address (IPv6 VIPs) or its IPv4 one.
async fn advert_source(cfg: &VrrpInstance, iface: &Iface) -> Result<IpAddr> {
    let ipv6 = cfg.virtual_ipaddresses.iter().any(|(a, _)| a.is_ipv6());
    Ok(match cfg.unicast_src_ip {
        Some(a) => a,
        None if ipv6 => IpAddr::V6(link_local(&cfg.name, iface).await?),
        None => IpAddr::V4(
            netlink::addresses()?
                .into_iter()
                .find(|(i, a, p)| *i == iface.ifindex && *p < 32 && !a.is_loopback())
                .map(|(_, a, _)| a)
                .with_context(|| {
                    format!(
                        "VRRP {}: {} has no IPv4 address to advertise from",
                        cfg.name, iface.name
                    )
                })?,
        ),
    })
}

/// The instance's socket on its interface (multicast unless peers are listed).
fn open_socket(cfg: &VrrpInstance, iface: &Iface, src: IpAddr) -> Result<VrrpSocket> {
    VrrpSocket::open(
        &iface.name,
        iface.ifindex,
        src,
        cfg.unicast_peers.is_empty(),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "VRRP {}: opening the socket on {}: {e}{}",
            cfg.name,
            iface.name,
            caps::hint(&e, Cap::NetRaw)
        )
    })
}

/// A master killed without a goodbye leaves its VIPs on the interface.
fn remove_leftover_vips(cfg: &VrrpInstance, iface: &Iface) {
    for &(vip, len) in &cfg.virtual_ipaddresses {
        if netlink::del_address(iface.ifindex, vip, len).unwrap_or(false) {
            info!(
                "VRRP {}: removed {vip}/{len} left on {} by an earlier run",
                cfg.name, iface.name
            );
        }
    }
}

/// What `state MASTER` means below priority 255, said once at start.
fn explain_start_as_master(cfg: &VrrpInstance) {
    if cfg.start_as_master && cfg.priority < 255 {
        info!(
            "VRRP {}: state MASTER below priority 255 starts as BACKUP, master after Master_Down_Interval unless a higher priority advertises (as keepalived 2.x)",
            cfg.name
        );
    }
}

fn new_machine(
    cfg: &VrrpInstance,
    version: Version,
    src: IpAddr,
    sync: Option<&SyncGate>,
) -> Machine {
    Machine::new(Params {
        version,
        priority: cfg.priority,
        interval_cs: cfg.advert_int_cs,
        preempt: cfg.preempt,
        preempt_delay: Duration::from_secs(u64::from(cfg.preempt_delay)),
        primary: src,
        sync_group: cfg.sync_group.is_some(),
        failback_wait: sync.map(|g| g.wait),
    })
}

/// The adverts this instance takes: its version, router id, interval and password, from
/// its peers only if `check_unicast_src`.
fn expect(cfg: &VrrpInstance, version: Version) -> Expect<'_> {
    Expect {
        version,
        vrid: cfg.vrid,
        interval_cs: cfg.advert_int_cs,
        password: cfg.password.as_deref().map(str::as_bytes),
        sources: cfg
            .check_unicast_src
            .then_some(cfg.unicast_peers.as_slice()),
    }
}

/// What an instance hears from outside: the stop, quorum's priority, connection sync's
/// readiness, and its sync group's transitions.
struct Inputs {
    stop: watch::Receiver<bool>,
    priority: watch::Receiver<Option<u8>>,
    synced: watch::Receiver<bool>,
    group: tokio::sync::broadcast::Receiver<SyncMsg>,
}

/// A running instance: the edge and the machine, and what its loop keeps.
struct Instance<'a> {
    edge: Edge<'a>,
    machine: Machine,
    expect: Expect<'a>,
    tracked: Vec<String>,
    links_up: bool,
    link_tick: tokio::time::Interval,
    /// `garp_master_refresh`: zero for none.
    refresh: Duration,
    garp_tick: tokio::time::Interval,
    buf: Vec<u8>,
    /// The advert interval.
    interval: Duration,
}

impl<'a> Instance<'a> {
    /// Starts the machine (and tells it at once of a tracked link that is down).
    fn start(mut edge: Edge<'a>, mut machine: Machine, version: Version) -> Self {
        let cfg = edge.cfg;
        let tracked: Vec<String> = cfg
            .track_interfaces
            .iter()
            .map(|t| t.value.clone())
            .collect();
        let links_up = tracked.iter().all(|t| link_up(t));
        let now = Instant::now();
        edge.apply(now, machine.start(now));
        if !links_up {
            edge.apply(now, machine.on_link(now, false));
        }
        let expect = expect(cfg, version);
        let link_tick = tokio::time::interval(LINK_POLL);
        let refresh = Duration::from_secs(u64::from(cfg.garp_master_refresh));
        let mut garp_tick = tokio::time::interval(if refresh.is_zero() {
            Duration::from_secs(3600)
        } else {
            refresh
        });
        // The first tick is immediate: the burst on taking over is the first refresh.
        garp_tick.reset();
        Instance {
            edge,
            machine,
            expect,
            tracked,
            links_up,
            link_tick,
            refresh,
            garp_tick,
            buf: vec![0u8; 2048],
            interval: Duration::from_millis(10 * u64::from(cfg.advert_int_cs)),
        }
    }

    /// The instance's loop: each event handed to the machine, until the stop.
    async fn serve(mut self, mut inputs: Inputs) -> Result<()> {
        let cfg = self.edge.cfg;
        loop {
            let deadline = self.machine.deadline().map(tokio::time::Instant::from_std);
            let garp_due = self
                .edge
                .garp
                .as_ref()
                .and_then(Burst::deadline)
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                // Adverts first when several are ready: they are what keeps the peers quiet.
                biased;
                _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => {
                    self.on_timer(deadline.unwrap().into_std());
                }
                Ok(()) = inputs.synced.changed() => {
                    let ready = *inputs.synced.borrow_and_update();
                    self.on_synced(ready);
                }
                n = self.edge.sock.recv(&mut self.buf) => {
                    let n = n.with_context(|| format!("VRRP {}: receiving", cfg.name))?;
                    self.on_packet(n);
                }
                _ = async { tokio::time::sleep_until(garp_due.unwrap()).await }, if garp_due.is_some() => {
                    self.edge.send_garp(Instant::now());
                }
                _ = self.link_tick.tick(), if !self.tracked.is_empty() => self.check_links(),
                _ = self.garp_tick.tick(), if !self.refresh.is_zero() => self.refresh_garp(),
                msg = inputs.group.recv(), if cfg.sync_group.is_some() => {
                    if let Ok(m) = msg {
                        self.on_group(m);
                    }
                }
                Ok(()) = inputs.priority.changed() => {
                    let p = inputs.priority.borrow().unwrap_or(cfg.priority);
                    self.on_priority(p);
                }
                _ = inputs.stop.changed() => {
                    self.edge.apply(Instant::now(), self.machine.shutdown());
                    return Ok(());
                }
            }
        }
    }

    /// The machine's deadline (`due`) passed: an advert, or a master down.
    fn on_timer(&mut self, due: Instant) {
        let cfg = self.edge.cfg;
        let now = Instant::now();
        if self.machine.state() == State::Master {
            self.edge
                .stats
                .advert_delayed(now.saturating_duration_since(due), self.interval);
        }
        let held = self.machine.holding();
        self.edge.apply(now, self.machine.on_timer(now));
        if self.machine.holding() && !held {
            self.edge.stats.failback_waits.fetch_add(1, Relaxed);
            info!("VRRP {}: would preempt a lower-priority master; waiting for connection sync's resync first", cfg.name);
        } else if held && !self.machine.holding() && self.machine.state() == State::Master {
            warn!(
                "VRRP {}: connection sync's resync did not finish in time: preempting all the same",
                cfg.name
            );
        }
    }

    fn on_synced(&mut self, ready: bool) {
        let now = Instant::now();
        let held = self.machine.holding();
        self.edge.apply(now, self.machine.set_synced(now, ready));
        if held && ready {
            info!(
                "VRRP {}: connection sync is ready: preempting",
                self.edge.cfg.name
            );
        }
    }

    /// A datagram received: an advert from a peer goes to the machine (our own are
    /// ignored); anything else is counted as rejected.
    fn on_packet(&mut self, n: Incoming) {
        let cfg = self.edge.cfg;
        tracing::trace!("VRRP {}: {n:?}", cfg.name);
        let parsed = match n {
            Incoming::V4 { len } => advert::parse(&self.buf[..len], &self.expect),
            Incoming::V6 {
                len,
                src,
                dst,
                hop_limit,
            } => advert::parse_v6(&self.buf[..len], src, dst, hop_limit, &self.expect),
        };
        match parsed {
            Ok((from, _)) if from == self.edge.src => {}
            Ok((from, adv)) => {
                self.edge.stats.received.fetch_add(1, Relaxed);
                let now = Instant::now();
                self.edge
                    .apply(now, self.machine.on_advert(now, from, &adv));
            }
            Err(reason) => {
                self.edge.stats.reject(reason);
                debug!("VRRP {}: advert rejected: {}", cfg.name, reason.label());
            }
        }
    }

    fn check_links(&mut self) {
        let up = self.tracked.iter().all(|t| link_up(t));
        if up != self.links_up {
            self.links_up = up;
            info!(
                "VRRP {}: tracked interfaces {}",
                self.edge.cfg.name,
                if up { "up" } else { "down" }
            );
            let now = Instant::now();
            self.edge.apply(now, self.machine.on_link(now, up));
        }
    }

    /// `garp_master_refresh`: a master announces its VIPs again (unless a burst is on).
    fn refresh_garp(&mut self) {
        if self.machine.state() == State::Master && self.edge.garp.is_none() {
            self.edge.start_garp(Instant::now(), 1);
        }
    }

    fn on_group(&mut self, m: SyncMsg) {
        let cfg = self.edge.cfg;
        if cfg.sync_group.as_deref() == Some(m.group.as_str()) && m.from != cfg.name {
            info!(
                "VRRP {}: sync group {} follows {} to {}",
                cfg.name,
                m.group,
                m.from,
                m.state.as_str()
            );
            let now = Instant::now();
            self.edge.apply(now, self.machine.on_group(now, m.state));
        }
    }

    fn on_priority(&mut self, p: u8) {
        let now = Instant::now();
        self.edge.apply(now, self.machine.set_priority(now, p));
        self.edge
            .stats
            .priority
            .store(self.machine.priority(), Relaxed);
        info!(
            "VRRP {}: priority now {}",
            self.edge.cfg.name,
            self.machine.priority()
        );
    }
}
