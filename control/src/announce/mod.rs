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
use tracing::{error, info, warn};
use xvs_config::Config;

use crate::daemon::drain::Drains;
use crate::health::HealthMap;
use crate::sys::table_routes;
use crate::sys::tun::Tun;
pub use plan::Why;

/// The prefix of the devices the routes point at (the pid completes the name).
const DEVICE_PREFIX: &str = "xvs-rhi";

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
    started: Instant,
    /// False after a takeover: the director was serving, so no warmup.
    warmup: bool,
    director_drained: bool,
    stopping: bool,
    /// The last plan, and the VIPs whose route is in the table now.
    plan: BTreeMap<IpAddr, Why>,
    routed: BTreeSet<IpAddr>,
    /// The last error writing each VIP's route (retried at each update).
    failed: BTreeMap<IpAddr, String>,
    pub route_errors: u64,
    held: hold::Held,
}

impl Announcer {
    /// The announcer `cfg` asks for, if any.
    pub fn start(cfg: &Config) -> Result<Option<Announcer>> {
        let Some(a) = &cfg.announce else {
            return Ok(None);
        };
        let name = format!("{DEVICE_PREFIX}{}", std::process::id());
        let tun = Tun::create(&name).with_context(|| {
            format!("announce: creating the TUN device {name} the VIPs' routes point at (needs /dev/net/tun and CAP_NET_ADMIN)")
        })?;
        info!(
            "announce: VIP routes go in table {} through {name} (ifindex {})",
            a.table, tun.ifindex
        );
        let mut held = hold::Held::default();
        held.sync(cfg);
        Ok(Some(Announcer {
            tun,
            table: a.table,
            started: Instant::now(),
            warmup: true,
            director_drained: false,
            stopping: false,
            plan: BTreeMap::new(),
            routed: BTreeSet::new(),
            failed: BTreeMap::new(),
            route_errors: 0,
            held,
        }))
    }

    /// A takeover, or a restart after a handover: the director was serving, so no
    /// warmup.
    pub fn carry_on(&mut self) {
        self.warmup = false;
    }

    /// The table and the device's index, for the handover's answer (`adopt`).
    pub fn device(&self) -> (u32, u32) {
        (self.table, self.tun.ifindex)
    }

    /// Plans again and writes what changed to the table.
    pub fn update(&mut self, cfg: &Config, health: &HealthMap, drains: &Drains) {
        let mut plan = plan::plan(&plan::Inputs {
            cfg,
            health,
            drains,
            since_start: self.warmup.then(|| self.started.elapsed()),
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
        self.plan = plan;
        self.write();
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
            // Replace: a route of ours left by a handover we did not adopt is ours now.
            match table_routes::add(self.table, vip, self.tun.ifindex, true) {
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
        let routes = match table_routes::list(old_table) {
            Ok(r) => r,
            Err(e) => return warn!("announce: reading table {old_table}: {e}"),
        };
        for r in routes.into_iter().filter(|r| r.oif == old_oif) {
            if ours.contains(&r.dst) {
                match table_routes::add(self.table, r.dst, self.tun.ifindex, true) {
                    Ok(()) => {
                        self.routed.insert(r.dst);
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

/// The handing-over process's side of `adopt`: waits (at most `patience`) until no
/// route points at its device any more, so its exit withdraws nothing.
pub fn wait_adopted(table: u32, oif: u32, patience: Duration) {
    let until = Instant::now() + patience;
    loop {
        let left = table_routes::list(table)
            .map(|r| r.iter().filter(|r| r.oif == oif).count())
            .unwrap_or(0);
        if left == 0 {
            return;
        }
        if Instant::now() >= until {
            return warn!("announce: {left} VIP route(s) not taken over within {patience:?}: withdrawn at exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
