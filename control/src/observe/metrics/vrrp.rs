//! The VRRP families: each instance's state, transitions, adverts by outcome, and how
//! late its adverts went out.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::text::Out;
use crate::vrrp::advert::Reject;
use crate::vrrp::VrrpStats;

pub fn instances(o: &mut Out, vrrp: &[(String, Arc<VrrpStats>)]) {
    if !vrrp.is_empty() {
        o.family(
            "xvs_vrrp_state",
            "gauge",
            "1 for the instance's current state.",
        );
        for (name, s) in vrrp {
            for state in ["INIT", "BACKUP", "MASTER", "FAULT"] {
                o.sample(
                    "xvs_vrrp_state",
                    &[("vrrp_instance", name), ("state", state)],
                    u64::from(s.state().as_str() == state),
                );
            }
        }
        per_instance(
            o,
            vrrp,
            ("xvs_vrrp_transitions_total", "State transitions."),
            |s| s.transitions.load(Relaxed),
        );
        o.family(
            "xvs_vrrp_adverts_total",
            "counter",
            "Advertisements by outcome (rejected ones by reason).",
        );
        for (name, s) in vrrp {
            o.sample(
                "xvs_vrrp_adverts_total",
                &[("vrrp_instance", name), ("outcome", "sent")],
                s.sent.load(Relaxed),
            );
            o.sample(
                "xvs_vrrp_adverts_total",
                &[("vrrp_instance", name), ("outcome", "received")],
                s.received.load(Relaxed),
            );
            for (r, n) in Reject::ALL.iter().zip(&s.rejected) {
                let outcome = format!("rejected_{}", r.label());
                o.sample(
                    "xvs_vrrp_adverts_total",
                    &[("vrrp_instance", name), ("outcome", &outcome)],
                    n.load(Relaxed),
                );
            }
        }
        per_instance(
            o,
            vrrp,
            (
                "xvs_vrrp_adverts_late_total",
                "A master's adverts sent one advert interval or more after they were due (a backup takes over after three).",
            ),
            |s| s.adverts_late.load(Relaxed),
        );
        o.family(
            "xvs_vrrp_advert_max_delay_seconds",
            "gauge",
            "The longest a master's advert went out after it was due, since start.",
        );
        for (name, s) in vrrp {
            let us = s.advert_delay_max_us.load(Relaxed);
            o.sample_text(
                "xvs_vrrp_advert_max_delay_seconds",
                &[("vrrp_instance", name)],
                &format!("{}", us as f64 / 1e6),
            );
        }
    }
}

/// A counter family with one sample per instance.
fn per_instance(
    o: &mut Out,
    vrrp: &[(String, Arc<VrrpStats>)],
    (family, help): (&str, &str),
    read: fn(&VrrpStats) -> u64,
) {
    o.family(family, "counter", help);
    for (name, s) in vrrp {
        o.sample(family, &[("vrrp_instance", name)], read(s));
    }
}
