//! Route health injection: a host route for each VIP this director can serve, in the
//! kernel routing table `announce.table`, which the routing daemon (BIRD, FRR) exports
//! by BGP to the routers in front; none for a VIP it cannot serve. xvs only writes its
//! table and never talks to the routing daemon, so it never depends on it being up.
//!
//! The routes point at a TUN device this process holds open (`sys::tun`): at any exit,
//! a `kill -9` included, the kernel deletes the device and its routes, so a dead xvs is
//! never announced. A takeover (`xvs run --takeover`) moves the running process's
//! routes onto its own device before that one exits (`adopt`).
//!
//! - `plan.rs`: which VIPs are announced and why not the others, sans-IO
//! - `hold.rs`: the anycast VIPs on `lo`, answered by no ARP

mod hold;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sd_notify::NotifyState;
use tracing::{error, info, warn};
use xvs_config::Config;

use crate::daemon::drain::Drains;
use crate::health::HealthMap;
use crate::sys::table_routes;
use crate::sys::tun::Tun;
pub use plan::Why;

/// The prefix of the devices the routes point at (the kernel numbers them).
const DEVICE_PREFIX: &str = "xvs-rhi";
/// The device's name in systemd's fd store across a restart of the unit.
const FD_NAME: &str = "xvs-announce";
/// Updates (250 ms apart) between two readings of the table.
const RECONCILE_EVERY: u32 = 4;

/// Each virtual server's quorum, by name.
pub type Quorums = std::collections::HashMap<String, crate::health::quorum::Quorum>;

/// One VIP's state, for `xvs status --announce` and `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VipRow {
    pub vip: IpAddr,
    pub announced: bool,
    pub reason: &'static str,
    pub detail: String,
}

pub struct Announcer {
    tun: Tun,
    table: u32,
    /// When each VIP was first planned for (its warmup's start).
    first_planned: BTreeMap<IpAddr, Instant>,
    /// VIPs a takeover or restart carried on announcing: no warmup.
    carried: BTreeSet<IpAddr>,
    director_drained: bool,
    /// Updates since the table was last read back (`reconcile`).
    since_read: u32,
    stopping: bool,
    /// The last plan, and the VIPs whose route is in the table now.
    plan: BTreeMap<IpAddr, Why>,
    routed: BTreeSet<IpAddr>,
    /// The last error writing each VIP's route (retried at each update).
    failed: BTreeMap<IpAddr, String>,
    pub route_errors: u64,
    held: hold::Held,
    /// The VIPs go on `lo` at the first update: after the instance locks, not before.
    held_yet: bool,
}

impl Announcer {
    /// The announcer `cfg` asks for, if any.
    pub fn start(cfg: &Config) -> Result<Option<Announcer>> {
        // Taken whatever the file says: a device left in systemd's store and not taken
        // would keep its routes announced.
        let kept = kept();
        let Some(a) = &cfg.announce else {
            if let Some(t) = kept {
                info!(
                    "announce is off: {} and the VIP routes through it go",
                    t.name
                );
            }
            return Ok(None);
        };
        let (tun, routed) = match kept {
            Some(t) => {
                let routed = routes_through(a.table, t.ifindex);
                info!(
                    "announce: {} and its {} VIP route(s) in table {} kept across the restart (systemd's fd store)",
                    t.name,
                    routed.len(),
                    a.table
                );
                (t, routed)
            }
            None => {
                // The kernel numbers it: pids repeat across pid namespaces.
                let name = format!("{DEVICE_PREFIX}%d");
                let tun = Tun::create(&name).with_context(|| {
                    format!("announce: creating the TUN device {name} the VIP routes point at: needs CAP_NET_ADMIN and read-write access to /dev/net/tun (Debian's udev makes it mode 0666; a udev rule with GROUP=\"xvs\", MODE=\"0660\" will do)")
                })?;
                (tun, BTreeSet::new())
            }
        };
        info!(
            "announce: VIP routes go in table {} through {} (ifindex {})",
            a.table, tun.name, tun.ifindex
        );
        Ok(Some(Announcer {
            tun,
            table: a.table,
            first_planned: BTreeMap::new(),
            carried: routed.clone(),
            director_drained: false,
            since_read: 0,
            stopping: false,
            plan: BTreeMap::new(),
            routed,
            failed: BTreeMap::new(),
            route_errors: 0,
            held: hold::Held::default(),
            held_yet: false,
        }))
    }

