//! What `xvs run` needs of the kernel's privileges for the configuration it was given,
//! checked before anything is touched: a missing capability is named, with the feature
//! that needs it, rather than surfacing as a bare EPERM half-way through bring-up. The
//! table is docs/privileges.md's; the systemd unit grants exactly this set.

use anyhow::{bail, Result};
use xvs_config::Config;

use crate::sys::caps::{self, Cap, Caps};

/// One capability a configuration needs, and for what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    pub cap: Cap,
    pub why: &'static str,
}

/// What `cfg` needs; `memlock_unlimited` stands in for CAP_IPC_LOCK (the UMEM's pages
/// are charged to RLIMIT_MEMLOCK unless the process holds it).
pub fn needs(cfg: &Config, memlock_unlimited: bool) -> Vec<Need> {
    let mut out = Vec::new();
    let mut need = |cap, why| out.push(Need { cap, why });
    if !cfg.virtual_servers.is_empty() {
        need(
            Cap::Bpf,
            "loading the steering program and creating its maps",
        );
        need(
            Cap::Perfmon,
            "the verifier's leave for packet pointers moved by a variable length (IP options), refused without it as a Spectre v1 mitigation",
        );
        need(Cap::NetAdmin, "attaching XDP to the interface");
        need(Cap::NetRaw, "opening the workers' AF_XDP sockets");
        if !memlock_unlimited {
            need(
                Cap::IpcLock,
                "pinning the AF_XDP UMEM (or run with an unlimited RLIMIT_MEMLOCK)",
            );
        }
    }
    if !cfg.vrrp_instances.is_empty() {
        need(
            Cap::NetRaw,
            "the VRRP socket (IP protocol 112) and gratuitous ARP (packet socket)",
        );
        need(Cap::NetAdmin, "adding and removing the VIPs (netlink)");
        if cfg.vrrp_realtime_priority.is_some() {
            need(
                Cap::SysNice,
                "the VRRP thread's real-time priority (or `vrrp_realtime_priority: 0`)",
            );
        }
    }
    if cfg.metrics_listen.is_some_and(|a| a.port() < 1024) {
        need(Cap::NetBindService, "serving /metrics on a port below 1024");
    }
    out
}

/// Those of `needs` that `have` lacks, one line each; empty when all are there.
pub fn missing(needs: &[Need], have: Caps) -> Vec<String> {
    needs
        .iter()
        .filter(|n| !have.allows(n.cap))
        .map(|n| format!("{} for {}", n.cap, n.why))
        .collect()
}

/// Fails, naming each missing capability, unless this process can run `cfg`.
/// `XVS_PRIVILEGE_CHECK=off` skips it, for a kernel that asks less than this table (the
/// kernel's own errors then say what is refused).
pub fn check(cfg: &Config) -> Result<()> {
    if std::env::var("XVS_PRIVILEGE_CHECK").is_ok_and(|v| v == "off") {
        return Ok(());
    }
    let have = match Caps::effective() {
        Ok(c) => c,
        // Without /proc the kernel's own errors will have to do.
        Err(_) => return Ok(()),
    };
    let unlimited = matches!(caps::memlock_limit(), Ok(None));
    let lacking = missing(&needs(cfg, unlimited), have);
    if lacking.is_empty() {
        return Ok(());
    }
    bail!(
        "this configuration needs capabilities xvs does not hold:\n  {}\nrun xvs as root, or grant them (the systemd unit's AmbientCapabilities; `setpriv --ambient-caps`): docs/privileges.md lists what each feature needs",
        lacking.join("\n  ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        xvs_config::parse("t.yaml", &format!("interface: lo\n{extra}")).unwrap()
    }

    const VS: &str = "virtual_servers:\n  - { name: web, address: 10.0.0.100, port: 80, protocol: tcp, real_servers: [{ address: 10.0.0.11 }] }\n";
    const VRRP: &str = "vrrp_instances:\n  - { name: vi, interface: lo, virtual_router_id: 1, priority: 100, virtual_ipaddresses: [10.0.0.100] }\n";

    fn caps(needs: &[Need]) -> Vec<Cap> {
        let mut c: Vec<Cap> = needs.iter().map(|n| n.cap).collect();
        c.sort();
        c.dedup();
        c
    }

    #[test]
    fn each_feature_names_what_it_needs() {
        let lb = needs(&cfg(VS), false);
        assert_eq!(
            caps(&lb),
            [
                Cap::NetAdmin,
                Cap::NetRaw,
                Cap::IpcLock,
                Cap::Perfmon,
                Cap::Bpf
            ]
        );
        assert!(!caps(&needs(&cfg(VS), true)).contains(&Cap::IpcLock));
        assert_eq!(
            caps(&needs(&cfg(VRRP), false)),
            [Cap::NetAdmin, Cap::NetRaw, Cap::SysNice]
        );
        assert_eq!(
            caps(&needs(
                &cfg(&format!("vrrp_realtime_priority: 0\n{VRRP}")),
                false
            )),
            [Cap::NetAdmin, Cap::NetRaw]
        );
        let low = needs(&cfg("metrics_listen: 0.0.0.0:80\n"), false);
        assert_eq!(caps(&low), [Cap::NetBindService]);
        assert!(needs(&cfg("metrics_listen: off\n"), false).is_empty());
    }

    #[test]
    fn what_is_missing_is_named() {
        let all = needs(&cfg(&format!("{VS}{VRRP}")), false);
        let full = Caps(Cap::NEEDED.iter().fold(0, |m, &c| m | 1 << c as u32));
        assert!(missing(&all, full).is_empty());
        let no_raw = Caps(full.0 & !(1 << Cap::NetRaw as u32));
        let m = missing(&all, no_raw);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m.iter().all(|l| l.starts_with("CAP_NET_RAW for ")), "{m:?}");
    }
}
