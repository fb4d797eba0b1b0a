//! `announce`: the routing table (never one the host routes its own traffic by) and
//! each virtual server's gate, its own settings over the top-level ones.

use super::checker::{at, secs, Checker};
use crate::error::Diagnostic;
use crate::model::*;
use crate::raw::{RawAnnounce, RawConfig};
use crate::spanned::Spanned;

/// The tables a route health injection must not write: unspec, default, main, local.
const RESERVED: [(i64, &str); 4] = [
    (0, "unspec"),
    (253, "default"),
    (254, "main"),
    (255, "local"),
];

/// The top-level section, checked, and each virtual server's gate filled in; a virtual
/// server's `announce` without a top-level one is an error.
pub(super) fn apply(
    ck: &mut Checker,
    raw: &RawConfig,
    virtual_servers: &mut [VirtualServer],
) -> Option<Announce> {
    for rv in &raw.virtual_servers {
        let Some(own) = &rv.announce else { continue };
        if let Some(t) = &own.value.table {
            ck.error(
                t,
                format!("virtual server {:?} names an announce table", rv.name.value),
                "the table is the director's: give it in the top-level `announce` only",
            );
        }
    }
    let Some(top) = &raw.announce else {
        for rv in &raw.virtual_servers {
            if rv.announce.is_some() {
                ck.error(
                    &rv.name,
                    format!("virtual server {:?} has `announce` settings, but the file has no top-level `announce`", rv.name.value),
                    "add a top-level `announce:` with the routing `table` the VIPs' routes go in (docs/scale-out.md)",
                );
            }
        }
        return None;
    };
    let table = match &top.value.table {
        Some(t) => table(ck, t),
        None => {
            ck.error(
                top,
                "announce has no `table`".into(),
                "give the kernel routing table the VIPs' routes go in: `table: 100`",
            );
            0
        }
    };
    if let Some(e) = &top.value.enabled {
        ck.error(
            e,
            "`enabled` is for a virtual server's `announce`".into(),
            "leave out `announce` to announce nothing, or set `enabled: false` in the virtual servers that must not count",
        );
    }
    let defaults = gate(ck, &top.value, None);
    for (vs, rv) in virtual_servers.iter_mut().zip(&raw.virtual_servers) {
        vs.announce = Some(match &rv.announce {
            Some(own) => gate(ck, &own.value, Some(defaults)),
            None => defaults,
        });
    }
    Some(Announce { table })
}

fn table(ck: &mut Checker, t: &Spanned<i64>) -> u32 {
    if let Some((_, name)) = RESERVED.iter().find(|(n, _)| *n == t.value) {
        ck.error(
            t,
            format!("announce table {} is the kernel's {name} table", t.value),
            "give a table of its own (1 to 252, or above 255) that only xvs writes and the routing daemon exports",
        );
        return 0;
    }
    ck.range(
        t,
        "announce table",
        1,
        i64::from(u32::MAX),
        "a kernel routing table number",
    ) as u32
}

/// The settings of `g`, each missing one taken from `defaults` (or the built-in one).
fn gate(ck: &mut Checker, g: &RawAnnounce, defaults: Option<AnnounceGate>) -> AnnounceGate {
    let min_healthy = match &g.min_healthy {
        Some(m) => ck.range(m, "announce min_healthy", 0, 100_000, "real servers up") as u32,
        None => defaults.map_or(1, |d| d.min_healthy),
    };
    let min_weight_permille = match &g.min_weight_fraction {
        Some(f) if (0.0..=1.0).contains(&f.value) => (f.value * 1000.0).round() as u32,
        Some(f) => {
            let (l, c) = at(f);
            ck.out.push(
                Diagnostic::new(
                    l,
                    c,
                    format!(
                        "announce min_weight_fraction {} is out of range 0..=1",
                        f.value
                    ),
                )
                .hint("a fraction of the configured weight, 0.5 for half"),
            );
            0
        }
        None => defaults.map_or(0, |d| d.min_weight_permille),
    };
    let warmup_ms = match (&g.warmup, defaults) {
        (None, Some(d)) => d.warmup_ms,
        (w, _) => secs(
            ck,
            w,
            "announce warmup",
            DEFAULT_ANNOUNCE_WARMUP_S,
            0.0,
            600.0,
        ),
    };
    // The unit's TimeoutStopSec is 30 s: the delay and the stop after it fit.
    let withdraw_delay_ms = match (&g.withdraw_delay, defaults) {
        (None, Some(d)) => d.withdraw_delay_ms,
        (w, _) => secs(
            ck,
            w,
            "announce withdraw_delay",
            DEFAULT_WITHDRAW_DELAY_S,
            0.0,
            20.0,
        ),
    };
    AnnounceGate {
        enabled: g.enabled.as_ref().is_none_or(|e| e.value),
        min_healthy,
        min_weight_permille,
        warmup_ms,
        withdraw_delay_ms,
    }
}