    /// A takeover, or a restart after a handover, and whether the last process was
    /// drained (`xvs drain --director` holds across it).
    pub fn carry_on(&mut self, drained: bool) {
        self.director_drained = drained;
    }

    /// A handover to the next start of the unit (`systemctl restart`): the device goes
    /// to systemd's fd store (`FileDescriptorStoreMax=`), so it and the VIP routes
    /// outlive this process until the next one takes them (`kept`). Outside systemd
    /// this does nothing, and the routes go with the process.
    pub fn keep_for_restart(&self) {
        let states = [NotifyState::FdStore, NotifyState::FdName(FD_NAME)];
        match sd_notify::notify_with_fds(false, &states, &[self.tun.fd()]) {
            Ok(()) if std::env::var_os("NOTIFY_SOCKET").is_some() => info!(
                "announce: {} left in systemd's fd store: the VIP routes stay for the next start",
                self.tun.name
            ),
            Ok(()) => {}
            Err(e) => warn!(
                "announce: storing {} with systemd: {e}; the VIP routes go with this process",
                self.tun.name
            ),
        }
    }

    /// The table, the device's index and whether the director is drained, for the
    /// handover's answer (`adopt`).
    pub fn device(&self) -> (u32, u32, bool) {
        (self.table, self.tun.ifindex, self.director_drained)
    }

    /// Plans again and writes what changed to the table.
    pub fn update(&mut self, cfg: &Config, health: &HealthMap, drains: &Drains, quorum: &Quorums) {
        if !self.held_yet {
            self.held.sync(cfg);
            self.held_yet = true;
        }
        let now = Instant::now();
        for vs in cfg.virtual_servers.iter().filter(|v| v.announce.is_some()) {
            self.first_planned.entry(vs.address).or_insert(now);
        }
        let (first, carried) = (&self.first_planned, &self.carried);
        let age = |vip: IpAddr| match carried.contains(&vip) {
            true => None,
            false => first.get(&vip).map(|t| now.duration_since(*t)),
        };
        let mut plan = plan::plan(&plan::Inputs {
            cfg,
            health,
            drains,
            age: &age,
            quorum_lost: &|name| quorum.get(name).is_some_and(|q| !q.met()),
            director_drained: self.director_drained,
        });
        if self.stopping {
            plan.values_mut().for_each(|w| *w = Why::Stopping);
        }
        for (vip, why) in &plan {
            // Once per change of reason (a warmup's time left changes at every tick).
            if self.plan.get(vip).map(Why::label) != Some(why.label()) && !why.announced() {
                info!("announce: {vip} not announced: {}", why.text());
            }
        }
        self.first_planned.retain(|vip, _| plan.contains_key(vip));
        self.plan = plan;
        self.reconcile();
        self.write();
    }

    /// Every few updates, what the table really holds through this device: a route
    /// someone flushed, or lost with the device's link, is written again.
    fn reconcile(&mut self) {
        self.since_read += 1;
        if self.since_read < RECONCILE_EVERY {
            return;
        }
        self.since_read = 0;
        if let Ok(there) = table_routes::list(self.table) {
            let mine: BTreeSet<IpAddr> = there
                .iter()
                .filter(|r| r.oif == self.tun.ifindex)
                .map(|r| r.dst)
                .collect();
            for vip in self.routed.difference(&mine) {
                warn!(
                    "announce: the route to {vip} left table {} without xvs: writing it again",
                    self.table
                );
            }
            self.routed.retain(|v| mine.contains(v));
        }
    }

