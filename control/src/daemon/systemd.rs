//! Telling systemd how the daemon is (`Type=notify`): READY=1 once the program is
//! attached and the workers run, STATUS= lines an admin reads in `systemctl status`,
//! RELOADING=1/READY=1 around a reload, STOPPING=1 at the end; and the watchdog
//! (`WatchdogSec=`): pinged from the control loop, so a stalled loop stops the pings, and
//! only while every worker's loop still turns (an idle worker turns every 100 ms), so a
//! stalled or dead worker stops them too and systemd restarts the director. Outside
//! systemd (no NOTIFY_SOCKET) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{error, info, warn};

/// The workers whose loop did not turn between two samples of their turn counters.
pub fn stalled(before: &[u64], now: &[u64]) -> Vec<usize> {
    before
        .iter()
        .zip(now)
        .enumerate()
        .filter(|(_, (b, n))| b == n)
        .map(|(q, _)| q)
        .collect()
}

pub struct Systemd {
    /// How often to ping (half the watchdog's timeout); None: no watchdog.
    ping_every: Option<Duration>,
    /// The workers' turn counters at the last ping.
    last_turns: Vec<u64>,
    /// The stall was said once; said again when it clears.
    stall_reported: bool,
}

impl Systemd {
    pub fn new() -> Systemd {
        let mut usec = 0;
        let ping_every = sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| Duration::from_micros(usec / 2).max(Duration::from_millis(100)));
        if let Some(p) = ping_every {
            info!("systemd watchdog: pinging every {p:?} while the control loop and every worker turn");
        }
        Systemd {
            ping_every,
            last_turns: Vec::new(),
            stall_reported: false,
        }
    }

    /// How often `ping` is due, if systemd watches.
    pub fn ping_every(&self) -> Option<Duration> {
        self.ping_every
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(false, states) {
            warn!("telling systemd ({states:?}): {e}");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub fn reloading(&self) {
        self.send(&[NotifyState::Reloading]);
    }

    pub fn reloaded(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// Pings the watchdog if every worker turned since the last ping (`turns`: each
    /// worker's counter now); otherwise says which did not, once, and leaves systemd to
    /// act.
    pub fn ping(&mut self, turns: Vec<u64>) {
        let stuck = if self.last_turns.len() == turns.len() {
            stalled(&self.last_turns, &turns)
        } else {
            Vec::new()
        };
        self.last_turns = turns;
        if stuck.is_empty() {
            if self.stall_reported {
                info!("every worker turns again: pinging the systemd watchdog again");
                self.stall_reported = false;
            }
            self.send(&[NotifyState::Watchdog]);
        } else if !self.stall_reported {
            error!(
                event = "worker_stalled",
                "worker(s) of queue(s) {stuck:?} stopped turning: no more watchdog pings, systemd will restart xvs"
            );
            self.stall_reported = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_did_not_turn_is_stalled() {
        assert!(stalled(&[1, 5], &[2, 9]).is_empty());
        assert_eq!(stalled(&[1, 5], &[2, 5]), vec![1]);
        assert_eq!(stalled(&[3, 5], &[3, 5]), vec![0, 1]);
    }

    #[test]
    fn without_systemd_nothing_is_sent_and_nothing_fails() {
        // No NOTIFY_SOCKET in a test run: every call is a no-op.
        let mut s = Systemd {
            ping_every: None,
            last_turns: vec![],
            stall_reported: false,
        };
        s.ready("test");
        s.ping(vec![1]);
        s.ping(vec![1]);
        assert!(s.stall_reported);
        s.ping(vec![2]);
        assert!(!s.stall_reported);
    }
}
