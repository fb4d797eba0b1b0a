//! An instance's addresses: its VIPs, all of one family, the unicast source and peers of
//! that family; and the gratuitous ARPs that announce the VIPs.

use std::net::IpAddr;

use crate::error::Diagnostic;
use crate::raw::RawVrrpInstance;
use crate::validate::checker::{at, Checker};

/// The checked gratuitous ARP settings, for `VrrpInstance`.
pub(super) struct Garp {
    pub repeat: u32,
    pub refresh: u32,
    pub interval_ms: u32,
}

/// `virtual_ipaddresses`: each an address with an optional /prefix, of the first one's
/// family; then what that family asks of the instance.
pub(super) fn vips(ck: &mut Checker, vi: &RawVrrpInstance, version: u8) -> Vec<(IpAddr, u8)> {
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
    family(ck, vi, &vips, version);
    vips
}

/// IPv6 VIPs need version 3, and unicast addresses of their family; and an instance
/// has at least one VIP.
fn family(ck: &mut Checker, vi: &RawVrrpInstance, vips: &[(IpAddr, u8)], version: u8) {
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
}

/// `unicast_peers`: hosts' addresses.
pub(super) fn unicast_peers(ck: &mut Checker, vi: &RawVrrpInstance) -> Vec<IpAddr> {
    vi.unicast_peers
        .iter()
        .map(|p| {
            ck.unicast(p, "a unicast VRRP peer");
            p.value
        })
        .collect()
}

/// The gratuitous ARPs on becoming master: how many, how often refreshed, how far apart.
pub(super) fn garp(ck: &mut Checker, vi: &RawVrrpInstance) -> Garp {
    Garp {
        repeat: vi.garp_master_repeat.as_ref().map_or(5, |g| {
            ck.range(
                g,
                "garp_master_repeat",
                1,
                100,
                "gratuitous ARPs per address on becoming master",
            ) as u32
        }),
        refresh: vi.garp_master_refresh.as_ref().map_or(0, |g| {
            ck.range(
                g,
                "garp_master_refresh",
                0,
                86400,
                "seconds between refreshes; 0 for none",
            ) as u32
        }),
        interval_ms: vi.garp_interval.as_ref().map_or(0, |g| {
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
        }),
    }
}
