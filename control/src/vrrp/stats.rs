//! What each VRRP instance did: state, transitions, adverts sent, received and rejected
//! by reason. Written by the instance with relaxed atomics, read by `/metrics`, `xvs
//! status` and the exit summary from the control thread.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::Duration;

use super::advert::Reject;
use super::machine::State;

/// What an instance did, for logs now and metrics later.
#[derive(Default, Debug)]
pub struct VrrpStats {
    pub state: AtomicU8,
    /// The priority advertised now (0 until the instance started).
    pub priority: AtomicU8,
    pub transitions: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Preemptions held back for connection sync's resync.
    pub failback_waits: AtomicU64,
    /// The longest a master's advert went out after it was due, in microseconds: how
    /// close this host came to a false failover (a backup waits 3 intervals + skew).
    pub advert_delay_max_us: AtomicU64,
    /// A master's adverts that went out one advert interval or more after they were due.
    pub adverts_late: AtomicU64,
    pub rejected: [AtomicU64; Reject::COUNT],
}

impl VrrpStats {
    pub fn state(&self) -> State {
        match self.state.load(Relaxed) {
            1 => State::Backup,
            2 => State::Master,
            3 => State::Fault,
            _ => State::Init,
        }
    }

    pub(super) fn set_state(&self, s: State) {
        let v = match s {
            State::Init => 0,
            State::Backup => 1,
            State::Master => 2,
            State::Fault => 3,
        };
        self.state.store(v, Relaxed);
    }

    pub fn summary(&self, name: &str) -> String {
        let rejected: Vec<String> = Reject::ALL
            .iter()
            .zip(&self.rejected)
            .filter(|(_, n)| n.load(Relaxed) > 0)
            .map(|(r, n)| format!("{} {}", r.label(), n.load(Relaxed)))
            .collect();
        format!(
            "vrrp {name}: {} transitions {} adverts sent {} (late {}, worst {:.1} ms after due) received {} rejected {}",
            self.state().as_str(),
            self.transitions.load(Relaxed),
            self.sent.load(Relaxed),
            self.adverts_late.load(Relaxed),
            self.advert_delay_max_us.load(Relaxed) as f64 / 1000.0,
            self.received.load(Relaxed),
            if rejected.is_empty() {
                "none".into()
            } else {
                rejected.join(", ")
            }
        )
    }

    /// A master's advert went out `delay` after it was due; `interval` is the advert
    /// interval.
    pub(super) fn advert_delayed(&self, delay: Duration, interval: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.advert_delay_max_us.fetch_max(us, Relaxed);
        if delay >= interval {
            self.adverts_late.fetch_add(1, Relaxed);
        }
    }

    /// Counts a rejected advert under its reason.
    pub(super) fn reject(&self, reason: Reject) {
        self.rejected[reason.index()].fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_adverts_are_those_an_interval_or_more_after_due() {
        let s = VrrpStats::default();
        let i = Duration::from_millis(10);
        s.advert_delayed(Duration::from_micros(300), i);
        s.advert_delayed(Duration::from_millis(10), i);
        s.advert_delayed(Duration::from_millis(4), i);
        assert_eq!(s.adverts_late.load(Relaxed), 1);
        assert_eq!(s.advert_delay_max_us.load(Relaxed), 10_000);
        assert!(
            s.summary("VI_1")
                .contains("(late 1, worst 10.0 ms after due)"),
            "{}",
            s.summary("VI_1")
        );
    }
}
