//! Which VIPs this director offers, and why not the others, sans-IO: a VIP is announced
//! while the director is not drained, its warmup has passed, and every virtual server on
//! it that counts (`announce.enabled`) has its quorum, its `min_healthy` real servers up
//! and its `min_weight_fraction` of the weight. Every virtual server, not any: a director that
//! cannot serve one port of a VIP lets the routers send that VIP to one that can.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use xvs_config::{AnnounceGate, Config, VirtualServer};

use crate::daemon::drain::Drains;
use crate::health::HealthMap;
use crate::ids::DestKey;

/// Why a VIP is (or is not) announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    Serving,
    /// No virtual server on the VIP counts (`announce: {enabled: false}` on each).
    NotCounted,
    WarmingUp {
        left: Duration,
    },
    /// `xvs drain --director`.
    DirectorDrained,
    /// Fewer real servers up than `min_healthy`.
    TooFewUp {
        virtual_server: String,
        up: u32,
        need: u32,
    },
    /// Below its keepalived `quorum` (with its hysteresis).
    QuorumLost {
        virtual_server: String,
    },
    /// Less of the weight up than `min_weight_fraction`.
    TooLittleWeight {
        virtual_server: String,
        permille: u32,
        need: u32,
    },
    /// The process is stopping.
    Stopping,
}

impl Why {
    pub fn announced(&self) -> bool {
        *self == Why::Serving
    }

    /// The reason's name, for `/metrics` labels and JSON.
    pub fn label(&self) -> &'static str {
        match self {
            Why::Serving => "serving",
            Why::NotCounted => "not_counted",
            Why::WarmingUp { .. } => "warming_up",
            Why::DirectorDrained => "director_drained",
            Why::TooFewUp { .. } => "too_few_up",
            Why::TooLittleWeight { .. } => "too_little_weight",
            Why::QuorumLost { .. } => "quorum_lost",
            Why::Stopping => "stopping",
        }
    }

    /// The reason, said in full.
    pub fn text(&self) -> String {
        match self {
            Why::Serving => "serving".into(),
            Why::NotCounted => "no virtual server on it counts (announce enabled: false)".into(),
            Why::WarmingUp { left } => format!("warming up, {:.1} s left", left.as_secs_f64()),
            Why::DirectorDrained => "the director is drained (xvs undrain --director)".into(),
            Why::TooFewUp {
                virtual_server,
                up,
                need,
            } => format!("{virtual_server:?}: {up} real server(s) up, min_healthy {need}"),
            Why::TooLittleWeight {
                virtual_server,
                permille,
                need,
            } => format!(
                "{virtual_server:?}: {:.1} % of the weight up, min_weight_fraction {:.3}",
                f64::from(*permille) / 10.0,
                f64::from(*need) / 1000.0
            ),
            Why::QuorumLost { virtual_server } => format!("{virtual_server:?}: below its quorum"),
            Why::Stopping => "stopping".into(),
        }
    }
}

/// What the plan is made from.
pub struct Inputs<'a> {
    pub cfg: &'a Config,
    pub health: &'a HealthMap,
    pub drains: &'a Drains,
    /// How long each VIP has been planned for; None: no warmup (a VIP a takeover
    /// carried on announcing).
    pub age: &'a dyn Fn(IpAddr) -> Option<Duration>,
    /// Whether a virtual server (by name) has lost its quorum.
    pub quorum_lost: &'a dyn Fn(&str) -> bool,
    pub director_drained: bool,
}

/// Each VIP of a virtual server with `announce`, and why it is announced or not.
pub fn plan(i: &Inputs) -> BTreeMap<IpAddr, Why> {
    let mut out = BTreeMap::new();
    for vs in &i.cfg.virtual_servers {
        let Some(gate) = vs.announce else { continue };
        let why = out.entry(vs.address).or_insert(Why::NotCounted);
        if !gate.enabled {
            continue;
        }
        let this = verdict(i, vs, gate);
        // The first reason stands: a VIP is as servable as its least servable part.
        if matches!(why, Why::NotCounted | Why::Serving) {
            *why = this;
        }
    }
    out
}

