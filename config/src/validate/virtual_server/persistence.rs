//! Persistence: how long a client keeps its real server, and which clients share one.

use std::net::Ipv4Addr;

use crate::model::Persistence;
use crate::raw::{Granularity, RawVirtualServer};
use crate::spanned::Spanned;
use crate::validate::checker::Checker;

/// `persistence_timeout`, and `persistence_granularity`, which needs it.
pub(super) fn check(ck: &mut Checker, vs: &RawVirtualServer) -> Option<Persistence> {
    match (&vs.persistence_timeout, &vs.persistence_granularity) {
        (None, None) => None,
        (None, Some(g)) => {
            ck.error(
                g,
                "persistence_granularity without persistence_timeout".into(),
                "add `persistence_timeout: 300` (seconds)",
            );
            None
        }
        (Some(t), g) => {
            let timeout = ck.range(
                t,
                "persistence_timeout",
                1,
                86400 * 31,
                "seconds a client keeps its real server",
            ) as u32;
            let (granularity, prefix6) = granularity(ck, vs, g);
            Some(Persistence {
                timeout,
                granularity,
                prefix6,
            })
        }
    }
}

/// The clients that share a real server: an IPv4 netmask (or prefix length), an IPv6
/// prefix length; each client on its own by default.
fn granularity(
    ck: &mut Checker,
    vs: &RawVirtualServer,
    g: &Option<Spanned<Granularity>>,
) -> (Ipv4Addr, u8) {
    let v6 = vs.address.value.is_ipv6();
    let (mut granularity, mut prefix6) = (Ipv4Addr::BROADCAST, 128u8);
    match g.as_ref().map(|g| (g, g.value)) {
        None => {}
        Some((g, Granularity::Netmask(m))) if v6 => ck.error(
            g,
            format!("{m} is an IPv4 netmask, and {} is an IPv6 virtual server", vs.address.value),
            "give an IPv6 virtual server a prefix length, as ipvsadm -6 -M does: `persistence_granularity: 64`",
        ),
        Some((g, Granularity::Netmask(m))) => {
            let bits = u32::from(m);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                ck.error(
                    g,
                    format!("{m} is not a netmask"),
                    "a contiguous netmask, such as 255.255.255.0",
                );
            }
            granularity = m;
        }
        Some((g, Granularity::Prefix(len))) => {
            let max = if v6 { 128 } else { 32 };
            if !(0..=max).contains(&len) {
                ck.error(
                    g,
                    format!("prefix length {len} is out of 0 to {max}"),
                    if v6 {
                        "an IPv6 prefix length, such as 64"
                    } else {
                        "an IPv4 prefix length, such as 24, or a netmask such as 255.255.255.0"
                    },
                );
            } else if v6 {
                prefix6 = len as u8;
            } else {
                granularity = Ipv4Addr::from(u32::MAX.checked_shl(32 - len as u32).unwrap_or(0));
            }
        }
    }
    (granularity, prefix6)
}
