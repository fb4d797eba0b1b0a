//! keepalived's quorum for one virtual server, sans-IO: the live weight (the weights of
//! its real servers that are up) against `quorum`, with `hysteresis` so that a weight
//! hovering at the line does not flap. Lost below quorum − hysteresis, regained at
//! quorum + hysteresis; met at start, as keepalived assumes.

use xvs_config::VirtualServer;

use super::HealthMap;
use crate::ids::DestKey;

/// A quorum crossing: what `quorum_down`/`quorum_up` and `quorum_vrrp` act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossing {
    Lost,
    Regained,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quorum {
    quorum: u32,
    hysteresis: u32,
    met: bool,
}

impl Quorum {
    pub fn new(quorum: u32, hysteresis: u32) -> Quorum {
        Quorum {
            quorum,
            hysteresis,
            met: true,
        }
    }

    /// The same state under a reloaded quorum and hysteresis (keepalived keeps it too);
    /// the next `update` decides by the new numbers.
    pub fn reconfigured(self, quorum: u32, hysteresis: u32) -> Quorum {
        Quorum {
            quorum,
            hysteresis,
            met: self.met,
        }
    }

    pub fn met(&self) -> bool {
        self.met
    }

    /// The live weight now; Some when that crosses the line.
    pub fn update(&mut self, live_weight: u32) -> Option<Crossing> {
        let now = if self.met {
            live_weight.saturating_add(self.hysteresis) >= self.quorum
        } else {
            live_weight >= self.quorum.saturating_add(self.hysteresis)
        };
        if now == self.met {
            return None;
        }
        self.met = now;
        Some(if now {
            Crossing::Regained
        } else {
            Crossing::Lost
        })
    }
}

/// The weight a virtual server can serve with now: each real server's weight (its MISC
/// dynamic one if given) while it is up; an unchecked server counts as up.
pub fn live_weight(vs: &VirtualServer, health: &HealthMap) -> u32 {
    vs.real_servers
        .iter()
        .map(|rs| match health.get(&DestKey::of(vs, rs)) {
            Some(h) if !h.up => 0,
            Some(h) => h.weight.unwrap_or(rs.weight),
            None => rs.weight,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;

    #[test]
    fn lost_below_quorum_minus_hysteresis_regained_at_plus() {
        let mut q = Quorum::new(10, 2);
        assert!(q.met(), "met at start");
        assert_eq!(q.update(12), None);
        assert_eq!(q.update(8), None, "8 + 2 >= 10: still met");
        assert_eq!(q.update(7), Some(Crossing::Lost));
        assert!(!q.met());
        assert_eq!(q.update(7), None, "only crossings are reported");
        assert_eq!(q.update(11), None, "11 < 10 + 2: still lost");
        assert_eq!(q.update(12), Some(Crossing::Regained));
        assert_eq!(q.update(12), None);
    }

    #[test]
    fn without_hysteresis_the_line_is_the_quorum() {
        let mut q = Quorum::new(3, 0);
        assert_eq!(q.update(2), Some(Crossing::Lost));
        assert_eq!(q.update(3), Some(Crossing::Regained));
        // A quorum of 0 (the default) is always met.
        let mut q = Quorum::new(0, 0);
        assert_eq!(q.update(0), None);
        assert!(q.met());
    }

    #[test]
    fn a_reload_keeps_the_state_and_applies_the_new_line() {
        let mut q = Quorum::new(10, 0);
        q.update(5);
        let mut q = q.reconfigured(4, 0);
        assert!(!q.met(), "still lost until the next update");
        assert_eq!(q.update(5), Some(Crossing::Regained));
    }

    #[test]
    fn no_overflow_at_the_extremes() {
        let mut q = Quorum::new(u32::MAX, u32::MAX);
        assert_eq!(q.update(u32::MAX), None);
        assert_eq!(q.update(0), None, "0 + MAX >= MAX: met");
    }

    #[test]
    fn live_weight_counts_up_servers_and_dynamic_weights() {
        let cfg = xvs_config::parse(
            "t.yaml",
            "interface: lo\nvirtual_servers:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    protocol: tcp\n    real_servers:\n      - { address: 10.0.0.11, weight: 3 }\n      - { address: 10.0.0.12, weight: 2 }\n      - { address: 10.0.0.13, weight: 1 }\n",
        )
        .unwrap();
        let vs = &cfg.virtual_servers[0];
        let key = |i: usize| DestKey::of(vs, &vs.real_servers[i]);
        let mut health = HealthMap::new();
        assert_eq!(live_weight(vs, &health), 6, "unchecked servers count");
        health.insert(
            key(0),
            Health {
                up: false,
                weight: None,
            },
        );
        health.insert(
            key(1),
            Health {
                up: true,
                weight: Some(7),
            },
        );
        assert_eq!(live_weight(vs, &health), 7 + 1);
    }
}