/// One virtual server's verdict on its VIP.
fn verdict(i: &Inputs, vs: &VirtualServer, gate: AnnounceGate) -> Why {
    if i.director_drained {
        return Why::DirectorDrained;
    }
    if let Some(since) = (i.age)(vs.address) {
        let warmup = Duration::from_millis(gate.warmup_ms);
        if since < warmup {
            return Why::WarmingUp {
                left: warmup - since,
            };
        }
    }
    if (i.quorum_lost)(&vs.name) {
        return Why::QuorumLost {
            virtual_server: vs.name.clone(),
        };
    }
    let (up, live, total) = counts(i, vs);
    if up < gate.min_healthy {
        return Why::TooFewUp {
            virtual_server: vs.name.clone(),
            up,
            need: gate.min_healthy,
        };
    }
    let permille = (live * 1000).checked_div(total).unwrap_or(0) as u32;
    if permille < gate.min_weight_permille {
        return Why::TooLittleWeight {
            virtual_server: vs.name.clone(),
            permille,
            need: gate.min_weight_permille,
        };
    }
    Why::Serving
}

/// Real servers that take new connections (up, weight above 0, not drained), their
/// weight, and the configured weight.
fn counts(i: &Inputs, vs: &VirtualServer) -> (u32, u64, u64) {
    let (mut up, mut live, mut total) = (0, 0u64, 0u64);
    for rs in &vs.real_servers {
        total += u64::from(rs.weight);
        let weight = match i.health.get(&DestKey::of(vs, rs)) {
            Some(h) if !h.up => 0,
            Some(h) => h.weight.unwrap_or(rs.weight),
            None => rs.weight,
        };
        if weight > 0 && !i.drains.contains(vs, rs) {
            up += 1;
            live += u64::from(weight);
        }
    }
    (up, live.min(total), total)
}

