//! VRRP instances and sync groups: keepalived's vrrp_instance keywords, and the
//! references between them.
//!
//! - `router.rs`: the virtual router: its name and id, priority, version, advertisements,
//!   preemption and password
//! - `addresses.rs`: the virtual addresses, the unicast peers and the gratuitous ARPs

mod addresses;
mod router;

use std::collections::HashMap;

use super::checker::{at, located, Checker};
use crate::model::*;
use crate::raw::*;

pub(super) fn instance(
    ck: &mut Checker,
    vi: &RawVrrpInstance,
    names: &mut HashMap<String, u64>,
    vrids: &mut HashMap<(String, u8), u64>,
) -> VrrpInstance {
    let router = router::check(ck, vi, names, vrids);
    let vips = addresses::vips(ck, vi, router.version);
    let garp = addresses::garp(ck, vi);
    VrrpInstance {
        name: vi.name.value.clone(),
        interface: located(&vi.interface),
        vrid: router.vrid,
        priority: router.priority,
        start_as_master: vi
            .state
            .as_ref()
            .is_some_and(|s| s.value == VrrpState::Master),
        advert_int_cs: router.advert_int_cs,
        version: router.version,
        preempt: vi.preempt.unwrap_or(true),
        preempt_delay: router.preempt_delay,
        password: router.password,
        unicast_src_ip: vi.unicast_src_ip.as_ref().map(|u| u.value),
        check_unicast_src: !vi.unicast_peers.is_empty() && vi.check_unicast_src.unwrap_or(true),
        unicast_peers: addresses::unicast_peers(ck, vi),
        virtual_ipaddresses: vips,
        garp_master_repeat: garp.repeat,
        garp_master_refresh: garp.refresh,
        garp_interval_ms: garp.interval_ms,
        sync_group: None,
        notify_master: ck.script(&vi.notify_master, "notify_master"),
        notify_backup: ck.script(&vi.notify_backup, "notify_backup"),
        notify_fault: ck.script(&vi.notify_fault, "notify_fault"),
        notify: ck.script(&vi.notify, "notify"),
        track_interfaces: vi.track_interfaces.iter().map(located).collect(),
    }
}

/// Each sync group's members exist, and belong to no other group.
pub(super) fn sync_groups(
    ck: &mut Checker,
    groups: &[RawSyncGroup],
    instances: &mut [VrrpInstance],
) {
    let mut grouped: HashMap<String, u64> = HashMap::new();
    for g in groups {
        for m in &g.group {
            match instances.iter_mut().find(|v| v.name == m.value) {
                None => ck.error(
                    m,
                    format!(
                        "sync group {:?} names no VRRP instance {:?}",
                        g.name.value, m.value
                    ),
                    "list names from vrrp_instances",
                ),
                Some(v) => {
                    if let Some(first) = grouped.insert(m.value.clone(), at(m).0) {
                        ck.error(
                            m,
                            format!(
                                "VRRP instance {:?} is already in a sync group at line {first}",
                                m.value
                            ),
                            "an instance belongs to one sync group at most",
                        );
                    }
                    v.sync_group = Some(g.name.value.clone());
                }
            }
        }
    }
}
