//! The VRRP families: each instance's state, transitions, and adverts by outcome.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::text::Out;
use crate::vrrp::packet::Reject;
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
        o.family(
            "xvs_vrrp_transitions_total",
            "counter",
            "State transitions.",
        );
        for (name, s) in vrrp {
            o.sample(
                "xvs_vrrp_transitions_total",
                &[("vrrp_instance", name)],
                s.transitions.load(Relaxed),
            );
        }
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
    }
}
