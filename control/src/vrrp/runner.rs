//! One VRRP instance at the edge: its socket, its VIPs (netlink), gratuitous ARPs,
//! tracked links, notify scripts, and the state machine in between. A tokio task.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::{debug, info, warn};
use xvs_config::VrrpInstance;

use super::garp;
use super::machine::{Action, Machine, Params, State};
use super::packet::{self, Advert, Expect, Reject, Version, MULTICAST_GROUP};
use super::socket::VrrpSocket;
use crate::iface::Iface;
use crate::netlink;

/// How often tracked interfaces are looked at.
const LINK_POLL: Duration = Duration::from_millis(200);
/// The longest a notify script may run.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// A sync-group member's transition, told to the other members.
#[derive(Clone, Debug)]
pub struct SyncMsg {
    pub group: String,
    pub from: String,
    pub state: State,
}

/// The channel all instances share for their sync groups.
pub type SyncBus = tokio::sync::broadcast::Sender<SyncMsg>;

/// What an instance did, for logs now and metrics later.
#[derive(Default, Debug)]
pub struct VrrpStats {
    pub state: AtomicU8,
    pub transitions: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub rejected: [AtomicU64; Reject::ALL.len()],
}

impl VrrpStats {
    pub fn state(&self) -> State {
        match self.state.load(Relaxed) {
            1 => State::Backup,
            2 => State::Master,
            3 => State::Fault,
            _ => State::Init,
        }
    }

    fn set_state(&self, s: State) {
        let v = match s {
            State::Init => 0,
            State::Backup => 1,
            State::Master => 2,
            State::Fault => 3,
        };
        self.state.store(v, Relaxed);
    }

    pub fn summary(&self, name: &str) -> String {
        let rejected: Vec<String> = Reject::ALL
            .iter()
            .zip(&self.rejected)
            .filter(|(_, n)| n.load(Relaxed) > 0)
            .map(|(r, n)| format!("{} {}", r.label(), n.load(Relaxed)))
            .collect();
        format!(
            "vrrp {name}: {} transitions {} adverts sent {} received {} rejected {}",
            self.state().as_str(),
            self.transitions.load(Relaxed),
            self.sent.load(Relaxed),
            self.received.load(Relaxed),
            if rejected.is_empty() {
                "none".into()
            } else {
                rejected.join(", ")
            }
        )
    }
}

struct Edge<'a> {
    cfg: &'a VrrpInstance,
    iface: &'a Iface,
    src: Ipv4Addr,
    sock: VrrpSocket,
    version: Version,
    stats: &'a VrrpStats,
    bus: &'a SyncBus,
}

