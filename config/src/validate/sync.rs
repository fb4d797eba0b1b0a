//! `connection_sync`: the interface, the peers, the key and the resync's bounds.

use super::checker::{at, secs, Checker};
use crate::model::*;
use crate::raw::RawConnectionSync;

pub(super) fn check(ck: &mut Checker, cs: &RawConnectionSync) -> Option<ConnectionSync> {
    let before = ck.out.len();
    if cs.interface.value.is_empty() || cs.interface.value.len() > 15 {
        ck.error(
            &cs.interface,
            format!(
                "connection_sync interface {:?} is not a valid Linux interface name",
                cs.interface.value
            ),
            "give the name as `ip link` shows it, 1 to 15 characters",
        );
    }
    for p in &cs.peers {
        ck.unicast(p, "a sync peer");
        if p.value.is_ipv6() {
            ck.error(
                p,
                format!("sync peer {} is IPv6; sync messages travel over IPv4", p.value),
                "give the peer's IPv4 address on the sync interface (IPv6 connections are synced all the same)",
            );
        }
    }
    let n = cs.key.value.chars().count();
    if !(16..=256).contains(&n) {
        ck.error(
            &cs.key,
            format!("connection_sync key is {n} characters long, not 16 to 256"),
            "a long random secret, the same on every director: `openssl rand -base64 32`",
        );
    }
    let port = cs.port.as_ref().map_or(DEFAULT_SYNC_PORT, |p| {
        ck.range(p, "connection_sync port", 1, 65535, "a UDP port") as u16
    });
    let group = match &cs.group {
        None => DEFAULT_SYNC_GROUP,
        Some(g) if g.value.is_multicast() => g.value,
        Some(g) => {
            ck.error(
                g,
                format!(
                    "connection_sync group {} is not an IPv4 multicast address",
                    g.value
                ),
                "224.0.0.0/4, such as 224.0.0.81 (the default); or list `peers` for unicast",
            );
            DEFAULT_SYNC_GROUP
        }
    };
    if let (Some(g), false) = (&cs.group, cs.peers.is_empty()) {
        ck.error(
            g,
            "connection_sync has both `group` and `peers`".into(),
            "peers are unicast and the group multicast: keep one of them",
        );
    }
    let resync_timeout_ms = secs(
        ck,
        &cs.resync_timeout,
        "connection_sync resync_timeout",
        DEFAULT_RESYNC_TIMEOUT_S,
        0.0,
        60.0,
    );
    let resync_rate = cs.resync_rate.as_ref().map_or(DEFAULT_RESYNC_RATE, |r| {
        ck.range(
            r,
            "connection_sync resync_rate",
            1000,
            10_000_000,
            "entries per second a resync is sent at",
        ) as u32
    });
    if ck.out.len() != before {
        return None;
    }
    let (line, column) = at(&cs.interface);
    Some(ConnectionSync {
        interface: Located {
            value: cs.interface.value.clone(),
            line,
            column,
        },
        peers: cs.peers.iter().map(|p| p.value).collect(),
        key: cs.key.value.clone(),
        port,
        group,
        resync_timeout_ms,
        resync_rate,
    })
}
