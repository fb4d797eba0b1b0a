//! virtual_server blocks as `virtual_servers`: the service, its settings, and its real
//! servers (`real_server.rs`).

use std::net::IpAddr;

use super::real_server::{real_server, RealServerLines};
use super::{addr, inner, ip, number, whole, Out};
use crate::import::quote;
use crate::keepalived::tree::Stmt;

pub(super) fn virtual_server(s: &Stmt, out: &mut Out) {
    let (Some(vip), Some(port)) = (ip(s.arg(0)), s.arg(1).and_then(|p| p.parse::<u16>().ok()))
    else {
        let why = if s.arg(0) == Some("fwmark") {
            "not converted: no firewall marks in xvs; give the ports as `ports: [80, 443]`"
        } else {
            "needs an address and a port: not converted"
        };
        return out.warn(s, why);
    };
    let body = inner(s);
    let proto = protocol(body, out);
    let Some(forwarding) = forwarding(body, out) else {
        return;
    };
    service(vip, port, proto, forwarding, out);
    let delay_loop = get(body, "delay_loop").and_then(|d| number(d, out));
    let alpha = get(body, "alpha").is_some();
    let vs_inhibit = get(body, "inhibit_on_failure").is_some();
    for f in body {
        statement(f, vip, out);
    }
    if vs_inhibit {
        out.line(4, "inhibit_on_failure: true");
    }
    let vhost = get(body, "virtualhost").and_then(|v| v.arg(0));
    let real_servers: Vec<RealServerLines> = body
        .iter()
        .filter(|f| f.keyword() == "real_server")
        .filter_map(|r| real_server(r, vip, delay_loop.as_deref(), alpha, vhost, out))
        .collect();
    write_real_servers(real_servers, out);
}

/// The block's first statement `key`.
fn get<'a>(body: &'a [Stmt], key: &str) -> Option<&'a Stmt> {
    body.iter().find(|f| f.keyword() == key)
}

/// `protocol`: TCP (the default) or UDP.
fn protocol(body: &[Stmt], out: &mut Out) -> &'static str {
    match get(body, "protocol")
        .and_then(|p| p.arg(0))
        .map(str::to_ascii_lowercase)
    {
        Some(p) if p == "udp" => "udp",
        Some(p) if p != "tcp" => {
            out.warn(
                get(body, "protocol").expect("found"),
                "is neither TCP nor UDP: TCP written",
            );
            "tcp"
        }
        _ => "tcp",
    }
}

/// `lb_kind` (or `lvs_method`): DR (the default), NAT or TUN; None, the virtual server
/// not converted, for a method xvs has not.
fn forwarding(body: &[Stmt], out: &mut Out) -> Option<&'static str> {
    let kind = get(body, "lb_kind")
        .or_else(|| get(body, "lvs_method"))
        .and_then(|k| k.arg(0))
        .map(str::to_ascii_uppercase);
    match kind.as_deref() {
        None | Some("DR") => Some("dr"),
        Some("NAT") => Some("nat"),
        Some("TUN") => Some("tun"),
        Some(_) => {
            let k = get(body, "lb_kind")
                .or_else(|| get(body, "lvs_method"))
                .expect("found");
            out.warn(
                k,
                "is no method xvs has (DR, NAT, TUN): virtual server not converted",
            );
            None
        }
    }
}

/// The service's own lines: its name (endpoint and protocol), address, port, protocol and
/// forwarding.
fn service(vip: IpAddr, port: u16, proto: &str, forwarding: &str, out: &mut Out) {
    let endpoint = match vip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    };
    out.line(
        2,
        &format!("- name: {}", quote(&format!("{endpoint}/{proto}"))),
    );
    out.line(4, &format!("address: {vip}"));
    out.line(4, &format!("port: {port}"));
    out.line(4, &format!("protocol: {proto}"));
    out.line(4, &format!("forwarding: {forwarding}"));
}

