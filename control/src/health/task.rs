//! One tokio task per checked real server: it probes when `policy.rs` says, and reports
//! only transitions, with their reason (and runs notify_up/notify_down). No probe can
//! hold up another: each is its own task, bounded by its timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use xvs_config::{CheckKind, HealthCheck};

use super::check::{Outcome, Probe};
use super::policy::Policy;
use super::stats::CheckStats;
use crate::ids::DestKey;

/// A real server changed health.
#[derive(Clone, Debug)]
pub struct Event {
    pub key: DestKey,
    pub label: String,
    pub up: bool,
    /// MISC dynamic weight, when the script gave one.
    pub weight: Option<u32>,
    pub reason: String,
}

pub struct Target {
    pub key: DestKey,
    /// "rs2:80 of web", for logs.
    pub label: String,
    pub addr: SocketAddr,
    pub check: HealthCheck,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
}

fn probe(kind: &CheckKind) -> Probe {
    match kind {
        CheckKind::Tcp => Probe::Tcp,
        CheckKind::Http {
            path,
            status_codes,
            digest,
            virtualhost,
            tls,
        } => Probe::Http {
            path: path.clone(),
            status_codes: status_codes.clone(),
            digest: digest.clone(),
            virtualhost: virtualhost.clone(),
            tls: tls.map(|t| super::check::Tls { verify: t.verify }),
        },
        CheckKind::Misc { script, dynamic } => Probe::Misc {
            script: script.clone(),
            dynamic: *dynamic,
        },
        CheckKind::Udp { payload } => Probe::Udp {
            payload: payload.clone(),
        },
    }
}

/// A pseudo-random delay in `0..max`, from the clock: warmup only spreads start-up.
fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_nanos(u64::from(nanos) % max.as_nanos().max(1) as u64)
}

/// Checks `t` until `stop`; reports each transition on `tx`. The policy decides; this
/// task only probes, sleeps, and carries out what it says.
pub async fn run(
    t: Target,
    stats: Arc<CheckStats>,
    tx: mpsc::Sender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    let c = &t.check;
    let probe = probe(&c.kind);
    let timeout = Duration::from_millis(c.timeout_ms);
    let source = c.bindto;
    let mut policy = Policy::new(c);
    tokio::select! {
        _ = tokio::time::sleep(jitter(Duration::from_millis(c.warmup_ms))) => {}
        _ = stop.changed() => return,
    }
    loop {
        let started = Instant::now();
        let outcome = probe.run(t.addr, source, timeout).await;
        stats.observe(started.elapsed(), matches!(outcome, Outcome::Up { .. }));
        let step = policy.on_outcome(Instant::now(), &outcome);
        if let Some(tr) = step.transition {
            stats.transition();
            let script = if tr.up { &t.notify_up } else { &t.notify_down };
            if let Some(s) = script {
                crate::notify::spawn(t.label.clone(), s.clone(), Vec::new());
            }
            let ev = Event {
                key: t.key,
                label: t.label.clone(),
                up: tr.up,
                weight: tr.weight,
                reason: tr.reason,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(step.next.into()) => {}
            _ = stop.changed() => return,
        }
    }
}
