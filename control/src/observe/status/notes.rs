//! What `xvs status` and the status page say of a real server beyond the moment's
//! counts: since when it has been in its state (as this process saw it change, at most
//! one rate sample late; a restart starts anew), and its health check's verdict with the
//! reason of its last change. Kept by the control loop: a check's verdict as it comes,
//! the states at each rate sample and each status.

use std::collections::HashMap;

use xvs_config::Config;

use super::rows::VirtualServerRow;
use crate::calendar::unix_now;
use crate::health::HealthMap;
use crate::ids::{service_key, DestKey};

#[derive(Default)]
pub struct Notes {
    /// Each real server's state word and when it was first seen in it.
    states: HashMap<DestKey, (&'static str, u64)>,
    /// Each checked real server's last change of verdict: up or not, and why.
    checks: HashMap<DestKey, (bool, String)>,
}

impl Notes {
    /// A health check's verdict on `key` (`up`), and its reason.
    pub fn checked(&mut self, key: DestKey, up: bool, reason: &str) {
        self.checks.insert(key, (up, reason.to_string()));
    }

    /// What to say of `key`'s check: its verdict now (`health`), with the reason of the
    /// change that led there when this process saw one (a server up from the start has
    /// none to give); nothing for an unchecked server.
    fn verdict(&self, key: &DestKey, health: &HealthMap) -> Option<String> {
        let up = health.get(key)?.up;
        let word = if up { "up" } else { "down" };
        Some(match self.checks.get(key) {
            Some((was, why)) if *was == up => format!("{word}: {why}"),
            _ => word.to_string(),
        })
    }

    /// Notes each real server's state in `rows` (of `cfg`, in its order) and fills in
    /// since when and its check's verdict. A server its check has down is `down` even
    /// where the snapshot keeps it at weight 0 (`inhibit_on_failure`). Real servers no
    /// longer configured are forgotten.
    pub fn annotate(&mut self, cfg: &Config, health: &HealthMap, rows: &mut [VirtualServerRow]) {
        let now = unix_now();
        let mut seen = HashMap::with_capacity(self.states.len());
        for (vs, row) in cfg.virtual_servers.iter().zip(rows.iter_mut()) {
            let service = service_key(vs);
            for rs in row.real_servers.iter_mut() {
                let key = DestKey {
                    service,
                    addr: rs.address,
                    port: rs.port,
                };
                if !rs.sorry && health.get(&key).is_some_and(|h| !h.up) {
                    rs.state = "down";
                }
                let since = match self.states.get(&key) {
                    Some((state, since)) if *state == rs.state => *since,
                    _ => now,
                };
                seen.insert(key, (rs.state, since));
                rs.since = Some(since);
                rs.last_check = self.verdict(&key, health);
            }
        }
        self.checks.retain(|k, _| seen.contains_key(k));
        self.states = seen;
    }
}

#[cfg(test)]
mod tests {
    use super::super::rows::{RealServerRow, Totals};
    use super::*;
    use crate::health::Health;

    fn row(state: &'static str) -> RealServerRow {
        RealServerRow {
            address: "10.0.0.11".parse().unwrap(),
            port: 80,
            in_pool: true,
            weight: Some(0),
            drained: false,
            overloaded: false,
            active_conns: 0,
            inactive_conns: 0,
            thresholds: None,
            sorry: false,
            state,
            since: None,
            last_check: None,
            totals: Totals::default(),
            rate: None,
        }
    }

    fn rows(cfg: &Config, state: &'static str) -> Vec<VirtualServerRow> {
        let vs = &cfg.virtual_servers[0];
        vec![VirtualServerRow {
            name: vs.name.clone(),
            protocol: "tcp",
            address: vs.address,
            ports: vec![80],
            scheduler: "rr",
            persistence_timeout: None,
            persistence_mask: None,
            scheduler_flags: vec![],
            ops: false,
            forwarding: "Route",
            local_addresses: vec![],
            totals: Totals::default(),
            rate: None,
            real_servers: vec![row(state)],
        }]
    }

    #[test]
    fn a_server_its_check_has_down_is_down_with_the_reason_of_the_change() {
        let cfg = xvs_config::parse(
            "t",
            "interface: eth0\nvirtual_servers:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    protocol: tcp\n    real_servers:\n      - { address: 10.0.0.11 }\n",
        )
        .unwrap();
        let key = DestKey::of(
            &cfg.virtual_servers[0],
            &cfg.virtual_servers[0].real_servers[0],
        );
        let mut health = HealthMap::new();
        health.insert(
            key,
            Health {
                up: true,
                weight: None,
            },
        );
        let mut n = Notes::default();
        let mut r = rows(&cfg, "up");
        n.annotate(&cfg, &health, &mut r);
        let rs = &r[0].real_servers[0];
        assert_eq!(
            (rs.state, rs.last_check.as_deref()),
            ("up", Some("up")),
            "up from the start: no reason to give"
        );
        let since = rs.since;

        // Inhibited (weight 0, still in the snapshot): its check says down.
        health.insert(
            key,
            Health {
                up: false,
                weight: None,
            },
        );
        n.checked(key, false, "connection refused");
        let mut r = rows(&cfg, "up");
        n.annotate(&cfg, &health, &mut r);
        let rs = &r[0].real_servers[0];
        assert_eq!(rs.state, "down");
        assert_eq!(rs.last_check.as_deref(), Some("down: connection refused"));
        assert!(rs.since >= since);

        // A reload reset it to up: the old reason is not shown beside it.
        health.insert(
            key,
            Health {
                up: true,
                weight: None,
            },
        );
        let mut r = rows(&cfg, "up");
        n.annotate(&cfg, &health, &mut r);
        assert_eq!(r[0].real_servers[0].last_check.as_deref(), Some("up"));
    }
}
