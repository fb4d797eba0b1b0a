//! Reload (SIGHUP, `xvs reload`, the file watch): parse and check the file again and, if
//! it is valid, make it the running one, all or nothing. First everything is worked out
//! without changing anything: the health each real server keeps (an unchanged check
//! keeps its state), the neighbours, the drains, then (`Lb::reconfigure`) a snapshot
//! whose real-server ids are the old ones (established flows and counters carry on) and
//! the steering maps' contents, checked against their sizes. Only then the snapshot is
//! published and the maps written (a failed write puts the old ones back), and last the
//! health monitors are started and stopped. Anything wrong: nothing changes, and the
//! reload's answer is the error.

use std::path::Path;

use anyhow::Result;
use tracing::{info, warn};
use xvs_config::Config;

use super::hostcheck;
use super::ifaces::Ifaces;
use super::lb::{quorums, Lb, Staged};
use super::limits;
use super::resolve::resolve_off_loop;
use crate::health::{self, health_targets, initial_health};

/// What a reload cannot change live, named for the log.
pub fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    restart_keys(old, new)
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name)
        .collect()
}

/// Every key a reload leaves for the next restart, and whether it changed (docs/design.md
/// lists them, checked by control/tests/design_doc.rs).
fn restart_keys(old: &Config, new: &Config) -> [(&'static str, bool); 18] {
    [
        ("xdp_mode", old.xdp_mode != new.xdp_mode),
        ("workers", old.workers != new.workers),
        (
            "flow_table_size",
            old.flow_table_size != new.flow_table_size,
        ),
        ("timeouts", old.timeouts != new.timeouts),
        (
            "expire_nodest_conn",
            old.expire_nodest_conn != new.expire_nodest_conn,
        ),
        ("tun_mtu", old.tun_mtu != new.tun_mtu),
        (
            "vrrp_instances and vrrp_sync_groups",
            old.vrrp_instances != new.vrrp_instances,
        ),
        (
            "vrrp_realtime_priority",
            old.vrrp_realtime_priority != new.vrrp_realtime_priority,
        ),
        ("metrics_listen", old.metrics_listen != new.metrics_listen),
        ("control_socket", old.control_socket != new.control_socket),
        ("watch_config", old.watch_config != new.watch_config),
        ("fast_path", old.fast_path != new.fast_path),
        (
            "fast_path_flows",
            old.fast_path_flows != new.fast_path_flows,
        ),
        ("cpus", old.cpus != new.cpus),
        ("af_xdp", old.af_xdp != new.af_xdp),
        ("script_user", old.script_user != new.script_user),
        (
            "connection_sync",
            old.connection_sync != new.connection_sync,
        ),
        (
            "enable_script_security",
            old.enable_script_security != new.enable_script_security,
        ),
    ]
}

/// Reads and checks the file off the event loop (file I/O and parsing).
async fn load(path: &Path) -> Result<Config> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || xvs_config::load(&p).map_err(|e| anyhow::anyhow!("{e}")))
        .await?
}

/// The reload itself; returns the new configuration, or why nothing changed.
pub async fn reload(
    path: &Path,
    old: &Config,
    ifaces: &Ifaces,
    lb: Option<&mut Lb>,
    monitors: &mut health::Monitors,
) -> Result<Config> {
    let mut new = load(path).await?;
    if new.interface.value != old.interface.value
        || new.internal_interface.as_ref().map(|i| &i.value)
            != old.internal_interface.as_ref().map(|i| &i.value)
    {
        anyhow::bail!(
            "{}: the interfaces cannot change while running; restart xvs",
            path.display()
        );
    }
    if old.virtual_servers.is_empty() != new.virtual_servers.is_empty() {
        anyhow::bail!(
            "{}: going from VRRP only to load balancing (or back) needs a restart",
            path.display()
        );
    }
    if old.announce.is_none() && new.announce.is_some() {
        anyhow::bail!(
            "{}: the first `announce` needs a restart (the device its routes point at is made at start); a changed table, gates or VIPs reload",
            path.display()
        );
    }
    let nat = |c: &Config| {
        c.virtual_servers.iter().any(|v| {
            matches!(
                v.forwarding,
                xvs_config::Forwarding::Nat | xvs_config::Forwarding::FullNat
            )
        })
    };
    if !nat(old) && nat(&new) {
        anyhow::bail!(
            "{}: the first NAT or FullNAT virtual server needs a restart (the steering program's maps of NAT and FullNAT connections are sized at start, and only with one)",
            path.display()
        );
    }
    let later = restart_only(old, &new);
    if !later.is_empty() {
        warn!(
            "reload: {} take effect at the next restart",
            later.join(", ")
        );
    }
    // Every snapshot reads it (which flows XDP may carry): the running one stays, and
    // the warnings speak of it.
    new.fast_path = old.fast_path;
    for w in hostcheck::warnings(&new, ifaces) {
        warn!("{w}");
    }
    limits::fit(&limits::Counts::of(&new))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if let Some(lb) = lb {
        let targets = health_targets(&new);
        let kept = monitors.kept(&targets);
        let mut health = lb.health.clone();
        health.retain(|k, _| kept.contains(k));
        for (k, h) in initial_health(&new) {
            health.entry(k).or_insert(h);
        }
        let mut drains = lb.drains.clone();
        let ended = drains.retain_configured(&new);
        let macs = resolve_off_loop(&new, ifaces, &lb.macs).await;
        lb.reconfigure(
            old,
            &new,
            ifaces,
            Staged {
                macs,
                health,
                drains,
            },
        )?;
        monitors.sync(targets);
        for d in ended {
            info!(
                "the drain of {} in {} ends: it left the configuration",
                crate::ids::endpoint(d.addr, d.port),
                d.virtual_server
            );
        }
        lb.quorum = quorums(&new, &lb.quorum);
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        xvs_config::parse("t.yaml", &format!("interface: lo\n{extra}")).unwrap()
    }

    #[test]
    fn names_what_waits_for_a_restart() {
        let old = cfg("");
        assert!(restart_only(&old, &cfg("")).is_empty());
        assert_eq!(
            restart_only(&old, &cfg("flow_table_size: 4096\nwatch_config: true\n")),
            ["flow_table_size", "watch_config"]
        );
    }
}
