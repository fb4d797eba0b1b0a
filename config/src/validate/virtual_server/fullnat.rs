//! FullNAT's local addresses and ports: required with `forwarding: fullnat` and refused
//! otherwise; each address a unicast one of the VIP's family, neither the VIP nor a real
//! server; each address in one pool only (two virtual servers may share a pool, given
//! whole and alike), so that no two connections are ever handed the same pair.

use std::collections::HashMap;
use std::net::IpAddr;

use super::super::checker::{at, Checker};
use crate::error::Diagnostic;
use crate::model::*;
use crate::raw::*;
use crate::spanned::Spanned;

/// Every local address seen so far, with the pool it belongs to and where it was given
/// (line, column).
pub(in crate::validate) type Pools = HashMap<IpAddr, (LocalAddresses, (u64, u64))>;

pub(super) fn check(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    forwarding: Forwarding,
    real_servers: &[RealServer],
    pools: &mut Pools,
) -> Option<LocalAddresses> {
    if forwarding != Forwarding::FullNat {
        refuse_unused(ck, vs);
        return None;
    }
    if vs.ops.as_ref().is_some_and(|o| o.value) {
        let o = vs.ops.as_ref().expect("checked");
        ck.error(
            o,
            "ops (one-packet scheduling) cannot go with FullNAT".into(),
            "FullNAT keeps a local port per flow, for its replies: remove `ops`",
        );
    }
    let Some(list) = vs.local_addresses.as_ref().filter(|l| !l.is_empty()) else {
        ck.error(
            &vs.name,
            format!("FullNAT virtual server {:?} has no local_addresses", vs.name.value),
            "list the director's own addresses its requests leave from: `local_addresses: [192.0.2.10]`",
        );
        return None;
    };
    let ports = vs
        .local_ports
        .as_ref()
        .map_or(Some(DEFAULT_LOCAL_PORTS), |p| port_range(ck, p))?;
    let mut addresses = Vec::new();
    for a in list {
        if address(ck, vs, a, real_servers, &addresses) {
            addresses.push(a.value);
        }
    }
    let pool = LocalAddresses { addresses, ports };
    for a in list {
        shared(ck, a, &pool, pools);
    }
    Some(pool)
}

/// Local addresses or ports on another method.
fn refuse_unused(ck: &mut Checker, vs: &RawVirtualServer) {
    let hint = "only `forwarding: fullnat` sends from local addresses: remove it";
    if let Some(a) = vs.local_addresses.as_ref().and_then(|l| l.first()) {
        ck.error(
            a,
            "local_addresses without `forwarding: fullnat`".into(),
            hint,
        );
    }
    if let Some(p) = &vs.local_ports {
        ck.error(p, "local_ports without `forwarding: fullnat`".into(), hint);
    }
}

/// `"LOW-HIGH"`, 1 ≤ LOW ≤ HIGH ≤ 65535.
fn port_range(ck: &mut Checker, p: &Spanned<String>) -> Option<(u16, u16)> {
    let parsed = p.value.split_once('-').and_then(|(lo, hi)| {
        let (lo, hi) = (
            lo.trim().parse::<u16>().ok()?,
            hi.trim().parse::<u16>().ok()?,
        );
        (lo >= 1 && lo <= hi).then_some((lo, hi))
    });
    if parsed.is_none() {
        ck.error(
            p,
            format!("local_ports {:?} is no port range", p.value),
            "give \"LOW-HIGH\" with 1 <= LOW <= HIGH <= 65535, e.g. \"1024-65535\"",
        );
    }
    parsed
}

/// One local address: usable, and not listed twice here. True to keep it.
fn address(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    a: &Spanned<IpAddr>,
    real_servers: &[RealServer],
    earlier: &[IpAddr],
) -> bool {
    let before = ck.out.len();
    ck.unicast(a, "a local address");
    ck.same_family(a, vs.address.value, "a local address");
    let clash = if a.value == vs.address.value {
        Some("the virtual server's own address")
    } else if real_servers.iter().any(|r| r.address == a.value) {
        Some("one of its real servers")
    } else if earlier.contains(&a.value) {
        Some("listed twice")
    } else {
        None
    };
    if let Some(what) = clash {
        ck.error(
            a,
            format!("local address {} is {what}", a.value),
            "local addresses are the director's own, used for nothing else: the real servers answer them",
        );
    }
    ck.out.len() == before
}

/// An address already in another pool must be in this same one.
fn shared(ck: &mut Checker, a: &Spanned<IpAddr>, pool: &LocalAddresses, pools: &mut Pools) {
    let (line, column) = at(a);
    match pools.get(&a.value) {
        None => {
            pools.insert(a.value, (pool.clone(), (line, column)));
        }
        Some((other, _)) if other == pool => {}
        Some((_, (first, _))) => ck.out.push(
            Diagnostic::new(
                line,
                column,
                format!(
                    "local address {} is in another pool (line {first}) with other addresses or ports",
                    a.value
                ),
                )
            .hint("an address belongs to one pool: give both virtual servers the same local_addresses and local_ports, or other addresses"),
        ),
    }
}

/// Across the file: at most `MAX_LOCAL_ADDRESSES` local addresses, and none of them
/// another virtual server's VIP or real server (its replies would be taken for a
/// FullNAT connection's, or its traffic for a service's).
pub(in crate::validate) fn across(ck: &mut Checker, pools: &Pools, vss: &[VirtualServer]) {
    let mut clashes: Vec<(&IpAddr, &(u64, u64), &str)> = pools
        .iter()
        .filter_map(|(a, (_, at))| {
            let what = if vss.iter().any(|v| v.address == *a) {
                "a virtual server's address"
            } else if vss
                .iter()
                .any(|v| v.real_servers.iter().any(|r| r.address == *a))
            {
                "a real server's address"
            } else {
                return None;
            };
            Some((a, at, what))
        })
        .collect();
    clashes.sort_by_key(|(_, at, _)| **at);
    for (a, (line, column), what) in clashes {
        ck.out.push(
            Diagnostic::new(*line, *column, format!("local address {a} is also {what}")).hint(
                "local addresses are the director's own, used for nothing else: give another",
            ),
        );
    }
    if pools.len() > MAX_LOCAL_ADDRESSES {
        let first = pools.values().map(|(_, (l, _))| *l).min().unwrap_or(1);
        ck.out.push(
            Diagnostic::new(
                first,
                1,
                format!(
                    "{} local addresses; at most {MAX_LOCAL_ADDRESSES}",
                    pools.len()
                ),
            )
            .hint("share pools between virtual servers"),
        );
    }
}
