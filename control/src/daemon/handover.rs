//! A planned handover (`xvs run --takeover`): a new xvs takes the running one's place
//! without a kill. The new process asks the running one, over its control socket, to
//! hand over (`handover`); the running one answers with each VRRP instance's role, stops
//! its workers (their flow-state files then hold every connection, still), and exits at
//! once: no detach, no VRRP goodbye, its VIPs left on the interface, its steering
//! program attached (fast-path flows go on being forwarded in XDP). The new process
//! waits for its instance locks, starts the instances that were master as master (their
//! first advert at once, so no backup takes over), then starts as after a `kill -9`:
//! the steering program's maps taken over and the flow tables recovered.
//!
//! Under systemd the unit's ExecStop asks instead (`xvs handover --if-restarting`, only
//! while the unit's job is a restart); the old process records its reply beside its
//! state (`record`), and the next start, systemd's, resumes from it (`take`).
//!
//! Between the old workers' stop and the new ones' start, packets of flows the workers
//! carry find no socket and are dropped by the steering program (never passed to a
//! kernel that would reset them): TCP retransmits them.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tracing::info;

use super::left_vips::LeftVip;
use crate::control_socket;
use crate::sys::instance::{self, InstanceLock};

/// The exit status of a process that handed over: the unit counts it a success and,
/// when no stop or restart of the unit is under way (an admin's `xvs run --takeover`
/// beside the unit), restarts it (`SuccessExitStatus=`, `RestartForceExitStatus=`),
/// which then resumes from the record.
pub const HANDED_OVER: i32 = 75;

/// How long the new process waits for the old one to let go of its locks.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// A handover file older than this is not the last process's handover (seconds).
const RECORD_FRESH: Duration = Duration::from_secs(60);
/// The largest record read: the roles' line and a VIP line (at most 60 bytes) for each
/// of a thousand VIPs.
const RECORD_MAX: usize = 64 << 10;

/// What the running xvs handed over: the VRRP instances that were master, and the
/// VIPs it left on its interfaces for them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handed {
    pub masters: Vec<String>,
    pub vips: Vec<LeftVip>,
    /// Where its VIP routes are (`announce TABLE IFINDEX [drained]`): table, device,
    /// and whether the director was drained (`xvs drain --director`).
    pub routes: Option<(u32, u32, bool)>,
}

/// What the new process sends when it takes the VIP routes over (`announce::adopt`):
/// the old one then waits for that before it exits.
pub const ASK_ADOPTING: &str = "handover --adopt-routes";

/// The answer to `handover`: `handover` then `NAME=STATE` for each instance, then a
/// `vip IFACE ADDR/LEN` line for each VIP left on an interface (`left_vips`), then
/// `announce TABLE IFINDEX [drained]` where its VIP routes are, if it announces.
pub fn reply(
    roles: impl Iterator<Item = (String, &'static str)>,
    vips: &[LeftVip],
    routes: Option<(u32, u32, bool)>,
) -> String {
    let mut s = String::from("handover");
    for (name, state) in roles {
        s += &format!(" {name}={state}");
    }
    s += "\n";
    for v in vips {
        s += &v.line();
    }
    if let Some((table, oif, drained)) = routes {
        let d = if drained { " drained" } else { "" };
        s += &format!("announce {table} {oif}{d}\n");
    }
    s
}

/// An `announce TABLE IFINDEX [drained]` line; never one of the host's own tables
/// (main, local, default, unspec).
fn routes_line(line: &str) -> Option<(u32, u32, bool)> {
    let mut w = line.strip_prefix("announce ")?.split_whitespace();
    let (table, oif): (u32, u32) = (w.next()?.parse().ok()?, w.next()?.parse().ok()?);
    let drained = match w.next() {
        None => false,
        Some("drained") => true,
        Some(_) => return None,
    };
    let host_table = matches!(table, 0 | 253..=255);
    (w.next().is_none() && !host_table).then_some((table, oif, drained))
}

/// An answer (or a record: the answer and an `at_ms=` line). An answer from a version
/// that names no VIPs has none.
fn parse(text: &str) -> Result<Handed> {
    let first = text.lines().next().unwrap_or("");
    let mut words = first.split_whitespace();
    if words.next() != Some("handover") {
        bail!(
            "the running xvs did not agree to hand over: {}",
            text.trim()
        );
    }
    let masters = words
        .filter_map(|w| w.split_once('='))
        .filter(|(_, state)| *state == "MASTER")
        .map(|(name, _)| name.to_string())
        .collect();
    let vips = text.lines().skip(1).filter_map(LeftVip::parse).collect();
    let routes = text.lines().skip(1).find_map(routes_line);
    Ok(Handed {
        masters,
        vips,
        routes,
    })
}

/// Asks the xvs serving `socket` to hand over. `None`: no xvs answers there (a plain
/// start follows).
pub fn ask(socket: &Path, adopting: bool) -> Result<Option<Handed>> {
    if !socket.exists() {
        info!(
            "--takeover: no xvs answers at {}: starting afresh",
            socket.display()
        );
        return Ok(None);
    }
    let line = if adopting { ASK_ADOPTING } else { "handover" };
    match control_socket::request(&PathBuf::from(socket), line) {
        Ok((true, text)) => {
            let handed = parse(&text)?;
            info!(
                "--takeover: the running xvs hands over (VRRP masters: {:?})",
                handed.masters
            );
            Ok(Some(handed))
        }
        // An xvs from before `announce` knows the plain request only.
        Ok((false, text)) if adopting && text.starts_with("unknown command") => {
            info!("--takeover: the running xvs is older: asking for a plain handover");
            ask(socket, false)
        }
        Ok((false, text)) => bail!("the running xvs refused to hand over: {}", text.trim()),
        Err(e) => {
            info!("--takeover: {e:#}: starting afresh");
            Ok(None)
        }
    }
}

/// Writes what this process hands over (its reply) beside its state, for a next
/// process that did not ask itself (`systemctl restart`: the unit's ExecStop asked).
pub fn record(path: &Path, reply: &str) {
    let text = format!("{reply}at_ms={}\n", unix_ms());
    if text.len() > RECORD_MAX {
        tracing::warn!(
            "the handover record would be {} bytes, past {RECORD_MAX}: the next xvs will not resume VRRP masters",
            text.len()
        );
    }
    if let Err(e) = super::flow_state::replace(path, &text) {
        tracing::warn!(
            "writing {}: {e}; the next xvs will not resume VRRP masters",
            path.display()
        );
    }
}

/// Milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the last process handed over and how long ago, if lately (the record is
/// removed either way).
pub fn take(path: &Path) -> Option<(Handed, Duration)> {
    let text = read_small(path)?;
    let _ = std::fs::remove_file(path);
    let at: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("at_ms="))
        .and_then(|a| a.trim().parse().ok())?;
    let age = Duration::from_millis(unix_ms().saturating_sub(at));
    if age > RECORD_FRESH {
        info!("{} is {age:?} old: not resumed", path.display());
        return None;
    }
    let handed = parse(&text).ok()?;
    info!(
        "the last xvs handed over {age:?} ago (VRRP masters: {:?})",
        handed.masters
    );
    Some((handed, age))
}

