//! keepalived.conf's statements into xvs YAML, saying what could not be converted.
//!
//! - `vrrp.rs`: vrrp_instance and vrrp_sync_group blocks
//! - `virtual_server.rs`: virtual_server blocks
//! - `real_server.rs`: their real_server blocks
//! - `checker.rs`: the real servers' checkers

mod checker;
mod real_server;
mod virtual_server;
mod vrrp;

use std::net::{IpAddr, Ipv4Addr};

use super::email::Email;
use super::tree::Stmt;
use crate::import::quote;

/// The YAML being written and what was left behind.
struct Out {
    yaml: String,
    warnings: Vec<String>,
}

impl Out {
    fn warn(&mut self, s: &Stmt, why: &str) {
        self.warnings
            .push(format!("line {}: `{}` {why}", s.line, s.words.join(" ")));
    }

    fn line(&mut self, indent: usize, text: &str) {
        self.yaml.push_str(&" ".repeat(indent));
        self.yaml.push_str(text);
        self.yaml.push('\n');
    }
}

/// A number as written, when it is one; keepalived writes seconds as `3` or `0.5`.
fn number(s: &Stmt, out: &mut Out) -> Option<String> {
    match s.arg(0) {
        Some(v) if v.parse::<f64>().is_ok_and(f64::is_finite) => Some(v.to_string()),
        _ => {
            out.warn(s, "has no number: not converted");
            None
        }
    }
}

fn whole(s: &Stmt, out: &mut Out) -> Option<String> {
    match s.arg(0) {
        Some(v) if v.parse::<i64>().is_ok() => Some(v.to_string()),
        _ => {
            out.warn(s, "has no whole number: not converted");
            None
        }
    }
}

fn addr(word: Option<&str>) -> Option<Ipv4Addr> {
    word?.parse().ok()
}

fn ip(word: Option<&str>) -> Option<IpAddr> {
    word?.parse().ok()
}

/// The statements inside a block, for the other converters.
pub(super) fn inner_of(s: &Stmt) -> &[Stmt] {
    inner(s)
}

/// The statements inside a block (none when it has no block).
fn inner(s: &Stmt) -> &[Stmt] {
    s.block.as_deref().unwrap_or(&[])
}

/// What global_defs says.
#[derive(Default)]
struct Globals {
    version: Option<String>,
    router_id: Option<String>,
    rt_priority: Option<String>,
    script_user: Option<String>,
    script_security: bool,
    email: Email,
}

/// The blocks converted after global_defs, each kind in file order.
#[derive(Default)]
struct Blocks<'a> {
    instances: Vec<&'a Stmt>,
    groups: Vec<&'a Stmt>,
    services: Vec<&'a Stmt>,
}

/// Converts a whole file. `interface` overrides the director's interface (otherwise the
/// first VRRP instance's).
pub fn convert(stmts: &[Stmt], interface: Option<&str>) -> (String, Vec<String>) {
    let mut out = Out {
        yaml: String::new(),
        warnings: Vec::new(),
    };
    let mut defs = Globals::default();
    let mut blocks = Blocks::default();
    for s in stmts {
        match s.keyword() {
            "global_defs" => global_defs(s, &mut defs, &mut out),
            "vrrp_instance" => blocks.instances.push(s),
            "vrrp_sync_group" => blocks.groups.push(s),
            "virtual_server" => blocks.services.push(s),
            "vrrp_script" => out.warn(
                s,
                "not converted: xvs has no vrrp_script; a misc health check with `quorum_vrrp` lowers a priority instead",
            ),
            "virtual_server_group" => out.warn(
                s,
                "not converted: list the addresses as virtual servers, or several ports as `ports`",
            ),
            "include" => out.warn(s, "not followed: convert the included file too"),
            _ => out.warn(s, "not converted"),
        }
    }
    settings(&defs, &blocks.instances, interface, &mut out);
    sections(&blocks, defs.version.as_deref(), &mut out);
    defs.email
        .write(defs.router_id.as_deref(), stmts, &mut out.yaml);
    (out.yaml, out.warnings)
}

/// global_defs' statements; e-mail's go to `defs.email`.
fn global_defs(s: &Stmt, defs: &mut Globals, out: &mut Out) {
    for g in inner(s) {
        match g.keyword() {
            "router_id" => defs.router_id = g.arg(0).map(str::to_string),
            "vrrp_version" => defs.version = whole(g, out),
            "vrrp_rt_priority" => defs.rt_priority = whole(g, out),
            "script_user" => defs.script_user = script_user(g, out),
            "enable_script_security" => defs.script_security = true,
            _ if defs.email.global(g, &mut |s, why| out.warn(s, why)) => {}
            _ => out.warn(g, "in global_defs: not converted"),
        }
    }
}

/// `script_user USER [GROUP]` as `user` or `user:group`.
fn script_user(g: &Stmt, out: &mut Out) -> Option<String> {
    match g.args() {
        [user] => Some(user.to_string()),
        [user, group] => Some(format!("{user}:{group}")),
        _ => {
            out.warn(
                g,
                "not converted: script_user takes a user and a group at most",
            );
            None
        }
    }
}

/// The header comment and the top-level settings.
fn settings(defs: &Globals, instances: &[&Stmt], interface: Option<&str>, out: &mut Out) {
    out.line(
        0,
        "# Converted from keepalived.conf by `xvs import-keepalived`.",
    );
    if let Some(id) = &defs.router_id {
        out.line(0, &format!("# keepalived router_id: {id}"));
    }
    let iface = director_interface(interface, instances, out);
    out.line(0, &format!("interface: {}", quote(&iface)));
    if let Some(p) = &defs.rt_priority {
        out.line(0, &format!("vrrp_realtime_priority: {p}"));
    }
    if let Some(u) = &defs.script_user {
        out.line(0, &format!("script_user: {}", quote(u)));
    }
    if defs.script_security {
        out.line(0, "enable_script_security: true");
    }
}

/// `interface` when given, else the first VRRP instance's; eth0, with a warning, when
/// neither names one.
fn director_interface(interface: Option<&str>, instances: &[&Stmt], out: &mut Out) -> String {
    let iface = interface.map(str::to_string).or_else(|| {
        instances
            .iter()
            .find_map(|i| inner(i).iter().find(|s| s.keyword() == "interface"))
            .and_then(|s| s.arg(0).map(str::to_string))
    });
    iface.unwrap_or_else(|| {
        out.warnings.push(
            "no interface: keepalived.conf names none outside vrrp_instance; `eth0` written, pass --interface".into(),
        );
        "eth0".into()
    })
}

/// virtual_servers, vrrp_instances and vrrp_sync_groups, each when the file has any.
fn sections(blocks: &Blocks<'_>, version: Option<&str>, out: &mut Out) {
    if !blocks.services.is_empty() {
        out.line(0, "virtual_servers:");
        for &s in &blocks.services {
            virtual_server::virtual_server(s, out);
        }
    }
    if !blocks.instances.is_empty() {
        out.line(0, "vrrp_instances:");
        for &s in &blocks.instances {
            vrrp::vrrp_instance(s, version, out);
        }
    }
    if !blocks.groups.is_empty() {
        out.line(0, "vrrp_sync_groups:");
        for &s in &blocks.groups {
            vrrp::sync_group(s, out);
        }
    }
}
