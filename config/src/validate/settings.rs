//! The director's own top-level settings: its interfaces, the metrics listener, the
//! tunnel MTU, VRRP's scheduling priority and the script user. `dataplane.rs` holds the
//! packet path's.

use std::net::SocketAddr;

use super::checker::Checker;
use crate::model::*;
use crate::raw::*;
use crate::spanned::Spanned;

/// The checked settings, for `Config`.
pub(super) struct Settings {
    pub metrics_listen: Option<SocketAddr>,
    pub tun_mtu: Option<u16>,
    pub vrrp_realtime_priority: Option<u8>,
    pub script_user: Option<ScriptUser>,
}

/// `interface`: a name as `ip link` shows it.
pub(super) fn interface(ck: &mut Checker, interface: &Spanned<String>) {
    if interface.value.is_empty() || interface.value.len() > 15 {
        ck.error(
            interface,
            format!(
                "interface name {:?} is not a valid Linux interface name",
                interface.value
            ),
            "give the name as `ip link` shows it, 1 to 15 characters",
        );
    }
}

pub(super) fn check(ck: &mut Checker, raw: &RawConfig) -> Settings {
    Settings {
        metrics_listen: metrics_listen(ck, raw.metrics_listen.as_ref()),
        tun_mtu: raw.tun_mtu.as_ref().map(|m| {
            ck.range(
                m,
                "tun_mtu",
                576,
                65535,
                "the path MTU to tunnelled real servers; omit it to use the interface's",
            ) as u16
        }),
        vrrp_realtime_priority: raw.vrrp_realtime_priority.as_ref().map_or(Some(10), |p| {
            let p = ck.range(
                p,
                "vrrp_realtime_priority",
                0,
                99,
                "a SCHED_FIFO priority, as keepalived's vrrp_rt_priority; 0 for normal scheduling",
            ) as u8;
            (p > 0).then_some(p)
        }),
        script_user: raw.script_user.as_ref().and_then(|u| script_user(ck, u)),
    }
}

/// `metrics_listen`: an address:port, `off`, or the default when absent.
fn metrics_listen(ck: &mut Checker, m: Option<&Spanned<String>>) -> Option<SocketAddr> {
    match m {
        None => DEFAULT_METRICS_LISTEN.parse().ok(),
        Some(m) if m.value == "off" => None,
        Some(m) => match m.value.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                ck.error(
                    m,
                    format!("metrics_listen {:?} is not an address:port", m.value),
                    "such as 127.0.0.1:9147, or `off`",
                );
                None
            }
        },
    }
}

/// `script_user`: `user` or `user:group`, each a name a system account may have.
fn script_user(ck: &mut Checker, u: &Spanned<String>) -> Option<ScriptUser> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 32
            && !n.starts_with('-')
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
    };
    let (user, group) = match u.value.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (u.value.as_str(), None),
    };
    if !name_ok(user) || group.is_some_and(|g| !name_ok(g)) {
        ck.error(
            u,
            format!("script_user {:?} is no user name", u.value),
            "a user, or `user:group` (keepalived's `script_user USER GROUP`)",
        );
        return None;
    }
    Some(ScriptUser {
        user: user.to_string(),
        group: group.map(str::to_string),
    })
}

/// `internal_interface`: another interface than `interface`, for two-arm NAT; so once the
/// virtual servers are checked.
pub(super) fn internal_interface(
    ck: &mut Checker,
    raw: &RawConfig,
    virtual_servers: &[VirtualServer],
) {
    let Some(int) = &raw.internal_interface else {
        return;
    };
    if int.value == raw.interface.value || int.value.is_empty() || int.value.len() > 15 {
        ck.error(
            int,
            format!(
                "internal_interface {:?} must be another valid interface than `interface`",
                int.value
            ),
            "two-arm NAT: `interface` faces the clients, `internal_interface` the real servers",
        );
    } else if !virtual_servers
        .iter()
        .any(|v: &VirtualServer| matches!(v.forwarding, Forwarding::Nat | Forwarding::FullNat))
    {
        ck.error(
            int,
            "internal_interface is for two-arm NAT, and no virtual server uses `forwarding: nat` or `fullnat`"
                .into(),
            "remove it, or use NAT",
        );
    }
}