/// The masters that may resume after a handover `age` ago: those whose backups cannot
/// have taken over yet (younger than the instance's Master_Down_Interval, 3 × advert_int
/// + skew). The others start as backup, as after any start: a peer may be master now.
pub fn resumable(cfg: &xvs_config::Config, masters: Vec<String>, age: Duration) -> Vec<String> {
    masters
        .into_iter()
        .filter(|name| {
            let Some(vi) = cfg.vrrp_instances.iter().find(|v| &v.name == name) else {
                return false;
            };
            let int_ms = u64::from(vi.advert_int_cs) * 10;
            let down = Duration::from_millis(3 * int_ms + (256 - u64::from(vi.priority)) * int_ms / 256);
            let ok = age < down;
            if !ok {
                info!("VRRP {name}: handed over {age:?} ago, past its Master_Down_Interval ({down:?}): a backup may be master now, so it starts as backup");
            }
            ok
        })
        .collect()
}

/// A start after a handover failed: the VIPs the last process left are given up, so a
/// VRRP backup's takeover is not answered here too (the steering program left attached
/// keeps dropping what still arrives, until a start succeeds).
pub fn abandon(cfg: &xvs_config::Config) {
    for vi in &cfg.vrrp_instances {
        let Ok(Some(iface)) = crate::sys::iface::Iface::lookup(&vi.interface.value) else {
            continue;
        };
        for &(vip, len) in &vi.virtual_ipaddresses {
            let _ = crate::sys::netlink::del_address(iface.ifindex, vip, len);
        }
    }
    tracing::error!("the start after a handover failed: the VIPs it left are given up, so a VRRP backup can serve");
}

/// A regular file of at most `RECORD_MAX` bytes, read without following a link.
fn read_small(path: &Path) -> Option<String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || m.len() > RECORD_MAX as u64 {
        tracing::warn!(
            "{} is not a handover record (not a regular file of at most {RECORD_MAX} bytes): nothing is resumed from it",
            path.display()
        );
        return None;
    }
    std::io::read_to_string(f).ok()
}

/// Whether systemd is restarting `unit` now: its job in `systemctl list-jobs` is a
/// restart (a stop is `stop`). Anything unreadable counts as no.
pub fn systemd_restarting(unit: &str) -> bool {
    let Ok(out) = std::process::Command::new("systemctl")
        .args(["list-jobs", "--no-legend", "--no-pager", "--full"])
        .output()
    else {
        return false;
    };
    restart_job(&String::from_utf8_lossy(&out.stdout), unit)
}

