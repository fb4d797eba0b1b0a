//! E-mail alerts (`email_alerts`, keepalived's `notification_email`): a message on each
//! VRRP transition and each real server leaving the pool or coming back. Whoever sees the
//! event (the VRRP thread, the control loop) queues it without waiting (`try_send`,
//! bounded: a full queue is counted and the alert dropped); one task sends them in turn,
//! each step bounded by `connect_timeout`, so a dead or slow SMTP server delays nothing
//! but the next alert. A failed send is logged and counted, not retried, as keepalived.
//!
//! - `message.rs`: the subjects and bodies, and the message text (no I/O)
//! - `smtp.rs`: the SMTP dialogue

pub mod message;
pub mod smtp;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use xvs_config::EmailAlerts;

pub use message::Event;

/// Alerts waiting to be sent; more are dropped (and counted).
const QUEUE: usize = 64;

/// What happened to the alerts since start (`xvs_email_alerts_total`).
#[derive(Debug, Default)]
pub struct AlertStats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

struct Alerts {
    tx: mpsc::Sender<Event>,
    cfg: watch::Sender<Option<Arc<EmailAlerts>>>,
}

static ALERTS: OnceLock<Alerts> = OnceLock::new();
static STATS: AlertStats = AlertStats {
    sent: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
};

pub fn stats() -> &'static AlertStats {
    &STATS
}

/// Starts the sending task on the current runtime (once), with `cfg`.
pub fn start(cfg: Option<&EmailAlerts>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (ctx, crx) = watch::channel(cfg.cloned().map(Arc::new));
    if ALERTS.set(Alerts { tx, cfg: ctx }).is_ok() {
        tokio::spawn(sender(rx, crx));
    } else {
        configure(cfg);
    }
}

/// A reload's settings, for the alerts from now on.
pub fn configure(cfg: Option<&EmailAlerts>) {
    if let Some(a) = ALERTS.get() {
        a.cfg.send_replace(cfg.cloned().map(Arc::new));
    }
}

/// Queues an alert if the configuration asks for its kind; never waits.
pub fn raise(ev: Event) {
    let Some(a) = ALERTS.get() else { return };
    let wanted = a.cfg.borrow().as_ref().is_some_and(|c| match ev {
        Event::Vrrp { .. } => c.vrrp,
        Event::RealServer { .. } => c.checker,
    });
    if wanted && a.tx.try_send(ev).is_err() {
        STATS.dropped.fetch_add(1, Relaxed);
    }
}

/// The host's name: HELO's default, the sender's domain, the subjects' router id.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "localhost".into())
}

async fn sender(mut rx: mpsc::Receiver<Event>, cfg: watch::Receiver<Option<Arc<EmailAlerts>>>) {
    while let Some(ev) = rx.recv().await {
        let Some(c) = cfg.borrow().clone() else {
            continue;
        };
        let host = hostname();
        let from = c.from.clone().unwrap_or_else(|| format!("xvs@{host}"));
        let subject = ev.subject(c.router_id.as_deref().unwrap_or(&host));
        let data = message::data(&from, &c.to, &subject, &ev.body(), SystemTime::now());
        let mail = smtp::Mail {
            helo: c.helo_name.as_deref().unwrap_or(&host),
            from: &from,
            to: &c.to,
            data: &data,
        };
        let timeout = Duration::from_millis(c.timeout_ms);
        match smtp::send(c.server, timeout, &mail).await {
            Ok(()) => {
                STATS.sent.fetch_add(1, Relaxed);
                info!(
                    event = "email_alert",
                    result = "sent",
                    "e-mail alert sent to {}: {subject}",
                    c.to.join(", ")
                );
            }
            Err(e) => {
                STATS.failed.fetch_add(1, Relaxed);
                warn!(
                    event = "email_alert",
                    result = "failed",
                    "e-mail alert {subject:?} not sent through {}: {e}",
                    c.server
                );
            }
        }
    }
}
