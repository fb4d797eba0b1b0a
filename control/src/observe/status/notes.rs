//! What `xvs status` and the status page say of a real server beyond the moment's
//! counts: since when it has been in its state (as this process saw it change), and its
//! health check's last verdict. Kept by the control loop: a check's verdict as it comes,
//! the states at each rate sample and each status.

use std::collections::HashMap;

use xvs_config::Config;

use super::rows::VirtualServerRow;
use crate::calendar::unix_now;
use crate::ids::{service_key, DestKey};

#[derive(Default)]
pub struct Notes {
    /// Each real server's state word and when it was first seen in it.
    states: HashMap<DestKey, (&'static str, u64)>,
    /// Each checked real server's last verdict.
    checks: HashMap<DestKey, String>,
}

impl Notes {
    /// A health check's verdict on `key` (`up`), and its reason.
    pub fn checked(&mut self, key: DestKey, up: bool, reason: &str) {
        let verdict = if up { "up" } else { "down" };
        self.checks.insert(key, format!("{verdict}: {reason}"));
    }

    /// Notes each real server's state in `rows` (of `cfg`, in its order) and fills in
    /// since when and the last verdict. Real servers no longer configured are forgotten.
    pub fn annotate(&mut self, cfg: &Config, rows: &mut [VirtualServerRow]) {
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
                let since = match self.states.get(&key) {
                    Some((state, since)) if *state == rs.state => *since,
                    _ => now,
                };
                seen.insert(key, (rs.state, since));
                rs.since = Some(since);
                rs.last_check = self.checks.get(&key).cloned();
            }
        }
        self.checks.retain(|k, _| seen.contains_key(k));
        self.states = seen;
    }
}