impl Edge<'_> {
    fn vips(&self) -> Vec<Ipv4Addr> {
        self.cfg
            .virtual_ipaddresses
            .iter()
            .map(|(a, _)| *a)
            .collect()
    }

    /// Carries out the machine's actions. A transition is told to the instance's sync
    /// group unless it was itself a group member's doing (`forced`).
    fn apply(&self, actions: Vec<Action>, forced: bool) {
        for a in actions {
            match a {
                Action::Advertise { priority } => self.advertise(priority),
                Action::TakeVips => {
                    for &(vip, len) in &self.cfg.virtual_ipaddresses {
                        if let Err(e) = netlink::add_address(self.iface.ifindex, vip, len) {
                            warn!(
                                "VRRP {}: adding {vip}/{len} to {}: {e}",
                                self.cfg.name, self.iface.name
                            );
                        }
                    }
                    self.garp();
                }
                Action::DropVips => self.drop_vips(),
                Action::Transition { from, to } => {
                    info!(
                        "VRRP {}: {} -> {} (priority {})",
                        self.cfg.name,
                        from.as_str(),
                        to.as_str(),
                        self.cfg.priority
                    );
                    self.stats.set_state(to);
                    self.stats.transitions.fetch_add(1, Relaxed);
                    self.notify(to);
                    if let (Some(group), false, false) =
                        (&self.cfg.sync_group, forced, to == State::Init)
                    {
                        // No receiver yet is fine: nobody to follow.
                        let _ = self.bus.send(SyncMsg {
                            group: group.clone(),
                            from: self.cfg.name.clone(),
                            state: to,
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
            vec![MULTICAST_GROUP]
        } else {
            self.cfg.unicast_peers.clone()
        };
        for dst in dsts {
            let msg = packet::build(self.version, &advert, pw, self.src, dst);
            match self.sock.send_to(&msg, dst) {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Relaxed);
                }
                Err(e) => warn!("VRRP {}: sending an advert to {dst}: {e}", self.cfg.name),
            }
        }
    }

    fn garp(&self) {
        if let Err(e) = garp::announce(
            self.iface.ifindex,
            self.iface.mac,
            &self.vips(),
            self.cfg.garp_master_repeat,
        ) {
            warn!(
                "VRRP {}: gratuitous ARP on {}: {e}",
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
    /// `INSTANCE name STATE priority`. Bounded in time; a failure is logged, not fatal.
    fn notify(&self, to: State) {
        let own = match to {
            State::Master => self.cfg.notify_master.clone(),
            State::Backup => self.cfg.notify_backup.clone(),
            State::Fault => self.cfg.notify_fault.clone(),
            State::Init => None,
        };
        let generic = self.cfg.notify.as_ref().map(|s| {
            format!(
                "{s} INSTANCE {} {} {}",
                self.cfg.name,
                to.as_str(),
                self.cfg.priority
            )
        });
        for script in own.into_iter().chain(generic) {
            let name = self.cfg.name.clone();
            tokio::spawn(async move {
                let child = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(&script)
                    .kill_on_drop(true)
                    .spawn();
                match child {
                    Ok(mut c) => match tokio::time::timeout(NOTIFY_TIMEOUT, c.wait()).await {
                        Ok(Ok(st)) if st.success() => debug!("VRRP {name}: notify `{script}` done"),
                        Ok(Ok(st)) => warn!("VRRP {name}: notify `{script}` exited with {st}"),
                        Ok(Err(e)) => warn!("VRRP {name}: notify `{script}`: {e}"),
                        Err(_) => warn!("VRRP {name}: notify `{script}` still running after {NOTIFY_TIMEOUT:?}: killed"),
                    },
                    Err(e) => warn!("VRRP {name}: cannot run notify `{script}`: {e}"),
                }
            });
        }
    }
}

fn link_up(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/carrier")).is_ok_and(|c| c.trim() == "1")
}

/// Runs one instance until `stop` turns true; then steps down gracefully (priority 0).
pub async fn run(
    cfg: VrrpInstance,
    stats: Arc<VrrpStats>,
    mut stop: watch::Receiver<bool>,
    bus: SyncBus,
    mut priority: watch::Receiver<Option<u8>>,
) -> Result<()> {
    let mut group_rx = bus.subscribe();
    let iface = Iface::lookup(&cfg.interface.value)?
        .with_context(|| format!("VRRP {}: no interface {}", cfg.name, cfg.interface.value))?;
    let src = match cfg.unicast_src_ip {
        Some(a) => a,
        None => netlink::addresses()?
            .into_iter()
            .find(|(i, a, p)| *i == iface.ifindex && *p < 32 && !a.is_loopback())
            .map(|(_, a, _)| a)
            .with_context(|| {
                format!(
                    "VRRP {}: {} has no IPv4 address to advertise from",
                    cfg.name, iface.name
                )
            })?,
    };
    let version = if cfg.version == 3 {
        Version::V3
    } else {
        Version::V2
    };
    let sock = VrrpSocket::open(
        &iface.name,
        iface.ifindex,
        src,
        cfg.unicast_peers.is_empty(),
    )
    .with_context(|| format!("VRRP {}: opening the socket on {}", cfg.name, iface.name))?;
    let edge = Edge {
        cfg: &cfg,
        iface: &iface,
        src,
        sock,
        version,
        stats: &stats,
        bus: &bus,
    };

    // A master killed without a goodbye leaves its VIPs on the interface.
    for &(vip, len) in &cfg.virtual_ipaddresses {
        if netlink::del_address(iface.ifindex, vip, len).unwrap_or(false) {
            info!(
                "VRRP {}: removed {vip}/{len} left on {} by an earlier run",
                cfg.name, iface.name
            );
        }
    }
    let mut machine = Machine::new(Params {
        version,
        priority: cfg.priority,
        interval_cs: cfg.advert_int_cs,
        preempt: cfg.preempt,
        preempt_delay: Duration::from_secs(u64::from(cfg.preempt_delay)),
        start_as_master: cfg.start_as_master,
        primary: src,
    });
    let tracked: Vec<String> = cfg
        .track_interfaces
        .iter()
        .map(|t| t.value.clone())
        .collect();
    let mut links_up = tracked.iter().all(|t| link_up(t));
    edge.apply(machine.start(Instant::now()), false);
    if !links_up {
        edge.apply(machine.on_link(Instant::now(), false), false);
    }
    let expect = Expect {
        version,
        vrid: cfg.vrid,
        interval_cs: cfg.advert_int_cs,
        password: cfg.password.as_deref().map(str::as_bytes),
    };
    let mut link_tick = tokio::time::interval(LINK_POLL);
    let refresh = Duration::from_secs(u64::from(cfg.garp_master_refresh));
    let mut garp_tick = tokio::time::interval(if refresh.is_zero() {
        Duration::from_secs(3600)
    } else {
        refresh
    });
    let mut buf = vec![0u8; 2048];
    loop {
        let deadline = machine.deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => {
                edge.apply(machine.on_timer(Instant::now()), false);
            }
            n = edge.sock.recv(&mut buf) => {
                let n = n.with_context(|| format!("VRRP {}: receiving", cfg.name))?;
                tracing::trace!("VRRP {}: {n} bytes", cfg.name);
                match packet::parse(&buf[..n], &expect) {
                    Ok((from, _)) if from == src => {}
                    Ok((from, adv)) => {
                        stats.received.fetch_add(1, Relaxed);
                        edge.apply(machine.on_advert(Instant::now(), from, &adv), false);
                    }
                    Err(reason) => {
                        stats.rejected[Reject::ALL.iter().position(|r| *r == reason).unwrap_or(0)].fetch_add(1, Relaxed);
                        debug!("VRRP {}: advert rejected: {}", cfg.name, reason.label());
                    }
                }
            }
            _ = link_tick.tick(), if !tracked.is_empty() => {
                let up = tracked.iter().all(|t| link_up(t));
                if up != links_up {
                    links_up = up;
                    info!("VRRP {}: tracked interfaces {}", cfg.name, if up { "up" } else { "down" });
                    edge.apply(machine.on_link(Instant::now(), up), false);
                }
            }
            _ = garp_tick.tick(), if !refresh.is_zero() => {
                if machine.state() == State::Master {
                    edge.garp();
                }
            }
            msg = group_rx.recv(), if cfg.sync_group.is_some() => {
                if let Ok(m) = msg {
                    let mine = cfg.sync_group.as_deref() == Some(m.group.as_str()) && m.from != cfg.name;
                    // Our own tracked link keeps us in FAULT whatever the group does.
                    let stuck = machine.state() == State::Fault && !links_up;
                    if mine && !stuck {
                        info!("VRRP {}: sync group {} follows {} to {}", cfg.name, m.group, m.from, m.state.as_str());
                        edge.apply(machine.force(Instant::now(), m.state), true);
                    }
                }
            }
            Ok(()) = priority.changed() => {
                let p = priority.borrow().unwrap_or(cfg.priority);
                info!("VRRP {}: priority now {p}", cfg.name);
                edge.apply(machine.set_priority(Instant::now(), p), false);
            }
            _ = stop.changed() => {
                edge.apply(machine.shutdown(), false);
                return Ok(());
            }
        }
    }
}
