//! Route health injection's families: each VIP announced or not, why not, and the
//! route writes the kernel refused.

use super::text::Out;
use crate::announce::Announcer;

pub fn families(o: &mut Out, a: &Announcer) {
    let rows = a.rows();
    o.family(
        "xvs_vip_announced",
        "gauge",
        "1 while the VIP's route is in the announce table (the routers send it here).",
    );
    for r in &rows {
        o.sample(
            "xvs_vip_announced",
            &[("vip", &r.vip.to_string())],
            u64::from(r.announced),
        );
    }
    o.family(
        "xvs_vip_announce_reason",
        "gauge",
        "1 for the reason the VIP is announced (serving) or not.",
    );
    for r in &rows {
        o.sample(
            "xvs_vip_announce_reason",
            &[("vip", &r.vip.to_string()), ("reason", r.reason)],
            1,
        );
    }
    o.family(
        "xvs_announce_route_errors_total",
        "counter",
        "Route writes or removals in the announce table the kernel refused (logged, retried).",
    );
    o.sample("xvs_announce_route_errors_total", &[], a.route_errors);
}
