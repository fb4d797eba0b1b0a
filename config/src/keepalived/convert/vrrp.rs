//! vrrp_instance and vrrp_sync_group blocks as `vrrp_instances` and `vrrp_sync_groups`.

use super::{inner, number, whole, Out};
use crate::import::quote;
use crate::keepalived::tree::Stmt;

pub(super) fn sync_group(s: &Stmt, out: &mut Out) {
    out.line(
        2,
        &format!("- name: {}", quote(s.arg(0).unwrap_or("group"))),
    );
    for g in inner(s) {
        match g.keyword() {
            "group" => {
                out.line(4, "group:");
                for m in inner(g) {
                    for w in &m.words {
                        out.line(6, &format!("- {}", quote(w)));
                    }
                }
            }
            // Turns `email_alerts: { vrrp: true }` on (email.rs).
            "smtp_alert" => {}
            _ => out.warn(
                g,
                "in vrrp_sync_group: not converted (notify on the instances instead)",
            ),
        }
    }
}

/// `version`: global_defs' vrrp_version, if it says one.
pub(super) fn vrrp_instance(s: &Stmt, version: Option<&str>, out: &mut Out) {
    out.line(2, &format!("- name: {}", quote(s.arg(0).unwrap_or("VI"))));
    // keepalived runs an instance of IPv6 addresses as VRRPv3 over IPv6, whatever
    // vrrp_version says.
    let ipv6 = inner(s)
        .iter()
        .filter(|i| i.keyword() == "virtual_ipaddress")
        .flat_map(inner)
        .any(|a| a.keyword().contains(':'));
    if ipv6 {
        out.line(4, "version: 3");
    } else if let Some(v) = version {
        out.line(4, &format!("version: {v}"));
    }
    for i in inner(s) {
        statement(i, out);
    }
}

/// One statement of a vrrp_instance block.
fn statement(i: &Stmt, out: &mut Out) {
    let k = i.keyword();
    match k {
        "state" => match i.arg(0).map(str::to_ascii_uppercase).as_deref() {
            Some(st @ ("MASTER" | "BACKUP")) => out.line(4, &format!("state: {st}")),
            _ => out.warn(i, "is neither MASTER nor BACKUP: not converted"),
        },
        "interface" => {
            if let Some(v) = i.arg(0) {
                out.line(4, &format!("interface: {}", quote(v)));
            }
        }
        "virtual_router_id"
        | "priority"
        | "preempt_delay"
        | "garp_master_repeat"
        | "garp_master_refresh" => {
            if let Some(v) = whole(i, out) {
                out.line(4, &format!("{k}: {v}"));
            }
        }
        "advert_int" | "garp_interval" => {
            if let Some(v) = number(i, out) {
                out.line(4, &format!("{k}: {v}"));
            }
        }
        "nopreempt" => out.line(4, "preempt: false"),
        "preempt" => out.line(4, "preempt: true"),
        "authentication" => authentication(i, out),
        "virtual_ipaddress" => virtual_ipaddress(i, out),
        "unicast_src_ip" => match i.arg(0).and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
            Some(a) => out.line(4, &format!("unicast_src_ip: {}", quote(&a.to_string()))),
            None => out.warn(i, "is no IP address: not converted"),
        },
        // xvs checks by default (keepalived does not): said explicitly all the same.
        "check_unicast_src" => out.line(4, "check_unicast_src: true"),
        "unicast_peer" => list(i, "unicast_peers", out),
        "track_interface" => list(i, "track_interfaces", out),
        "notify_master" | "notify_backup" | "notify_fault" | "notify" => {
            if !i.args().is_empty() {
                out.line(4, &format!("{k}: {}", quote(&i.args().join(" "))));
            }
        }
        "track_script" => out.warn(
            i,
            "not converted: xvs has no vrrp_script; see `quorum_vrrp`",
        ),
        // Turns `email_alerts: { vrrp: true }` on (email.rs).
        "smtp_alert" => {}
        _ => out.warn(i, "in vrrp_instance: not converted"),
    }
}

/// `authentication { auth_type PASS auth_pass ... }`: PASS is all xvs takes.
fn authentication(i: &Stmt, out: &mut Out) {
    let get = |key: &str| {
        inner(i)
            .iter()
            .find(|a| a.keyword() == key)
            .and_then(|a| a.arg(0))
    };
    match (
        get("auth_type").map(str::to_ascii_uppercase),
        get("auth_pass"),
    ) {
        (Some(t), Some(p)) if t == "PASS" => {
            out.line(4, "authentication:");
            out.line(6, "auth_type: PASS");
            out.line(6, &format!("auth_pass: {}", quote(p)));
        }
        _ => out.warn(
            i,
            "is not `auth_type PASS` with a password: not converted (AH is deprecated)",
        ),
    }
}

/// `virtual_ipaddress`: the addresses alone (with their prefix), as xvs puts VIPs on the
/// instance's interface.
fn virtual_ipaddress(i: &Stmt, out: &mut Out) {
    out.line(4, "virtual_ipaddresses:");
    for a in inner(i) {
        let ip = a.keyword();
        if !a.args().is_empty() {
            out.warn(
                a,
                "keeps only its address: xvs puts VIPs on the instance's interface",
            );
        }
        out.line(6, &format!("- {}", quote(ip)));
    }
}

/// A block of one word a line (`unicast_peer`, `track_interface`) as the list `key`.
fn list(i: &Stmt, key: &str, out: &mut Out) {
    out.line(4, &format!("{key}:"));
    for p in inner(i) {
        out.line(6, &format!("- {}", quote(p.keyword())));
    }
}
