//! The running load balancer: the steering program, the workers, and what feeds them —
//! the published snapshot, the real servers' ids, MACs and health, each virtual
//! server's quorum. Built by `bringup.rs`, changed by the event loop and `reload.rs`.

use std::collections::HashMap;
use std::time::Duration;

use tracing::{error, info, warn};
use xvs_bpf::abi::NatOut;
use xvs_bpf::Steer;
use xvs_config::{Config, Forwarding, VirtualServer};
use xvs_dataplane::SharedSnapshot;

use super::drain::{self, Drains, Target};
use super::flow_state::FlowState;
use super::ifaces::Ifaces;
use super::overload::{self, Overload};
use super::publish::{self, Local};
use super::resolve::{resolve_off_loop, Macs};
use super::steer_maps::SteerMaps;
use super::workers::Workers;
use super::xdp_tx::TxWatch;
use crate::health::quorum::{self, Crossing, Quorum};
use crate::health::{task, Health, HealthMap};
use crate::ids::{DestKey, DestRegistry};
use crate::observe::counters::AllWorkers;
use crate::observe::report;

/// How often unresolved real servers are retried, and resolved ones re-read.
const RESOLVE_RETRY: Duration = Duration::from_secs(1);
pub const RESOLVE_REFRESH: Duration = Duration::from_secs(30);

pub struct Lb {
    pub steer: Steer,
    pub workers: Workers,
    pub shared: SharedSnapshot,
    pub registry: DestRegistry,
    pub local: Local,
    pub macs: Macs,
    pub health: HealthMap,
    /// Real servers the operator drained (`xvs drain`).
    pub drains: Drains,
    /// Real servers past their connection threshold.
    pub overload: Overload,
    /// Per virtual server, by name.
    pub quorum: HashMap<String, Quorum>,
    pub generation: u64,
    /// What the steering program's maps hold now (a failed reload writes it back).
    pub maps: SteerMaps,
    pub queues: u32,
    /// Connection sync, when configured.
    pub sync: Option<SyncLink>,
    /// `fast_path: auto`'s watch over the drivers' counters (None for `xdp` and `off`).
    pub tx_watch: Option<TxWatch>,
    /// The files the workers' flows outlive this process in.
    pub state: FlowState,
}

/// What a reload brings besides the file: computed before anything changes.
pub struct Staged {
    pub macs: Macs,
    pub health: HealthMap,
    pub drains: Drains,
}

/// Connection sync's thread and what VRRP waits on.
pub struct SyncLink {
    pub thread: crate::sync::SyncThread,
    /// True once this director's table is in step with its peers'.
    pub ready: tokio::sync::watch::Receiver<bool>,
    /// How long a preempting instance waits for it.
    pub resync_timeout: Duration,
}

/// Each virtual server's quorum, keeping the state of those a reload keeps.
pub fn quorums(cfg: &Config, old: &HashMap<String, Quorum>) -> HashMap<String, Quorum> {
    cfg.virtual_servers
        .iter()
        .map(|v| {
            let q = match old.get(&v.name) {
                Some(q) => q.reconfigured(v.quorum, v.hysteresis),
                None => Quorum::new(v.quorum, v.hysteresis),
            };
            (v.name.clone(), q)
        })
        .collect()
}

impl Lb {
    /// Builds and publishes a new snapshot from the config, MACs and health.
    pub fn publish(&mut self, cfg: &Config, why: &str) {
        self.generation += 1;
        match publish::build(
            self.generation,
            cfg,
            self.local,
            &self.macs,
            &self.health,
            publish::Quiet {
                drains: &self.drains,
                overload: &self.overload,
            },
            &mut self.registry,
        ) {
            Ok(s) => {
                self.install(std::sync::Arc::new(s));
                info!("published snapshot generation {} ({why})", self.generation);
            }
            Err(e) => error!("{e:#}"),
        }
    }

