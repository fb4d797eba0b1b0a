//! VRRP instances and sync groups: keepalived's vrrp_instance keywords, and the
//! references between them.

use std::collections::HashMap;
use std::net::IpAddr;

use super::checker::{at, Checker};
use crate::error::Diagnostic;
use crate::model::*;
use crate::raw::*;
use crate::spanned::Spanned;

pub(super) fn instance(
    ck: &mut Checker,
    vi: &RawVrrpInstance,
    names: &mut HashMap<String, u64>,
    vrids: &mut HashMap<(String, u8), u64>,
) -> VrrpInstance {
    if let Some(first) = names.insert(format!("vrrp {}", vi.name.value), at(&vi.name).0) {
        ck.error(
            &vi.name,
            format!(
                "VRRP instance name {:?} is already used at line {first}",
                vi.name.value
            ),
            "give each instance its own name",
        );
    }
    let vrid = ck.range(
        &vi.virtual_router_id,
        "virtual_router_id",
        1,
        255,
        "1 to 255; the same on every director of the pair",
    ) as u8;
    if let Some(first) = vrids.insert(
        (vi.interface.value.clone(), vrid),
        at(&vi.virtual_router_id).0,
    ) {
        ck.error(
            &vi.virtual_router_id,
            format!(
                "virtual_router_id {vrid} on {} is already used at line {first}",
                vi.interface.value
            ),
            "each virtual router on a link needs its own id",
        );
    }
    let priority = ck.range(
        &vi.priority,
        "priority",
        1,
        255,
        "1 to 254; 255 only for the owner of the addresses",
    ) as u8;
    let version = vi.version.as_ref().map_or(2, |v| {
        ck.range(v, "version", 2, 3, "2 (RFC 3768) or 3 (RFC 5798)") as u8
    });
    let advert_int_cs = match &vi.advert_int {
        None => 100,
        Some(a) => {
            let cs = (a.value * 100.0).round();
            let ok = if version == 2 {
                (100.0..=25500.0).contains(&cs) && cs % 100.0 == 0.0
            } else {
                (1.0..=4095.0).contains(&cs)
            };
            if !ok {
                let (l, c) = at(a);
                ck.out.push(
                    Diagnostic::new(
                        l,
                        c,
                        format!(
                            "advert_int {} is not valid for VRRP version {version}",
                            a.value
                        ),
                    )
                    .hint("version 2: whole seconds 1 to 255; version 3: 0.01 to 40.95 seconds"),
                );
            }
            cs.clamp(1.0, 4095.0) as u16
        }
    };
    let preempt_delay = vi.preempt_delay.as_ref().map_or(0, |d| {
        ck.range(d, "preempt_delay", 0, 1000, "seconds") as u32
    });
    let password = vi.authentication.as_ref().map(|a| {
        // PASS is the only type offered (AH is deprecated by RFC 3768).
        let AuthType::Pass = a.value.auth_type;
        if version != 2 {
            ck.error(
                a,
                "authentication exists in VRRP version 2 only".into(),
                "remove it, or use `version: 2`",
            );
        }
        if a.value.auth_pass.is_empty() || a.value.auth_pass.len() > 8 {
            ck.error(
                a,
                "auth_pass must be 1 to 8 characters".into(),
                "VRRPv2 carries 8 bytes of password",
            );
        }
        a.value.auth_pass.clone()
    });
    let mut vips: Vec<(IpAddr, u8)> = Vec::new();
    for v in &vi.virtual_ipaddresses {
        let (addr, len) = match v.value.split_once('/') {
            Some((a, l)) => (a.trim(), Some(l.trim())),
            None => (v.value.trim(), None),
        };
        let parsed = addr.parse::<IpAddr>().ok().and_then(|a| {
            let max = if a.is_ipv4() { 32 } else { 128 };
            match len {
                None => Some((a, max)),
                Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).map(|l| (a, l)),
            }
        });
        match parsed {
            Some(p) if vips.first().is_some_and(|f| f.0.is_ipv4() != p.0.is_ipv4()) => ck.error(
                v,
                format!("{} is not of the instance's first address's family", p.0),
                "an instance's VIPs are all IPv4 or all IPv6: give IPv6 ones an instance of their own, as keepalived does",
            ),
            Some(p) => vips.push(p),
            None => ck.error(
                v,
                format!(
                    "{:?} is not an IP address (with an optional /prefix)",
                    v.value
                ),
                "as keepalived: 10.0.0.100, 10.0.0.100/24 or 2001:db8::100/64",
            ),
        }
    }
    let ipv6 = vips.first().is_some_and(|v| v.0.is_ipv6());
    if ipv6 && version != 3 {
        ck.error(
            &vi.name,
            format!(
                "VRRP instance {:?} has IPv6 addresses: it needs version 3",
                vi.name.value
            ),
            "VRRP over IPv6 exists in version 3 only (RFC 5798): add `version: 3`",
        );
    }
    for a in vi.unicast_src_ip.iter().chain(&vi.unicast_peers) {
        if !vips.is_empty() && a.value.is_ipv6() != ipv6 {
            ck.error(
                a,
                format!("{} is not of the VIPs' family", a.value),
                "unicast_src_ip and unicast_peers are of the VIPs' family",
            );
        }
    }
    if vips.is_empty() {
        ck.error(
            &vi.name,
            format!(
                "VRRP instance {:?} has no virtual_ipaddresses",
                vi.name.value
            ),
            "list the addresses the master holds",
        );
    }
    let garp_master_repeat = vi.garp_master_repeat.as_ref().map_or(5, |g| {
        ck.range(
            g,
            "garp_master_repeat",
            1,
            100,
            "gratuitous ARPs per address on becoming master",
        ) as u32
    });
    let garp_master_refresh = vi.garp_master_refresh.as_ref().map_or(0, |g| {
        ck.range(
            g,
            "garp_master_refresh",
            0,
            86400,
            "seconds between refreshes; 0 for none",
        ) as u32
    });
    let garp_interval_ms = vi.garp_interval.as_ref().map_or(0, |g| {
        if !(0.0..=10.0).contains(&g.value) {
            let (l, c) = at(g);
            ck.out.push(
                Diagnostic::new(
                    l,
                    c,
                    format!("garp_interval {} is out of range 0..=10", g.value),
                )
                .hint("seconds between the gratuitous ARPs of one burst"),
            );
        }
        (g.value.clamp(0.0, 10.0) * 1000.0) as u32
    });
    let loc = |s: &Spanned<String>| {
        let (line, column) = at(s);
        Located {
            value: s.value.clone(),
            line,
            column,
        }
    };
    VrrpInstance {
        name: vi.name.value.clone(),
        interface: loc(&vi.interface),
        vrid,
        priority,
        start_as_master: vi
            .state
            .as_ref()
            .is_some_and(|s| s.value == VrrpState::Master),
        advert_int_cs,
        version,
        preempt: vi.preempt.unwrap_or(true),
        preempt_delay,
        password,
        unicast_src_ip: vi.unicast_src_ip.as_ref().map(|u| u.value),
        check_unicast_src: !vi.unicast_peers.is_empty() && vi.check_unicast_src.unwrap_or(true),
        unicast_peers: vi
            .unicast_peers
            .iter()
            .map(|p| {
                ck.unicast(p, "a unicast VRRP peer");
                p.value
            })
            .collect(),
        virtual_ipaddresses: vips,
        garp_master_repeat,
        garp_master_refresh,
        garp_interval_ms,
        sync_group: None,
        notify_master: ck.script(&vi.notify_master, "notify_master"),
        notify_backup: ck.script(&vi.notify_backup, "notify_backup"),
        notify_fault: ck.script(&vi.notify_fault, "notify_fault"),
        notify: ck.script(&vi.notify, "notify"),
        track_interfaces: vi.track_interfaces.iter().map(loc).collect(),
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
