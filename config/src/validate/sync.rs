//! `connection_sync`: the interface, the peers, the key and the resync's bounds.

use std::net::Ipv4Addr;

use super::checker::{located, secs, Checker};
use crate::model::*;
use crate::raw::RawConnectionSync;

pub(super) fn check(ck: &mut Checker, cs: &RawConnectionSync) -> Option<ConnectionSync> {
    let before = ck.out.len();
    interface(ck, cs);
    peers(ck, cs);
    let key = key(ck, cs);
    let port = cs.port.as_ref().map_or(DEFAULT_SYNC_PORT, |p| {
        ck.range(p, "connection_sync port", 1, 65535, "a UDP port") as u16
    });
    let group = group(ck, cs);
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
    Some(ConnectionSync {
        interface: located(&cs.interface),
        peers: cs.peers.iter().map(|p| p.value).collect(),
        key: key.unwrap_or_default(),
        port,
        group,
        resync_timeout_ms,
        resync_rate,
    })
}

/// The sync interface: a name as `ip link` shows it.
fn interface(ck: &mut Checker, cs: &RawConnectionSync) {
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
}

/// The unicast peers: hosts' IPv4 addresses, as sync messages travel over IPv4.
fn peers(ck: &mut Checker, cs: &RawConnectionSync) {
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
}

/// The multicast group (224.0.0.81 by default), which `peers` rule out.
fn group(ck: &mut Checker, cs: &RawConnectionSync) -> Ipv4Addr {
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
    group
}

/// The key, from `key` or `key_file` (exactly one of them), 16 to 256 characters.
fn key(ck: &mut Checker, cs: &RawConnectionSync) -> Option<String> {
    let (value, at) = match (&cs.key, &cs.key_file) {
        (Some(k), None) => (k.value.clone(), k),
        (None, Some(f)) => (key_file(ck, f)?, f),
        (Some(k), Some(_)) => {
            ck.error(
                k,
                "connection_sync has both `key` and `key_file`".into(),
                "keep one: `key_file` keeps the secret out of this file",
            );
            return None;
        }
        (None, None) => {
            ck.error(
                &cs.interface,
                "connection_sync needs a `key` or a `key_file`".into(),
                "a long random secret, the same on every director: `openssl rand -base64 32`",
            );
            return None;
        }
    };
    let n = value.chars().count();
    if !(16..=256).contains(&n) {
        ck.error(
            at,
            format!("connection_sync key is {n} characters long, not 16 to 256"),
            "a long random secret, the same on every director: `openssl rand -base64 32`",
        );
        return None;
    }
    Some(value)
}

/// The first line of `key_file`: an absolute path to a file only its owner and group may
/// read, that no one but root can change.
fn key_file(ck: &mut Checker, f: &crate::spanned::Spanned<String>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::Path::new(&f.value);
    let fail = |ck: &mut Checker, why: String, hint: &str| {
        ck.error(
            f,
            format!("connection_sync key_file {}: {why}", f.value),
            hint,
        );
        None
    };
    if !path.is_absolute() {
        return fail(
            ck,
            "not an absolute path".into(),
            "give the file's full path",
        );
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return fail(
                ck,
                e.to_string(),
                "create it: `openssl rand -base64 32 > FILE`",
            )
        }
    };
    if meta.mode() & 0o007 != 0 || meta.mode() & 0o020 != 0 || meta.uid() != 0 {
        return fail(
            ck,
            format!(
                "mode {:04o}, owner uid {}: others could read or change the key",
                meta.mode() & 0o7777,
                meta.uid()
            ),
            "`chown root:xvs FILE && chmod 0640 FILE`",
        );
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text.lines().next().unwrap_or("").trim().to_string()),
        Err(e) => fail(ck, e.to_string(), "xvs must be able to read it (group xvs)"),
    }
}