/// One statement of a virtual_server block; those read up front and the real servers
/// are written elsewhere.
fn statement(f: &Stmt, vip: IpAddr, out: &mut Out) {
    let k = f.keyword();
    match k {
        "delay_loop" | "protocol" | "lb_kind" | "lvs_method" | "alpha" | "real_server"
        | "inhibit_on_failure" => {}
        "omega" => out.warn(
            f,
            "not converted: quorum scripts run on every crossing already",
        ),
        "lb_algo" | "lvs_sched" => match f.arg(0) {
            Some(a) if crate::model::Scheduler::from_name(a).is_some() => {
                out.line(4, &format!("scheduler: {a}"))
            }
            _ => out.warn(f, "names no scheduler xvs has: wrr (the default) is used"),
        },
        "persistence_timeout" | "quorum" | "hysteresis" => {
            if let Some(v) = whole(f, out) {
                out.line(4, &format!("{k}: {v}"));
            }
        }
        "persistence_granularity" => granularity(f, vip, out),
        "ops" => out.line(4, "ops: true"),
        "quorum_up" | "quorum_down" => out.line(4, &format!("{k}: {}", quote(&f.args().join(" ")))),
        "sorry_server" => sorry_server(f, vip, out),
        // Given to each HTTP and SSL check below.
        "virtualhost" => {}
        "ha_suspend" => out.warn(f, "not converted: xvs checks whether or not it is master"),
        // Turns `email_alerts: { checker: true }` on (email.rs).
        "smtp_alert" => {}
        _ => out.warn(f, "in virtual_server: not converted"),
    }
}

/// `persistence_granularity`: keepalived takes a netmask for IPv4, a prefix length for
/// IPv6.
fn granularity(f: &Stmt, vip: IpAddr, out: &mut Out) {
    match (
        vip,
        addr(f.arg(0)),
        f.arg(0).and_then(|a| a.parse::<u8>().ok()),
    ) {
        (IpAddr::V4(_), Some(m), _) => out.line(4, &format!("persistence_granularity: {m}")),
        (IpAddr::V6(_), None, Some(p)) if p <= 128 => {
            out.line(4, &format!("persistence_granularity: {p}"))
        }
        (IpAddr::V4(_), ..) => out.warn(f, "is no IPv4 netmask: not converted"),
        (IpAddr::V6(_), ..) => out.warn(f, "is no IPv6 prefix length: not converted"),
    }
}

/// `sorry_server ADDRESS [PORT]`, the address of the virtual server's family.
fn sorry_server(f: &Stmt, vip: IpAddr, out: &mut Out) {
    match ip(f.arg(0)).filter(|a| a.is_ipv6() == vip.is_ipv6()) {
        Some(a) => {
            out.line(4, "sorry_server:");
            out.line(6, &format!("address: {a}"));
            if let Some(p) = f.arg(1).and_then(|p| p.parse::<u16>().ok()) {
                out.line(6, &format!("port: {p}"));
            }
        }
        None => out.warn(
            f,
            "is no address of the virtual server's family: not converted",
        ),
    }
}

/// The real servers, each with its check; a check every one shares is written once.
fn write_real_servers(real_servers: Vec<RealServerLines>, out: &mut Out) {
    if real_servers.is_empty() {
        return;
    }
    // One check shared by every real server is written once, on the virtual server.
    let shared = real_servers[0].1.clone();
    let hoist = shared.is_some() && real_servers.iter().all(|r| r.1 == shared);
    if let (true, Some(check)) = (hoist, &shared) {
        out.line(4, "health_check:");
        for l in check {
            out.line(6, l);
        }
    }
    out.line(4, "real_servers:");
    for (lines, check) in real_servers {
        for (i, l) in lines.iter().enumerate() {
            out.line(
                if i == 0 { 6 } else { 8 },
                &format!("{}{l}", if i == 0 { "- " } else { "" }),
            );
        }
        if let (false, Some(check)) = (hoist, check) {
            out.line(8, "health_check:");
            for l in check {
                out.line(10, &l);
            }
        }
    }
}