fn restart_job(jobs: &str, unit: &str) -> bool {
    jobs.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&unit) && matches!(f.get(2), Some(&"restart") | Some(&"try-restart"))
    })
}

/// Waits until nothing answers at the control socket `path` any more (the process that
/// handed over has exited).
pub fn wait_gone(path: &Path) -> Result<(), String> {
    let t0 = Instant::now();
    while std::os::unix::net::UnixStream::connect(path).is_ok() {
        if t0.elapsed() > LOCK_WAIT {
            return Err(format!(
                "xvs: it still answers at {} after {LOCK_WAIT:?}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The instance locks, once the process that handed over has let go of them.
pub fn wait_for_locks(wanted: &[(PathBuf, String)]) -> Result<InstanceLock> {
    let t0 = Instant::now();
    loop {
        match instance::acquire(wanted) {
            Ok(lock) => {
                info!("--takeover: the old xvs is gone after {:?}", t0.elapsed());
                return Ok(lock);
            }
            Err(e) if t0.elapsed() >= LOCK_WAIT => {
                bail!("the xvs that agreed to hand over still runs after {LOCK_WAIT:?}: {e:#}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_job_is_told_from_a_stop() {
        let jobs = "1042 xvs.service restart running\n1043 other.service start waiting\n";
        assert!(restart_job(jobs, "xvs.service"));
        assert!(!restart_job(
            "1042 xvs.service stop running\n",
            "xvs.service"
        ));
        assert!(!restart_job(jobs, "xvs2.service"));
        assert!(!restart_job("", "xvs.service"));
    }

    #[test]
    fn a_recorded_handover_is_taken_once_and_only_fresh() {
        let dir = std::env::temp_dir().join(format!("xvs-handover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("if2.handover");
        record(
            &path,
            "handover VI_1=MASTER VI_2=BACKUP\nvip eth0 10.0.0.100/32\n",
        );
        let (handed, age) = take(&path).unwrap();
        assert_eq!(handed.masters, vec!["VI_1".to_string()]);
        assert_eq!(handed.vips.len(), 1, "the VIPs are in the record");
        assert!(age < Duration::from_secs(5));
        assert_eq!(take(&path), None, "taken once");
        std::fs::write(&path, "handover VI_1=MASTER\nat_ms=1\n").unwrap();
        assert_eq!(take(&path), None, "too old");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_master_resumes_only_within_its_backups_master_down_interval() {
        let cfg = xvs_config::parse(
            "t",
            "interface: eth0\nvrrp_instances:\n  - { name: fast, interface: eth0, virtual_router_id: 1, priority: 100, version: 3, advert_int: 0.1, virtual_ipaddresses: [10.0.0.100] }\n  - { name: slow, interface: eth0, virtual_router_id: 2, priority: 100, advert_int: 1, virtual_ipaddresses: [10.0.0.101] }\n",
        )
        .unwrap();
        let both = || vec!["fast".to_string(), "slow".to_string()];
        assert_eq!(resumable(&cfg, both(), Duration::from_millis(100)), both());
        // 3 × 0.1 s + skew (0.04 s) has passed for `fast`, not 3 × 1 s + 0.4 s for `slow`.
        assert_eq!(
            resumable(&cfg, both(), Duration::from_millis(500)),
            vec!["slow".to_string()]
        );
        assert!(resumable(&cfg, vec!["gone".into()], Duration::ZERO).is_empty());
    }

    #[test]
    fn the_masters_are_read_from_the_reply() {
        let vip = LeftVip {
            iface: "eth0".into(),
            addr: "10.0.0.100".parse().unwrap(),
            len: 32,
        };
        let r = reply(
            [
                ("VI_1".to_string(), "MASTER"),
                ("VI_2".to_string(), "BACKUP"),
            ]
            .into_iter(),
            std::slice::from_ref(&vip),
            Some((100, 42, true)),
        );
        assert_eq!(
            r,
            "handover VI_1=MASTER VI_2=BACKUP\nvip eth0 10.0.0.100/32\nannounce 100 42 drained\n"
        );
        let handed = parse(&r).unwrap();
        assert_eq!(handed.masters, vec!["VI_1".to_string()]);
        assert_eq!(handed.vips, vec![vip]);
        assert_eq!(handed.routes, Some((100, 42, true)));
        assert_eq!(routes_line("announce 7 3"), Some((7, 3, false)));
        for bad in [
            "announce 100",
            "announce x 1",
            "announce 1 2 3",
            "announce -1 2",
            "announce 254 2",
            "announce 255 2",
            "announce 100 2 drained x",
        ] {
            assert_eq!(routes_line(bad), None, "{bad}");
        }
        // An older xvs's answer: no VIPs.
        assert_eq!(parse("handover VI_1=MASTER\n").unwrap().vips, vec![]);
        assert_eq!(parse("handover\n").unwrap(), Handed::default());
        assert!(parse("unknown command").is_err());
    }
}
