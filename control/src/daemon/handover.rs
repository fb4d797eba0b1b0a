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
//! Between the old workers' stop and the new ones' start, packets of flows the workers
//! carry find no socket and are dropped by the steering program (never passed to a
//! kernel that would reset them): TCP retransmits them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tracing::info;

use crate::control_socket;
use crate::sys::instance::{self, InstanceLock};

/// How long the new process waits for the old one to let go of its locks.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What the running xvs handed over: the VRRP instances that were master.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handed {
    pub masters: Vec<String>,
}

/// The answer to `handover`: `handover` then `NAME=STATE` for each instance.
pub fn reply(roles: impl Iterator<Item = (String, &'static str)>) -> String {
    let mut s = String::from("handover");
    for (name, state) in roles {
        s += &format!(" {name}={state}");
    }
    s + "\n"
}

fn parse(text: &str) -> Result<Handed> {
    let mut words = text.split_whitespace();
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
    Ok(Handed { masters })
}

/// Asks the xvs serving `socket` to hand over. `None`: no xvs answers there (a plain
/// start follows).
pub fn ask(socket: &Path) -> Result<Option<Handed>> {
    if !socket.exists() {
        info!(
            "--takeover: no xvs answers at {}: starting afresh",
            socket.display()
        );
        return Ok(None);
    }
    match control_socket::request(&PathBuf::from(socket), "handover") {
        Ok((true, text)) => {
            let handed = parse(&text)?;
            info!(
                "--takeover: the running xvs hands over (VRRP masters: {:?})",
                handed.masters
            );
            Ok(Some(handed))
        }
        Ok((false, text)) => bail!("the running xvs refused to hand over: {}", text.trim()),
        Err(e) => {
            info!("--takeover: {e:#}: starting afresh");
            Ok(None)
        }
    }
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
    fn the_masters_are_read_from_the_reply() {
        let r = reply(
            [
                ("VI_1".to_string(), "MASTER"),
                ("VI_2".to_string(), "BACKUP"),
            ]
            .into_iter(),
        );
        assert_eq!(r, "handover VI_1=MASTER VI_2=BACKUP\n");
        assert_eq!(parse(&r).unwrap().masters, vec!["VI_1".to_string()]);
        assert_eq!(parse("handover\n").unwrap(), Handed::default());
        assert!(parse("unknown command").is_err());
    }
}
