//! What each VRRP instance did: state, transitions, adverts sent, received and rejected
//! by reason. Written by the instance with relaxed atomics, read by `/metrics`, `xvs
//! status` and the exit summary from the control thread.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use super::machine::State;
use super::packet::Reject;

/// What an instance did, for logs now and metrics later.
#[derive(Default, Debug)]
pub struct VrrpStats {
    pub state: AtomicU8,
    pub transitions: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Preemptions held back for connection sync's resync.
    pub failback_waits: AtomicU64,
    pub rejected: [AtomicU64; Reject::ALL.len()],
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
            "vrrp {name}: {} transitions {} adverts sent {} received {} rejected {}",
            self.state().as_str(),
            self.transitions.load(Relaxed),
            self.sent.load(Relaxed),
            self.received.load(Relaxed),
            if rejected.is_empty() {
                "none".into()
            } else {
                rejected.join(", ")
            }
        )
    }

    /// Counts a rejected advert under its reason.
    pub(super) fn reject(&self, reason: Reject) {
        if let Some(n) = Reject::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.rejected.get(i))
        {
            n.fetch_add(1, Relaxed);
        }
    }
}
