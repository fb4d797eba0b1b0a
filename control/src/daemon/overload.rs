//! Connection thresholds (keepalived's `uthreshold`/`lthreshold`, `ipvsadm -x/-y`): a
//! real server with `uthreshold` connections or more is overloaded and takes no new
//! one, its own still go on, until it has fewer than `lthreshold`. IPVS flags the real
//! server as each connection is bound; here the control loop sums the workers' per-real-
//! server gauges every `TICK` and publishes a snapshot when a real server crosses, so the
//! hot path gains nothing and a burst may overshoot the limit by what arrives within a
//! tick.

use std::collections::HashSet;
use std::time::Duration;

use xvs_config::Config;

use crate::ids::DestKey;

/// How often the thresholds are checked (only when a real server has one).
pub const TICK: Duration = Duration::from_millis(100);

/// The real servers overloaded now.
#[derive(Clone, Debug, Default)]
pub struct Overload(HashSet<DestKey>);

impl Overload {
    pub fn contains(&self, key: &DestKey) -> bool {
        self.0.contains(key)
    }

    /// Whether any real server of `cfg` has a threshold.
    pub fn any(cfg: &Config) -> bool {
        cfg.virtual_servers
            .iter()
            .any(|vs| vs.real_servers.iter().any(|rs| rs.thresholds.is_some()))
    }

    /// Re-reads every thresholded real server's connections (`conns`); returns those that
    /// crossed, and which way (true: overloaded now). One that lost its threshold, or
    /// left the configuration, is no longer overloaded.
    pub fn update(
        &mut self,
        cfg: &Config,
        mut conns: impl FnMut(DestKey) -> u64,
    ) -> Vec<(DestKey, bool)> {
        let mut next = HashSet::new();
        for vs in &cfg.virtual_servers {
            for rs in &vs.real_servers {
                let Some(t) = rs.thresholds else { continue };
                let key = DestKey::of(vs, rs);
                if t.overloaded(self.0.contains(&key), conns(key)) {
                    next.insert(key);
                }
            }
        }
        let mut crossed: Vec<(DestKey, bool)> = next
            .difference(&self.0)
            .map(|k| (*k, true))
            .chain(self.0.difference(&next).map(|k| (*k, false)))
            .collect();
        crossed.sort_by_key(|(k, _)| (k.addr, k.port));
        self.0 = next;
        crossed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(thresholds: &str) -> Config {
        xvs_config::parse(
            "t.yaml",
            &format!("interface: lo\nvirtual_servers:\n  - {{ name: web, address: 10.0.0.100, port: 80, protocol: tcp, real_servers: [{{ address: 10.0.0.11{thresholds} }}, {{ address: 10.0.0.12 }}] }}\n"),
        )
        .unwrap()
    }

    #[test]
    fn overloaded_at_the_upper_threshold_until_below_the_lower() {
        let c = cfg(", uthreshold: 8, lthreshold: 4");
        let key = DestKey::of(&c.virtual_servers[0], &c.virtual_servers[0].real_servers[0]);
        let mut o = Overload::default();
        assert!(Overload::any(&c));
        let at = |o: &mut Overload, n: u64| o.update(&c, |_| n);
        assert!(at(&mut o, 7).is_empty());
        assert_eq!(at(&mut o, 8), vec![(key, true)]);
        assert!(o.contains(&key));
        // Hysteresis: still overloaded between the thresholds.
        assert!(at(&mut o, 5).is_empty() && at(&mut o, 4).is_empty());
        assert_eq!(at(&mut o, 3), vec![(key, false)]);
        assert!(at(&mut o, 7).is_empty(), "below the upper one again");
        // A reload that drops the threshold ends the overload.
        at(&mut o, 100);
        let plain = cfg("");
        assert!(!Overload::any(&plain));
        assert_eq!(o.update(&plain, |_| 100), vec![(key, false)]);
    }

    #[test]
    fn the_lower_threshold_defaults_to_three_quarters() {
        let c = cfg(", uthreshold: 10");
        let t = c.virtual_servers[0].real_servers[0].thresholds.unwrap();
        assert_eq!((t.upper, t.lower), (10, 8));
        let mut o = Overload::default();
        o.update(&c, |_| 10);
        assert!(o.update(&c, |_| 8).is_empty());
        assert_eq!(o.update(&c, |_| 7).len(), 1);
    }
}