    /// Brings the table in line with the plan: routes added for announced VIPs, removed
    /// for the others and for VIPs no longer configured.
    fn write(&mut self) {
        let want: BTreeSet<IpAddr> = self
            .plan
            .iter()
            .filter(|(_, w)| w.announced())
            .map(|(v, _)| *v)
            .collect();
        for vip in self.routed.difference(&want).copied().collect::<Vec<_>>() {
            match table_routes::del(self.table, vip, self.tun.ifindex) {
                Ok(_) => {
                    info!("announce: {vip} withdrawn (table {})", self.table);
                    self.routed.remove(&vip);
                    self.failed.remove(&vip);
                }
                Err(e) => self.failure(vip, "removing", e),
            }
        }
        for vip in want.difference(&self.routed).copied().collect::<Vec<_>>() {
            match write_route(self.table, vip, self.tun.ifindex) {
                Ok(()) => {
                    info!("announce: {vip} announced (table {})", self.table);
                    self.routed.insert(vip);
                    self.failed.remove(&vip);
                }
                Err(e) => self.failure(vip, "writing", e),
            }
        }
    }

    fn failure(&mut self, vip: IpAddr, doing: &str, e: std::io::Error) {
        let msg = format!(
            "{doing} the route to {vip} in table {} through {}: {e}",
            self.table, self.tun.name
        );
        if self.failed.get(&vip) != Some(&msg) {
            error!("announce: {msg}");
        }
        self.route_errors += 1;
        self.failed.insert(vip, msg);
    }

    /// A reload: a new table takes the routes (the old one's removed); the plan is
    /// made again by the caller's `update`.
    pub fn reconfigure(&mut self, cfg: &Config) {
        self.held.sync(cfg);
        let Some(a) = &cfg.announce else { return };
        if a.table == self.table {
            return;
        }
        info!("announce: table {} → {}", self.table, a.table);
        for vip in std::mem::take(&mut self.routed) {
            if let Err(e) = table_routes::del(self.table, vip, self.tun.ifindex) {
                warn!("announce: removing {vip} from table {}: {e}", self.table);
            }
        }
        self.table = a.table;
    }

    /// `xvs drain --director` (`on`) or `xvs undrain --director`.
    pub fn drain_director(&mut self, on: bool) -> String {
        let was = std::mem::replace(&mut self.director_drained, on);
        match (was, on) {
            (false, true) => {
                "director drained: every VIP withdrawn; established connections go on\n"
            }
            (true, false) => "director undrained: VIPs announced again as they can serve\n",
            (true, true) => "director already drained\n",
            (false, false) => "director not drained\n",
        }
        .to_string()
    }

    /// The stop: every route withdrawn; returns how long the routers get to move the
    /// flows before the workers stop.
    pub fn withdraw_all(&mut self, cfg: &Config) -> Duration {
        let delay = plan::withdraw_delay(cfg, self.routed.iter().copied());
        self.stopping = true;
        self.plan.values_mut().for_each(|w| *w = Why::Stopping);
        self.write();
        delay
    }

    /// The end of a clean stop: the VIPs this process put on `lo` leave it.
    pub fn release(&mut self) {
        self.held.release();
    }

    /// Each VIP with `announce`, announced or not and why.
    pub fn rows(&self) -> Vec<VipRow> {
        self.plan
            .iter()
            .map(|(vip, why)| {
                let routed = self.routed.contains(vip);
                let (reason, detail) = match self.failed.get(vip) {
                    Some(e) => ("route_error", e.clone()),
                    None => (why.label(), why.text()),
                };
                VipRow {
                    vip: *vip,
                    announced: routed,
                    reason,
                    detail,
                }
            })
            .collect()
    }

    pub fn table(&self) -> u32 {
        self.table
    }