    /// A reload's change, all or nothing: the real servers that left are retired and the
    /// ids nothing names any more freed, then the snapshot and the steering maps are
    /// built aside (any error: nothing changed); then the snapshot is published and the
    /// maps written, and if a write fails the old snapshot and maps are put back.
    pub fn reconfigure(
        &mut self,
        old: &Config,
        new: &Config,
        ifaces: &Ifaces,
        staged: Staged,
    ) -> anyhow::Result<()> {
        let mut registry = self.registry.clone();
        registry.retire_absent(old, new, std::time::Instant::now());
        let w = AllWorkers(self.workers.counters());
        let freed = registry.reclaim(std::time::Instant::now(), |id| {
            let id = id as usize;
            w.dest(id, |c| c.active.get()) + w.dest(id, |c| c.inactive.get()) > 0
        });
        let snap = publish::build(
            self.generation + 1,
            new,
            self.local,
            &staged.macs,
            &staged.health,
            publish::Quiet {
                drains: &staged.drains,
                overload: &self.overload,
            },
            &mut registry,
        )?;
        let maps = SteerMaps::build(new, ifaces, &mut registry)?;
        // Built: nothing below fails but a map write, which is undone.
        for id in freed {
            for c in self.workers.counters() {
                if let Some(d) = c.dests.get(id as usize) {
                    d.reset();
                }
            }
            if let Err(e) = self.steer.clear_slot(id) {
                warn!("zeroing the steering program's counters of id {id}: {e}");
            }
        }
        let before = self.shared.load_full();
        self.state.reserve_v6(new);
        self.state.record(new, &registry);
        self.install(std::sync::Arc::new(snap));
        if let Err(e) = maps.write(&self.steer) {
            self.state.record(old, &self.registry);
            // The number stays used: fast-path entries the workers wrote meanwhile carry
            // it and must never look current again.
            self.generation += 1;
            self.install(before);
            if let Err(e2) = self.maps.write(&self.steer) {
                error!("putting the steering maps back after a failed reload: {e2:#}");
            }
            return Err(e.context("the running configuration is unchanged"));
        }
        // A restart after this reload takes over what this configuration wrote (with the
        // restart-only `fast_path` it runs: a file that changed it starts anew).
        if let Err(e) = self.steer.set_owner(super::takeover::owner(new)) {
            warn!("recording the configuration in the steering settings: {e}");
        }
        self.maps = maps;
        self.registry = registry;
        self.generation += 1;
        self.macs = staged.macs;
        self.health = staged.health;
        self.drains = staged.drains;
        info!("published snapshot generation {} (reload)", self.generation);
        Ok(())
    }

    /// Makes `snap` the workers' and moves the fast path to its generation.
    fn install(&mut self, snap: std::sync::Arc<xvs_dataplane::Snapshot>) {
        let (fast, relay, partial) = (snap.fast_generation, snap.nat_relay, snap.complete_partial);
        let guard = snap.syn_guard;
        let (always, auto) = (
            guard == xvs_dataplane::syn_guard::SynGuard::On,
            guard == xvs_dataplane::syn_guard::SynGuard::Auto,
        );
        self.shared.store(snap);
        // After the snapshot: entries of the old one stop being used, and the workers,
        // on the new one, write them again.
        if let Err(e) = self.steer.set_fast_generation(fast) {
            error!("moving the fast path to generation {fast}: {e}");
        }
        if let Err(e) = self.steer.set_nat_relay(relay, partial) {
            error!("handing NAT replies to the workers ({relay}): {e}");
        }
        if let Err(e) = self.steer.set_syn_guard(always, auto) {
            error!("setting the SYN guard ({guard:?}): {e}");
        }
        if !auto {
            if let Err(e) = self.steer.clear_syn_guards() {
                error!("turning the queues' SYN guards off: {e}");
            }
        }
    }

    /// `fast_path: auto`: reads the drivers' counters; when what XDP sends is not
    /// delivered, falls back to the workers for good (said once).
    pub fn check_xdp_tx(&mut self, cfg: &Config) {
        let completed = AllWorkers(self.workers.counters()).sum(|c| c.checksums_completed.get());
        let Some(w) = self.tx_watch.as_mut() else {
            return;
        };
        let Some(f) = w.sample(completed) else { return };
        warn!(
            "fast path off: {f}; established flows and NAT replies go through the workers from now on (prepare the peer and restart to have it back, or set `fast_path: off` to start so)"
        );
        self.local.xdp_tx = false;
        self.publish(cfg, "fast path fell back to the workers");
    }

    /// How the dataplane sends now (`xvs status --dataplane`, /metrics).
    pub fn fast_path_view(&self, cfg: &Config) -> super::xdp_tx::View {
        let snap = self.shared.load();
        super::xdp_tx::View {
            configured: match cfg.fast_path {
                xvs_config::FastPath::Auto => "auto",
                xvs_config::FastPath::Xdp => "xdp",
                xvs_config::FastPath::Off => "off",
            },
            active: snap.fast_generation != 0,
            nat_relay: snap.nat_relay,
            complete_partial: snap.complete_partial,
            fell_back: self
                .tx_watch
                .as_ref()
                .and_then(|w| w.fallback.as_ref())
                .map(ToString::to_string),
            undelivered: self
                .tx_watch
                .as_ref()
                .map(|w| w.lost.clone())
                .unwrap_or_default(),
        }
    }

