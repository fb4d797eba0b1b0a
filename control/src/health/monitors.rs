//! The running monitors, one per checked real server, and how a reload migrates them.

use std::collections::HashMap;
use std::sync::Arc;

use super::{stats, task};
use crate::ids::DestKey;

/// A running monitor: its check, its stop switch, its statistics.
type Running = (
    xvs_config::HealthCheck,
    tokio::sync::watch::Sender<bool>,
    Arc<stats::CheckStats>,
);

/// The running monitors, by real server. A reload keeps a monitor whose check did not
/// change (and with it the real server's health, as keepalived's migrate does), stops
/// the ones that went away or changed, and starts the new ones.
pub struct Monitors {
    running: HashMap<DestKey, Running>,
    tx: tokio::sync::mpsc::Sender<task::Event>,
}

impl Monitors {
    pub fn new(tx: tokio::sync::mpsc::Sender<task::Event>) -> Self {
        Monitors {
            running: HashMap::new(),
            tx,
        }
    }

    /// The keys whose monitor (and health) `sync(targets)` would carry over: those
    /// running with the same check. Changes nothing (a reload plans with it).
    pub fn kept(&self, targets: &[task::Target]) -> Vec<DestKey> {
        targets
            .iter()
            .filter(|t| {
                self.running
                    .get(&t.key)
                    .is_some_and(|(c, _, _)| *c == t.check)
            })
            .map(|t| t.key)
            .collect()
    }

    /// Makes the running monitors match `targets`; returns the keys whose monitor (and
    /// health) carried over.
    pub fn sync(&mut self, targets: Vec<task::Target>) -> Vec<DestKey> {
        let wanted: HashMap<DestKey, &xvs_config::HealthCheck> =
            targets.iter().map(|t| (t.key, &t.check)).collect();
        self.running.retain(|k, (check, stop, _)| {
            let keep = wanted.get(k).is_some_and(|c| *c == check);
            if !keep {
                let _ = stop.send(true);
            }
            keep
        });
        let kept: Vec<DestKey> = self.running.keys().copied().collect();
        for t in targets {
            if self.running.contains_key(&t.key) {
                continue;
            }
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let stats = Arc::new(stats::CheckStats::default());
            self.running
                .insert(t.key, (t.check.clone(), stop, Arc::clone(&stats)));
            tokio::spawn(task::run(t, stats, self.tx.clone(), stopped));
        }
        kept
    }

    /// The check statistics of `key`'s monitor, if it has one.
    pub fn stats(&self, key: &DestKey) -> Option<&stats::CheckStats> {
        self.running.get(key).map(|(_, _, s)| &**s)
    }

    pub fn stop_all(&mut self) {
        for (_, (_, stop, _)) in self.running.drain() {
            let _ = stop.send(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(yaml_checks: [&str; 2]) -> Vec<task::Target> {
        let yaml = format!(
            "interface: lo\nvirtual_servers:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    protocol: tcp\n    real_servers:\n      - {{ address: 10.0.0.11, health_check: {} }}\n      - {{ address: 10.0.0.12, health_check: {} }}\n",
            yaml_checks[0], yaml_checks[1]
        );
        let cfg = xvs_config::parse("t.yaml", &yaml).unwrap();
        crate::health::health_targets(&cfg)
    }

    /// keepalived's migrate: an unchanged check keeps its monitor (its task, statistics
    /// and so the real server's health); a changed one starts afresh.
    #[tokio::test]
    async fn a_reload_keeps_unchanged_monitors() {
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let mut m = Monitors::new(tx);
        let slow = "{ type: tcp, delay_loop: 3600 }";
        let first = targets([slow, slow]);
        let (a, b) = (first[0].key, first[1].key);
        assert!(m.sync(first).is_empty(), "nothing to keep at start");
        let a_stats = Arc::clone(&m.running[&a].2);
        let b_stats = Arc::clone(&m.running[&b].2);
        let kept = m.sync(targets([slow, "{ type: tcp, delay_loop: 1800 }"]));
        assert_eq!(kept, vec![a]);
        assert!(
            Arc::ptr_eq(&m.running[&a].2, &a_stats),
            "a's monitor carried over"
        );
        assert!(
            !Arc::ptr_eq(&m.running[&b].2, &b_stats),
            "b's check changed: restarted"
        );
        m.stop_all();
        assert!(m.running.is_empty());
    }
}
