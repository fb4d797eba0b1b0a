//! The health families: each real server's state (its check's, and the operator's drain),
//! probe durations (a histogram), failed probes and transitions.

use xvs_config::{Config, RealServer, VirtualServer};

use super::text::{Out, Read};
use crate::daemon::drain::Drains;
use crate::daemon::overload::Overload;
use crate::health::{HealthMap, Monitors};
use crate::ids::DestKey;

/// `xvs_real_server_up`: 1 while a real server's check passes (or it has none).
pub fn up(o: &mut Out, cfg: &Config, health: &HealthMap) {
    o.family(
        "xvs_real_server_up",
        "gauge",
        "1 when the real server's health check passes (or it has none).",
    );
    for vs in &cfg.virtual_servers {
        for rs in &vs.real_servers {
            let up = health.get(&DestKey::of(vs, rs)).is_none_or(|h| h.up);
            let rsl = crate::ids::endpoint(rs.address, rs.port);
            o.sample(
                "xvs_real_server_up",
                &[("virtual_server", &vs.name), ("real_server", &rsl)],
                u64::from(up),
            );
        }
    }
}

/// A 0/1 gauge family per real server (those `flag` answers for).
fn flags(
    o: &mut Out,
    cfg: &Config,
    (name, help): (&str, &str),
    flag: impl Fn(&VirtualServer, &RealServer) -> Option<bool>,
) {
    o.family(name, "gauge", help);
    for vs in &cfg.virtual_servers {
        for rs in &vs.real_servers {
            let Some(on) = flag(vs, rs) else { continue };
            let rsl = crate::ids::endpoint(rs.address, rs.port);
            o.sample(
                name,
                &[("virtual_server", &vs.name), ("real_server", &rsl)],
                u64::from(on),
            );
        }
    }
}

/// `xvs_real_server_drained`: 1 while the operator has it drained (`xvs drain`).
pub fn drained(o: &mut Out, cfg: &Config, drains: &Drains) {
    flags(
        o,
        cfg,
        (
            "xvs_real_server_drained",
            "1 while the real server is drained (`xvs drain`): no new connections, established ones go on.",
        ),
        |vs, rs| Some(drains.contains(vs, rs)),
    );
}

/// `xvs_real_server_overloaded`: 1 while past its connection threshold (`uthreshold`);
/// only real servers that have one.
pub fn overloaded(o: &mut Out, cfg: &Config, overload: &Overload) {
    flags(
        o,
        cfg,
        (
            "xvs_real_server_overloaded",
            "1 while the real server is past its uthreshold and not yet below its lthreshold: no new connections.",
        ),
        |vs, rs| rs.thresholds.map(|_| overload.contains(&DestKey::of(vs, rs))),
    );
}

/// Probe durations (a histogram), failed probes and up/down transitions of every
/// checked real server.
pub fn checks(o: &mut Out, cfg: &Config, checks: &Monitors) {
    use crate::health::stats::{Read as CheckRead, BUCKETS_MS};
    let mut reads = Vec::new();
    for vs in &cfg.virtual_servers {
        for rs in &vs.real_servers {
            let dest = DestKey::of(vs, rs);
            if let Some(s) = checks.stats(&dest) {
                reads.push((
                    vs.name.as_str(),
                    crate::ids::endpoint(rs.address, rs.port),
                    s.read(),
                ));
            }
        }
    }
    const H: &str = "xvs_health_check_duration_seconds";
    o.family(
        H,
        "histogram",
        "How long health-check probes took (retries included).",
    );
    for (vs, rs, r) in &reads {
        let labels = [("virtual_server", *vs), ("real_server", rs.as_str())];
        for (ms, n) in BUCKETS_MS.iter().zip(r.cumulative) {
            let le = format!("{}", *ms as f64 / 1000.0);
            o.sample(
                &format!("{H}_bucket"),
                &[labels[0], labels[1], ("le", &le)],
                n,
            );
        }
        o.sample(
            &format!("{H}_bucket"),
            &[labels[0], labels[1], ("le", "+Inf")],
            r.count,
        );
        o.sample_text(&format!("{H}_sum"), &labels, &format!("{}", r.sum_seconds));
        o.sample(&format!("{H}_count"), &labels, r.count);
    }
    let counters: [(&str, &str, Read<CheckRead>); 2] = [
        (
            "xvs_health_check_failures_total",
            "Probes that failed (retries included).",
            |r| r.failures,
        ),
        (
            "xvs_health_check_transitions_total",
            "Times the real server went up or down.",
            |r| r.transitions,
        ),
    ];
    for (name, help, f) in counters {
        o.family(name, "counter", help);
        for (vs, rs, r) in &reads {
            o.sample(name, &[("virtual_server", vs), ("real_server", rs)], f(r));
        }
    }
}
