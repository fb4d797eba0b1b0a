//! What the configuration asks to check: every checked real server with where its
//! probes go, and the health each starts with.

use xvs_config::Config;

use super::task::Target;
use super::{Health, HealthMap};
use crate::ids::DestKey;

/// Every checked real server, with where its probes go (connect_ip/connect_port, else
/// the real server's address and port, else the service's port).
pub fn health_targets(cfg: &Config) -> Vec<Target> {
    let mut out = Vec::new();
    for vs in &cfg.virtual_servers {
        for rs in &vs.real_servers {
            let Some(hc) = &rs.health_check else { continue };
            let port = hc
                .connect_port
                .unwrap_or(if rs.port == 0 { vs.port() } else { rs.port });
            let ip = hc.connect_ip.unwrap_or(rs.address);
            out.push(Target {
                key: DestKey::of(vs, rs),
                label: format!(
                    "{} of {}",
                    crate::ids::endpoint(rs.address, rs.port),
                    vs.name
                ),
                addr: std::net::SocketAddr::new(ip, port),
                check: hc.clone(),
                notify_up: rs.notify_up.clone(),
                notify_down: rs.notify_down.clone(),
            });
        }
    }
    out
}

/// The health of checked real servers when their monitor starts: up, or down with
/// `alpha` (keepalived's meaning).
pub fn initial_health(cfg: &Config) -> HealthMap {
    cfg.virtual_servers
        .iter()
        .flat_map(|vs| vs.real_servers.iter().map(move |rs| (vs, rs)))
        .filter_map(|(vs, rs)| {
            let hc = rs.health_check.as_ref()?;
            Some((
                DestKey::of(vs, rs),
                Health {
                    up: !hc.alpha,
                    weight: None,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_go_where_the_check_says() {
        let cfg = xvs_config::parse(
            "t.yaml",
            "interface: lo\nvirtual_servers:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    protocol: tcp\n    forwarding: nat\n    real_servers:\n      - { address: 10.0.0.11, health_check: { type: tcp } }\n      - { address: 10.0.0.12, port: 8080, health_check: { type: tcp, alpha: true } }\n      - { address: 10.0.0.13, health_check: { type: tcp, connect_ip: 10.0.0.99, connect_port: 9000 } }\n      - { address: 10.0.0.14 }\n",
        )
        .unwrap();
        let t: Vec<String> = health_targets(&cfg)
            .iter()
            .map(|t| t.addr.to_string())
            .collect();
        assert_eq!(t, ["10.0.0.11:80", "10.0.0.12:8080", "10.0.0.99:9000"]);
        let h = initial_health(&cfg);
        assert_eq!(h.len(), 3, "the unchecked server has no entry");
        assert_eq!(h.values().filter(|h| !h.up).count(), 1, "alpha starts down");
    }
}
