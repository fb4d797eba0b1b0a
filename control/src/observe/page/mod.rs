//! The status page: the director at a glance in a browser, served beside `/metrics` by
//! the same listener (`/` the page, `/status.json` its JSON twin). The twin is gathered
//! here from what `xvs status --json`, `--sync --json` and `--drops --json` give, plus
//! VRRP and reloads (`overview`); the page is a pure function of it (`html::render`),
//! so what a browser shows and what a script reads cannot differ.

pub mod html;

use serde_json::{json, Value};

use super::status::VirtualServerRow;
use crate::vrrp::VrrpStats;

/// A reload's outcome, for the page.
#[derive(Clone, Debug)]
pub struct LastReload {
    /// Seconds since the Unix epoch.
    pub at: u64,
    pub ok: bool,
    /// "reload 3 done" or the reason it failed.
    pub message: String,
}

/// What the page shows, read by the control loop at the moment of asking.
pub struct Parts<'a> {
    pub interface: &'a str,
    pub generation: u64,
    pub reloads: u64,
    pub reload_failures: u64,
    pub last_reload: Option<&'a LastReload>,
    pub servers: &'a [VirtualServerRow],
    /// Each instance: its statistics and configured priority.
    pub vrrp: Vec<(&'a str, &'a str, &'a VrrpStats, u8)>,
    /// `xvs status --sync --json`, when connection sync is on.
    pub sync: Option<Value>,
    /// `xvs status --drops --json`.
    pub drops: Option<Value>,
}

/// The JSON twin.
pub fn overview(p: &Parts<'_>) -> Value {
    let now = crate::calendar::unix_now();
    let vrrp: Vec<Value> = p
        .vrrp
        .iter()
        .map(|(name, iface, s, configured)| {
            let now_p = s.priority.load(std::sync::atomic::Ordering::Relaxed);
            json!({
                "name": name,
                "interface": iface,
                "state": s.state().as_str(),
                "priority": if now_p == 0 { *configured } else { now_p },
                "transitions": s.transitions.load(std::sync::atomic::Ordering::Relaxed),
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "generated": now,
        "interface": p.interface,
        "generation": p.generation,
        "reloads": {
            "done": p.reloads,
            "failed": p.reload_failures,
            "last": p.last_reload.map(|r| json!({"at": r.at, "ok": r.ok, "message": r.message})),
        },
        "virtual_servers": p.servers,
        "vrrp": vrrp,
        "sync": p.sync,
        "drops": p.drops,
    })
}