    /// A takeover: the running process's routes (`old_table`, through its device
    /// `old_oif`) moved onto this one's, for the VIPs this configuration has, and
    /// removed for the others, so the old device holds none when it goes.
    pub fn adopt(&mut self, cfg: &Config, old_table: u32, old_oif: u32) {
        let ours: BTreeSet<IpAddr> = cfg
            .virtual_servers
            .iter()
            .filter(|v| v.announce.is_some_and(|g| g.enabled))
            .map(|v| v.address)
            .collect();
        // Only routes through a device of xvs's: the answer names it by index.
        let theirs = crate::sys::iface::name_of(old_oif);
        if !theirs
            .as_deref()
            .is_some_and(|n| n.starts_with(DEVICE_PREFIX))
        {
            return warn!("announce: the last xvs's device (ifindex {old_oif}) is {theirs:?}, not one of xvs's: its routes are left alone");
        }
        let routes = match table_routes::list(old_table) {
            Ok(r) => r,
            Err(e) => return warn!("announce: reading table {old_table}: {e}"),
        };
        for r in routes.into_iter().filter(|r| r.oif == old_oif) {
            if ours.contains(&r.dst) {
                match write_route(self.table, r.dst, self.tun.ifindex) {
                    Ok(()) => {
                        self.routed.insert(r.dst);
                        self.carried.insert(r.dst);
                    }
                    Err(e) => self.failure(r.dst, "taking over", e),
                }
            }
            if old_table != self.table || !ours.contains(&r.dst) {
                let _ = table_routes::del(old_table, r.dst, old_oif);
            }
        }
        info!(
            "announce: took over {} VIP route(s) from the last xvs",
            self.routed.len()
        );
    }
}

/// Writes `vip`'s route through `oif`: in place of one of xvs's own (protocol 77) left
/// there, never of anyone else's.
fn write_route(table: u32, vip: IpAddr, oif: u32) -> std::io::Result<()> {
    match table_routes::add(table, vip, oif, false) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            let xvs_s = table_routes::list(table)?.iter().any(|r| r.dst == vip);
            if !xvs_s {
                return Err(std::io::Error::other(format!(
                    "table {table} has a route to {vip} that is not xvs's: remove it, or give `announce` a table of its own"
                )));
            }
            table_routes::add(table, vip, oif, true)
        }
        other => other,
    }
}

/// A start that fails before `Announcer::start` (its file refused): the device systemd
/// kept, if any, goes now, and the VIP routes with it.
pub fn release_kept() {
    if let Some(t) = kept() {
        warn!(
            "announce: this start failed: {} and the VIP routes through it go",
            t.name
        );
    }
}

/// The device the last process of this unit left in systemd's fd store. Taken out of the
/// store at once: were this process to die, the device must go with it.
fn kept() -> Option<Tun> {
    let fd = crate::sys::listen_fds::take_named(FD_NAME)?;
    let _ = sd_notify::notify(
        false,
        &[NotifyState::FdStoreRemove, NotifyState::FdName(FD_NAME)],
    );
    match Tun::adopt(fd) {
        Ok(t) => Some(t),
        Err(e) => {
            warn!("announce: the device systemd kept: {e}; starting with a new one");
            None
        }
    }
}

/// The VIPs routed through device `oif` in `table`.
fn routes_through(table: u32, oif: u32) -> BTreeSet<IpAddr> {
    table_routes::list(table)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.oif == oif)
        .map(|r| r.dst)
        .collect()
}

/// The handing-over process's side of `adopt`: waits (at most `patience`) until no
/// route points at its device any more, so its exit withdraws nothing.
pub fn wait_adopted(table: u32, oif: u32, patience: Duration) {
    let until = Instant::now() + patience;
    loop {
        // A failed read is "not yet": exiting early would withdraw the routes.
        let left = table_routes::list(table)
            .map(|r| r.iter().filter(|r| r.oif == oif).count())
            .unwrap_or(1);
        if left == 0 {
            return;
        }
        if Instant::now() >= until {
            return warn!("announce: {left} VIP route(s) not taken over within {patience:?}: withdrawn at exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