    /// Whether `check_xdp_tx` has anything to read.
    pub fn watching_xdp_tx(&self) -> bool {
        self.tx_watch.as_ref().is_some_and(TxWatch::watching)
    }

    /// Re-reads the neighbour tables (off the loop); publishes if a MAC changed.
    pub async fn refresh(&mut self, cfg: &Config, ifaces: &Ifaces) {
        let fresh = resolve_off_loop(cfg, ifaces, &self.macs).await;
        if fresh != self.macs {
            self.macs = fresh;
            self.publish(cfg, "neighbours changed");
        }
    }

    /// A real server's health changed: log it, publish, and watch each quorum. Returns
    /// the virtual servers whose quorum crossed its line, and which way.
    pub fn on_health<'c>(
        &mut self,
        cfg: &'c Config,
        ev: task::Event,
    ) -> Vec<(&'c VirtualServer, Crossing)> {
        if ev.up {
            info!(event = "real_server_up", real_server = %ev.label, reason = %ev.reason, "{} up: {}", ev.label, ev.reason);
            alert(&ev);
        } else {
            warn!(event = "real_server_down", real_server = %ev.label, reason = %ev.reason, "{} down: {}", ev.label, ev.reason);
            alert(&ev);
        }
        self.health.insert(
            ev.key,
            Health {
                up: ev.up,
                weight: ev.weight,
            },
        );
        self.publish(cfg, "health changed");
        self.requorum(cfg)
    }

    /// Each virtual server's quorum against its live weight now (after a health
    /// change, or a reload that changed the checks or the quorum); the crossings, each
    /// said and its script run.
    pub fn requorum<'c>(&mut self, cfg: &'c Config) -> Vec<(&'c VirtualServer, Crossing)> {
        let mut crossed = Vec::new();
        for vs in &cfg.virtual_servers {
            let alive = quorum::live_weight(vs, &self.health);
            let Some(q) = self.quorum.get_mut(&vs.name) else {
                continue;
            };
            if let Some(c) = q.update(alive) {
                let (what, script) = match c {
                    Crossing::Regained => ("regained", &vs.quorum_up),
                    Crossing::Lost => ("lost", &vs.quorum_down),
                };
                warn!(
                    "virtual server {} {what} its quorum: live weight {alive}, quorum {}",
                    vs.name, vs.quorum
                );
                if let Some(s) = script {
                    crate::notify::spawn(
                        format!("virtual server {}", vs.name),
                        s.clone(),
                        Vec::new(),
                    );
                }
                crossed.push((vs, c));
            }
        }
        crossed
    }

    /// `xvs drain` (`on`) or `xvs undrain`: publishes if anything changed; answers with
    /// each real server named and the connections it still has.
    pub fn drain(&mut self, cfg: &Config, target: &Target, on: bool) -> Result<String, String> {
        let named = target.resolve(cfg)?;
        let changed = self.drains.set(named.clone(), on);
        for d in &changed {
            info!(
                event = if on { "drain" } else { "undrain" },
                virtual_server = %d.virtual_server,
                real_server = %crate::ids::endpoint(d.addr, d.port),
                "{} {}: {}",
                if on { "drained" } else { "undrained" },
                d.virtual_server,
                crate::ids::endpoint(d.addr, d.port)
            );
        }
        if !changed.is_empty() {
            self.publish(cfg, if on { "drain" } else { "undrain" });
        }
        let mut answer = String::new();
        for d in &named {
            let Some(vs) = cfg
                .virtual_servers
                .iter()
                .find(|v| v.name == d.virtual_server)
            else {
                continue;
            };
            let id = self.registry.id(DestKey {
                service: crate::ids::service_key(vs),
                addr: d.addr,
                port: d.port,
            }) as usize;
            let w = AllWorkers(self.workers.counters());
            let open = (
                w.dest(id, |c| c.active.get()),
                w.dest(id, |c| c.inactive.get()),
            );
            answer += &drain::answer(d, changed.contains(d), on, open);
        }
        Ok(answer)
    }

    /// Checks the connection thresholds against the workers' gauges; publishes when a
    /// real server crossed one.
    pub fn check_thresholds(&mut self, cfg: &Config) {
        let w = AllWorkers(self.workers.counters());
        let registry = &mut self.registry;
        let crossed = self.overload.update(cfg, |key| {
            let id = registry.id(key) as usize;
            w.dest(id, |c| c.active.get()) + w.dest(id, |c| c.inactive.get())
        });
        if crossed.is_empty() {
            return;
        }
        for (key, over) in &crossed {
            if *over {
                warn!(
                    "real server {} overloaded: it reached its uthreshold; no new connections",
                    crate::ids::endpoint(key.addr, key.port)
                );
            } else {
                info!(
                    "real server {} below its lthreshold: scheduled again",
                    crate::ids::endpoint(key.addr, key.port)
                );
            }
        }
        self.publish(cfg, "connection threshold crossed");
    }

    /// When to check the thresholds next: `overload::TICK` when a real server has one.
    pub fn threshold_tick(cfg: &Config) -> Option<Duration> {
        Overload::any(cfg).then_some(overload::TICK)
    }

    /// What the steering program sent out for each NAT and FullNAT real server, by id
    /// (the rest: 0).
    pub fn outbound(&mut self, cfg: &Config) -> Vec<NatOut> {
        let mut out = vec![NatOut::default(); self.registry.issued()];
        for vs in cfg
            .virtual_servers
            .iter()
            .filter(|v| matches!(v.forwarding, Forwarding::Nat | Forwarding::FullNat))
        {
            for rs in &vs.real_servers {
                let id = self.registry.id(DestKey::of(vs, rs));
                if let (Some(slot), Ok(n)) = (out.get_mut(id as usize), self.steer.nat_out(id)) {
                    *slot = n;
                }
            }
        }
        out
    }

    /// What the XDP fast path forwarded for each real server, by id (added to the
    /// workers' "in" counts by every view).
    pub fn fast_in(&self) -> Vec<NatOut> {
        (0..self.registry.issued() as u32)
            .map(|id| self.steer.fast_in(id).unwrap_or_default())
            .collect()
    }

    /// When to read the neighbour tables again.
    pub fn next_refresh(&self, cfg: &Config) -> Duration {
        if publish::unresolved(cfg, &self.macs).is_empty() {
            RESOLVE_REFRESH
        } else {
            RESOLVE_RETRY
        }
    }

    /// For a handover: connection sync and the workers stop (their flow-state files then
    /// hold every connection); nothing is detached or removed.
    pub fn quiesce(&mut self) {
        if let Some(s) = self.sync.as_mut() {
            s.thread.stop();
        }
        self.workers.stop();
        self.state.handed_over();
    }

    /// Gives the kernel its traffic back first, then stops the workers; prints the counters.
    pub fn stop(mut self, cfg: &Config, ifaces: &Ifaces) {
        if let Some(s) = self.sync.as_mut() {
            s.thread.stop();
        }
        self.steer.detach();
        for q in 0..self.queues {
            self.steer.unregister_xsk(q);
        }
        self.workers.stop();
        // The workers, and their mappings, are gone: a clean stop leaves no flows behind.
        self.state.remove();
        let xdp = self.steer.counters().ok();
        let fast_in = self.fast_in();
        print!(
            "{}",
            report::render(
                cfg,
                &mut self.registry,
                self.workers.counters(),
                xdp.as_ref(),
                &fast_in,
            )
        );
        info!("detached from {}", ifaces.external.name);
    }
}

/// The addresses of the director's interfaces, both families (netlink dumps: quick, no
/// I/O wait).
pub fn host_addrs() -> anyhow::Result<Vec<std::net::IpAddr>> {
    use anyhow::Context;
    let v4 = crate::sys::netlink::addresses().context("reading the director's addresses")?;
    let v6 = crate::sys::netlink::addresses6().context("reading the director's IPv6 addresses")?;
    Ok(v4
        .into_iter()
        .map(|(_, a, _)| a.into())
        .chain(v6.into_iter().map(|(_, a, _)| a.into()))
        .collect())
}

/// The e-mail alert of a real server's health change, keepalived's words.
fn alert(ev: &task::Event) {
    use crate::alert::message::endpoint;
    let k = &ev.key;
    let port = if k.port == 0 { k.service.port } else { k.port };
    crate::alert::raise(crate::alert::Event::RealServer {
        real_server: endpoint(k.addr, k.service.proto, port),
        virtual_server: endpoint(k.service.addr, k.service.proto, k.service.port),
        up: ev.up,
        reason: ev.reason.clone(),
    });
}