/// How long the routers get to move flows after a withdrawal at stop: the longest
/// `withdraw_delay` among the virtual servers on `vips`.
pub fn withdraw_delay(cfg: &Config, vips: impl Iterator<Item = IpAddr> + Clone) -> Duration {
    let ms = cfg
        .virtual_servers
        .iter()
        .filter(|vs| vips.clone().any(|v| v == vs.address))
        .filter_map(|vs| vs.announce.map(|g| g.withdraw_delay_ms))
        .max()
        .unwrap_or(0);
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::drain::Target;
    use crate::health::Health;

    const FILE: &str = "interface: lo
announce: { table: 100, min_healthy: 2, warmup: 3, withdraw_delay: 1.5 }
virtual_servers:
  - name: web
    address: 10.0.0.100
    port: 80
    protocol: tcp
    real_servers: [{ address: 10.0.0.11 }, { address: 10.0.0.12 }, { address: 10.0.0.13, weight: 2 }]
  - name: tls
    address: 10.0.0.100
    port: 443
    protocol: tcp
    announce: { min_healthy: 1, min_weight_fraction: 0.5, withdraw_delay: 4 }
    real_servers: [{ address: 10.0.0.11, weight: 3 }, { address: 10.0.0.12 }]
  - name: dns
    address: 10.0.0.53
    port: 53
    protocol: udp
    announce: { enabled: false }
    real_servers: [{ address: 10.0.0.11 }]
";

    fn cfg() -> Config {
        xvs_config::parse("t.yaml", FILE).unwrap()
    }

    fn down(cfg: &Config, vs: usize, rs: usize) -> (DestKey, Health) {
        let v = &cfg.virtual_servers[vs];
        let h = Health {
            up: false,
            weight: None,
        };
        (DestKey::of(v, &v.real_servers[rs]), h)
    }

    fn run(
        cfg: &Config,
        health: &HealthMap,
        drains: &Drains,
        since: Option<u64>,
    ) -> BTreeMap<IpAddr, Why> {
        plan(&Inputs {
            cfg,
            health,
            drains,
            age: &|_| since.map(Duration::from_secs),
            quorum_lost: &|_| false,
            director_drained: false,
        })
    }

    fn vip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_vip_is_announced_once_warm_while_every_counted_virtual_server_can_serve() {
        let c = cfg();
        let (health, drains) = (HealthMap::new(), Drains::default());
        let warm = run(&c, &health, &drains, Some(1));
        assert_eq!(
            warm[&vip("10.0.0.100")],
            Why::WarmingUp {
                left: Duration::from_secs(2)
            }
        );
        let p = run(&c, &health, &drains, Some(3));
        assert_eq!(p[&vip("10.0.0.100")], Why::Serving);
        assert_eq!(p[&vip("10.0.0.53")], Why::NotCounted, "dns does not count");
        // A takeover has no warmup.
        assert!(run(&c, &health, &drains, None)[&vip("10.0.0.100")].announced());
    }

    #[test]
    fn too_few_up_or_too_little_weight_in_any_virtual_server_withdraws_the_vip() {
        let c = cfg();
        let drains = Drains::default();
        // web: 2 of 3 up still meets min_healthy 2.
        let h: HealthMap = [down(&c, 0, 0)].into_iter().collect();
        assert!(run(&c, &h, &drains, None)[&vip("10.0.0.100")].announced());
        let h: HealthMap = [down(&c, 0, 0), down(&c, 0, 1)].into_iter().collect();
        assert_eq!(
            run(&c, &h, &drains, None)[&vip("10.0.0.100")],
            Why::TooFewUp {
                virtual_server: "web".into(),
                up: 1,
                need: 2
            }
        );
        // tls: 10.0.0.11 (weight 3 of 4) down leaves 25 %, under its 50 %.
        let h: HealthMap = [down(&c, 1, 0)].into_iter().collect();
        let why = &run(&c, &h, &drains, None)[&vip("10.0.0.100")];
        assert_eq!(
            *why,
            Why::TooLittleWeight {
                virtual_server: "tls".into(),
                permille: 250,
                need: 500
            }
        );
        assert!(why.text().contains("25.0 %"), "{}", why.text());
        // A drained real server counts as out, as a zero dynamic weight does.
        let mut drains = Drains::default();
        drains.set(
            Target::parse("10.0.0.12:80").unwrap().resolve(&c).unwrap(),
            true,
        );
        let mut zero = down(&c, 0, 0);
        zero.1 = Health {
            up: true,
            weight: Some(0),
        };
        let h: HealthMap = [zero].into_iter().collect();
        assert!(matches!(
            run(&c, &h, &drains, None)[&vip("10.0.0.100")],
            Why::TooFewUp { up: 1, .. }
        ));
    }

    #[test]
    fn a_drained_director_withdraws_everything_and_the_delay_is_the_longest() {
        let c = cfg();
        let p = plan(&Inputs {
            cfg: &c,
            health: &HealthMap::new(),
            drains: &Drains::default(),
            age: &|_| None,
            quorum_lost: &|_| false,
            director_drained: true,
        });
        assert_eq!(p[&vip("10.0.0.100")], Why::DirectorDrained);
        let lost = plan(&Inputs {
            cfg: &c,
            health: &HealthMap::new(),
            drains: &Drains::default(),
            age: &|_| None,
            quorum_lost: &|name| name == "tls",
            director_drained: false,
        });
        assert_eq!(
            lost[&vip("10.0.0.100")],
            Why::QuorumLost {
                virtual_server: "tls".into()
            }
        );
        // A VIP's own warmup: one planned for 3 s is warm, one just added is not.
        let young = plan(&Inputs {
            cfg: &c,
            health: &HealthMap::new(),
            drains: &Drains::default(),
            age: &|v| {
                Some(Duration::from_secs(if v == vip("10.0.0.100") {
                    3
                } else {
                    0
                }))
            },
            quorum_lost: &|_| false,
            director_drained: false,
        });
        assert!(young[&vip("10.0.0.100")].announced());
        let vips = [vip("10.0.0.100")];
        assert_eq!(
            withdraw_delay(&c, vips.iter().copied()),
            Duration::from_secs(4)
        );
        assert_eq!(withdraw_delay(&c, [].iter().copied()), Duration::ZERO);
    }
}
