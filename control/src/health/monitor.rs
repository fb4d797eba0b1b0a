//! One tokio task per checked real server: a probe every `delay_loop`, `retry` more
//! attempts `delay_before_retry` apart before it is declared down, and only transitions
//! reported, with their reason. No probe can hold up another: each is its own task,
//! bounded by its timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use xvs_config::{CheckKind, HealthCheck};

use super::check::{Outcome, Probe};
use super::stats::CheckStats;
use crate::publish::DestKey;

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

/// Checks `t` until `stop`; reports each transition on `tx`. Starts up (down with
/// `alpha`), as keepalived does.
pub async fn run(
    t: Target,
    stats: Arc<CheckStats>,
    tx: mpsc::Sender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    let c = &t.check;
    let probe = probe(&c.kind);
    let timeout = Duration::from_millis(c.timeout_ms);
    let source = c.bindto.map(IpAddr::V4);
    let mut up = !c.alpha;
    let mut weight = None;
    tokio::select! {
        _ = tokio::time::sleep(jitter(Duration::from_millis(c.warmup_ms))) => {}
        _ = stop.changed() => return,
    }
    loop {
        let timed = || async {
            let started = Instant::now();
            let outcome = probe.run(t.addr, source, timeout).await;
            stats.observe(started.elapsed(), matches!(outcome, Outcome::Up { .. }));
            outcome
        };
        let mut outcome = timed().await;
        let mut tries = 0;
        while matches!(outcome, Outcome::Down(_)) && tries < c.retry {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(c.delay_before_retry_ms)) => {}
                _ = stop.changed() => return,
            }
            outcome = timed().await;
            tries += 1;
        }
        let event = match outcome {
            Outcome::Up { weight: w } if !up || w != weight => {
                up = true;
                weight = w;
                if let Some(s) = &t.notify_up {
                    crate::notify::spawn(t.label.clone(), s.clone());
                }
                Some((true, "check succeeded".to_string()))
            }
            Outcome::Down(reason) if up => {
                up = false;
                if let Some(s) = &t.notify_down {
                    crate::notify::spawn(t.label.clone(), s.clone());
                }
                let attempts = if c.retry > 0 {
                    format!(" after {} retries", c.retry)
                } else {
                    String::new()
                };
                Some((false, format!("{reason}{attempts}")))
            }
            _ => None,
        };
        if let Some((up, reason)) = event {
            stats.transition();
            let ev = Event {
                key: t.key,
                label: t.label.clone(),
                up,
                weight,
                reason,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(c.delay_loop_ms)) => {}
            _ = stop.changed() => return,
        }
    }
}
